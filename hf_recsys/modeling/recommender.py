"""Inference for a trained next-item recommender: raw item ids or titles in, ranked items with their fields out.

This is the ONE implementation of inference logic (history mapping, title matching, cold start, filters,
request-time user features, similar items, batching); the public API (`hf_recsys.Recommender`), the custom
`transformers` pipeline, the Inference Endpoints handler, the CLI and the web demo are thin wrappers around it.
It lives in the self-contained modeling bundle with its sibling files (`errors`, `titles`, `fields`,
`item_filters`, `run_files`, `vocab`), copied next to every saved model, so it works through
`trust_remote_code` without `hf_recsys` installed: torch, numpy, huggingface_hub and the standard library only.

Behaviour worth knowing (documented once, here):

* Results: each item is `{"item_id", "score", "rank"}`, plus `"title"` when the item vocabulary has titles,
  plus one key per item feature field of the run (`item_fields.json`): a list for multi fields (`"genres"`), a
  value for categorical fields (`"decade": "1990s"`), a bucket label for numeric fields (`"price": "[3.0, 5.0)"`),
  None / [] when the item has none.
* Ids keep the vocabulary's type (`ItemVocab.id_type`): ints for integer-keyed logs, strings for keys like
  "B07J3GH1W1"; no id is converted between int and str.
* Histories are chronological (oldest first) and may mix item ids and titles. With an int item vocabulary an
  `int` is an item id and a `str` a title; with a string vocabulary a `str` that is a known id is that item, any
  other `str` a title (or, without titles, an unknown id), and an `int` an unknown id. Title matching: see
  `titles.py` (exact, case-insensitive, normalised, whole words, then fuzzy; rapidfuzz speeds it up if installed).
* Unknown item ids follow `on_unknown`: `"skip"` (default) drops them, emits an `UnknownItemWarning` and lists
  them in the result's `skipped_item_ids`; `"error"` raises `UnknownItemError`.
* Histories longer than `max_position_embeddings` keep their most recent items for scoring; every item of the
  full history is still excluded from the recommendations when `exclude_seen=True`.
* `user_features={"age": "25", ...}` (raw values, encoded with `user_fields.json`) replace the named fields of
  the user's stored features for this request: how a user the model never saw is described.
* Cold start: with an empty history (after skipping unknown ids), a model with `user_conditioning="prepend"`
  scores a known user, or a user with request-time features, from the user token alone; everyone else gets the
  most popular items (training counts in the `item_counts` buffer; the `score` is then that count). The
  result's `strategy` says which ("model" / "popularity"; "similar" for `similar_items`).
* `filters` (see `item_filters.py`: any item field, numeric ranges by bucket, `include_item_ids` /
  `exclude_item_ids`) are score masks applied before the top-k, so a narrow filter may return fewer than `k`.

Errors (all `ValueError`s, defined in `errors.py` and importable from `hf_recsys`): `InvalidRequestError` (also a
`TypeError`: malformed requests, bad `k`, bad user features), `UnknownItemError` (also a `KeyError`),
`TitleMatchError`, `UnknownFilterError`, `EmptyCatalogueError`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import (
    EmptyCatalogueError,
    InvalidRequestError,
    TitleMatchError,
    UnknownFilterError,
    UnknownItemError,
    UnknownItemWarning,
)
from .fields import fields_of
from .item_filters import ItemFilters
from .modeling_rec_transformer import RecTransformerForNextItemPrediction
from .request_parsing import Recommendations, RequestParser, _Request
from .run_files import load_run_fields, load_vocabularies
from .titles import TitleIndex
from .vocab import ItemVocab, UserVocab

__all__ = [
    "REQUEST_KEYS",
    "EmptyCatalogueError",
    "InvalidRequestError",
    "Recommendations",
    "Recommender",
    "TitleMatchError",
    "UnknownFilterError",
    "UnknownItemError",
    "UnknownItemWarning",
    "load_vocabularies",
]

REQUEST_KEYS = ("user_id", "history", "k", "exclude_seen", "filters", "on_unknown", "user_features")


class Recommender(RequestParser):
    """Serve recommendations from a trained model, its vocabularies and feature fields; see the module docstring.

    Build it with `Recommender.from_pretrained(folder_or_repo_id)` or from objects in memory with
    `Recommender(model, item_vocab, user_vocab, item_fields=..., user_fields=...)`. Everything that does not
    depend on the request (title index, field tables, popularity) is precomputed here, so a request costs one
    forward pass and no file I/O.

    Args:
        model: a `RecTransformerForNextItemPrediction` (put in eval mode; moved to `device` when given).
        item_vocab: the item vocabulary the model was trained with (item id <-> token, titles).
        user_vocab: the user vocabulary (user id <-> index).
        device: where to run the model, e.g. `"cpu"` or `"cuda"`; None keeps the model where it is.
        item_fields, user_fields: the field dicts of the run's `item_fields.json` / `user_fields.json` (what
            `from_pretrained` reads); without them results carry no field values and requests no user features.
    """

    def __init__(
        self,
        model: RecTransformerForNextItemPrediction,
        item_vocab: ItemVocab,
        user_vocab: UserVocab,
        device: str | torch.device | None = None,
        item_fields: Sequence[Mapping[str, Any]] | None = None,
        user_fields: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        config = model.config
        if item_vocab.num_items != config.num_items:
            raise ValueError(
                f"the item vocabulary has {item_vocab.num_items} items but the model scores {config.num_items}: "
                "they come from different runs"
            )
        if config.user_conditioning != "none" and user_vocab.num_users > config.num_users:
            raise ValueError(
                f"the user vocabulary has {user_vocab.num_users} users but the model knows only {config.num_users}"
            )
        if device is not None:
            model = model.to(device)
        self.model = model.eval()
        self.config = config
        self.item_vocab = item_vocab
        self.user_vocab = user_vocab
        self.device = next(model.parameters()).device
        self.num_items = item_vocab.num_items
        self.max_length = int(config.max_position_embeddings)
        self.item_fields_data = None if item_fields is None else [dict(f) for f in item_fields]
        self.user_fields_data = None if user_fields is None else [dict(f) for f in user_fields]

        # Item id <-> token and display metadata as plain Python containers (fast per-item access).
        ids = item_vocab.item_ids.tolist()
        self._str_ids = item_vocab.id_type == "str"
        self._str_users = user_vocab.id_type == "str"
        self._token_of: dict[int | str, int] = {m: t for t, m in enumerate(ids, start=ItemVocab.NUM_SPECIAL)}
        self._item_ids: list[int | str | None] = [None, *ids]
        titles = item_vocab.to_dict()["titles"]
        self._titles: list[str | None] = [None, *(titles or [None] * len(ids))]
        self.titles = TitleIndex(self._titles, self._item_ids)
        emb = model.rec_transformer.embeddings
        self.item_fields = fields_of(config.item_feature_fields, self.item_fields_data)
        values = emb.item_feature_values.detach().cpu().numpy() if self.item_fields else None
        self._item_values = values
        self.filters = ItemFilters(self.item_fields, values, self._token_of, self._id_key, item_vocab.id_type)
        self.user_fields = fields_of(config.user_feature_fields, self.user_fields_data)
        self._user_values = None
        if config.user_feature_fields and config.user_conditioning != "none":
            self._user_values = model.rec_transformer.user.user_feature_values.detach().cpu().numpy()
        self._unit_weight: torch.Tensor | None = None  # normalised scoring embeddings, for similar_items

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | os.PathLike[str],
        revision: str | None = None,
        token: str | bool | None = None,
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
    ) -> Recommender:
        """Load the model, its vocabularies and feature fields from a run folder or a Hub repo id.

        Args:
            path_or_repo_id: a folder written by training / `save_pretrained` + `save_vocabs`, or a Hub repo id.
            revision: Hub branch, tag or commit (weights, vocabularies and fields are read from the same commit).
            token: Hub token for private repos (default: the saved login / `HF_TOKEN`).
            device: where to run the model (default CPU, as loaded).
            cache_dir, local_files_only: as in `huggingface_hub.hf_hub_download`.
        """
        hub = {"token": token, "cache_dir": cache_dir, "local_files_only": local_files_only}
        items, users, commit = load_vocabularies(path_or_repo_id, revision=revision, **hub)
        fields = load_run_fields(path_or_repo_id, revision=commit or revision, **hub)
        hub_kwargs: dict[str, Any] = {}
        if not Path(path_or_repo_id).is_dir():
            hub_kwargs = {"revision": commit or revision, **hub}
        model = RecTransformerForNextItemPrediction.from_pretrained(str(path_or_repo_id), **hub_kwargs)
        return cls(model, items, users, device=device, item_fields=fields["item"], user_fields=fields["user"])

    def __repr__(self) -> str:
        return (
            f"Recommender(num_items={self.num_items}, num_users={self.user_vocab.num_users}, "
            f"item_fields={[f.name for f in self.item_fields]}, user_fields={[f.name for f in self.user_fields]}, "
            f"user_conditioning={self.config.user_conditioning!r}, max_length={self.max_length}, device={self.device})"
        )

    # -- items -----------------------------------------------------------------------------------------------
    def _token(self, item_id: Any) -> int:
        """Token of a catalogue id; `UnknownItemError` otherwise (ids of the other type included)."""
        key = self._id_key(item_id)
        token = None if key is None else self._token_of.get(key)
        if token is None:
            raise UnknownItemError([item_id], self.num_items)
        return token

    def title(self, item_id: int | str) -> str | None:
        """Title of `item_id` (None when the vocabulary has none); `UnknownItemError` if not in the catalogue."""
        return self._titles[self._token(item_id)]

    def resolve_title(self, title: str) -> int | str:
        """Item id of `title` (matching rules: `titles.py`); `TitleMatchError` when unknown or ambiguous."""
        if not isinstance(title, str):
            raise InvalidRequestError(f"a title must be a str, got {type(title).__name__} {title!r}")
        return self._item_ids[self.titles.resolve(title)[0]]  # type: ignore[return-value]

    def item(self, item_id: int | str) -> dict[str, Any]:
        """`{"item_id"[, "title"], <fields>}` of one catalogue item (`UnknownItemError` if not one)."""
        return self._describe(self._token(item_id))

    def _describe(self, token: int) -> dict[str, Any]:
        out: dict[str, Any] = {"item_id": self._item_ids[token]}
        if self.titles.has_titles:
            out["title"] = self._titles[token]
        if self._item_values is not None:
            row = self._item_values[token]
            for f in self.item_fields:
                out[f.name] = f.labels(row[f.start : f.start + f.width])
        return out

    # -- scoring -----------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _score(self, requests: Sequence[_Request]) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of the top candidates of each request in ONE forward pass: (B, kmax) scores and tokens (CPU).

        Model rows are right-padded (the model's fast mask-free causal path); popularity rows use `item_counts`.
        Exclusions (seen items, filters, padding) are -inf before the top-k.
        """
        batch, vocab = len(requests), self.num_items + 1
        scores = torch.empty(batch, vocab, device=self.device)
        model_rows = [i for i, r in enumerate(requests) if r.use_model]
        if model_rows:
            length = max(1, *(len(requests[i].model_tokens) for i in model_rows))  # a user token alone: 1 pad
            input_ids = np.zeros((len(model_rows), length), dtype=np.int64)
            for row, i in enumerate(model_rows):
                tokens = requests[i].model_tokens
                input_ids[row, : len(tokens)] = tokens
            inputs: dict[str, torch.Tensor] = {"input_ids": torch.from_numpy(input_ids).to(self.device)}
            if self.config.user_conditioning != "none":
                users = [requests[i].user_index for i in model_rows]
                inputs["user_ids"] = torch.tensor(users, device=self.device)
                if any(requests[i].user_features is not None for i in model_rows):
                    assert self._user_values is not None
                    rows = [
                        requests[i].user_features
                        if requests[i].user_features is not None
                        else self._user_values[requests[i].user_index].tolist()
                        for i in model_rows
                    ]
                    inputs["user_features"] = torch.tensor(rows, dtype=torch.long, device=self.device)
            logits = self.model(**inputs).logits.float()
            if len(model_rows) == batch:
                scores = logits
            else:
                scores[model_rows] = logits
        popularity_rows = [i for i, r in enumerate(requests) if not r.use_model]
        if popularity_rows:
            scores[popularity_rows] = self.model.rec_transformer.item_counts.float()
        return self._top(scores, requests)

    def _top(self, scores: torch.Tensor, requests: Sequence[_Request]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask the seen and filtered tokens and padding, then the top-k of each row (on the CPU)."""
        batch = len(requests)
        blocked = [r.seen_tokens if r.exclude_seen else [] for r in requests]
        counts = [len(cols) for cols in blocked]
        total = sum(counts)
        if total:  # one scatter for the whole batch (numpy builds index arrays much faster than torch.tensor)
            rows = np.repeat(np.arange(batch), counts)
            cols = np.fromiter((c for row in blocked for c in row), dtype=np.int64, count=total)
            scores[torch.from_numpy(rows).to(self.device), torch.from_numpy(cols).to(self.device)] = -torch.inf
        masked = [i for i, r in enumerate(requests) if r.allowed is not None]
        if masked:
            allowed = torch.from_numpy(np.stack([requests[i].allowed for i in masked])).to(self.device)
            scores[masked] = scores[masked].masked_fill(~allowed, -torch.inf)
        scores[:, 0] = -torch.inf
        top_scores, top_tokens = scores.topk(max(r.k for r in requests), dim=1)
        return top_scores.cpu(), top_tokens.cpu()

    def _format(self, request: _Request, scores: torch.Tensor, tokens: torch.Tensor) -> Recommendations:
        """Turn one row of top-k tokens/scores into the result dicts (dropping masked -inf entries)."""
        result = request.result
        for rank, (token, score) in enumerate(zip(tokens[: request.k].tolist(), scores[: request.k].tolist()), 1):
            if score == -float("inf"):
                break
            result.append({**self._describe(token), "score": float(score), "rank": rank})
        return result

    def _run(self, requests: Sequence[_Request]) -> list[Recommendations]:
        scores, tokens = self._score(requests)
        return [self._format(r, scores[i], tokens[i]) for i, r in enumerate(requests)]

    @staticmethod
    def _warn_skipped(results: Sequence[Recommendations]) -> None:
        skipped = [m for r in results for m in r.skipped_item_ids]
        if skipped:
            shown = sorted(set(skipped), key=lambda m: (isinstance(m, str), m))  # ints and/or strings
            more = f" and {len(shown) - 20} more" if len(shown) > 20 else ""
            warnings.warn(
                f"skipped {len(skipped)} item ids that are not in the catalogue: {shown[:20]}{more} "
                "(on_unknown='skip'; see each result's skipped_item_ids)",
                UnknownItemWarning,
                stacklevel=3,
            )

    # -- public API --------------------------------------------------------------------------------------------
    def recommend(
        self,
        user_id: int | str | None = None,
        history: Sequence[int | str] | None = None,
        k: int = 10,
        exclude_seen: bool | None = None,
        filters: Mapping[str, Any] | None = None,
        on_unknown: str = "skip",
        user_features: Mapping[str, Any] | None = None,
    ) -> Recommendations:
        """Top-`k` next items for one user and/or history, best first.

        Args:
            user_id: original user id (int, or str for string user ids); None or an id never seen in training is
                an unknown user.
            history: chronological items (oldest first) as item ids and/or titles (module docstring). Longer than
                `max_position_embeddings`: the most recent items are read.
            k: number of items, 1..catalogue size.
            exclude_seen: never recommend an item of the history; None: the model's `config.exclude_seen`, which
                training set from the data (off where people come back to items, e.g. music or groceries).
            filters: score masks applied before the top-k (`item_filters.py`): item field names
                (`{"genres": ["Comedy"]}`, numeric `{"price": {"min": 10, "max": 50}}`), `include_item_ids`,
                `exclude_item_ids`. A narrow filter may return fewer than `k` items.
            on_unknown: `"skip"` (warn, drop, report in `skipped_item_ids`) or `"error"` for unknown item ids.
            user_features: raw values of the user feature fields (`{"age": "25"}`) for this request; they replace
                the user's stored values of those fields (a new user's are all unknown).

        Returns:
            `Recommendations`: a list of `{"item_id", "score", "rank"[, "title"][, <fields>]}` with the request
            metadata as attributes (`strategy`, `skipped_item_ids`, ...).

        Raises (all `ValueError`s): `InvalidRequestError`, `UnknownItemError` (with `on_unknown="error"`),
        `TitleMatchError`, `UnknownFilterError`, `EmptyCatalogueError`; see the module docstring.
        """
        request = self._prepare(user_id, history, k, exclude_seen, filters, on_unknown, user_features)
        results = self._run([request])
        self._warn_skipped(results)
        return results[0]

    def recommend_batch(
        self,
        requests: Sequence[Mapping[str, Any]],
        batch_size: int = 256,
        k: int = 10,
        exclude_seen: bool | None = None,
        filters: Mapping[str, Any] | None = None,
        on_unknown: str = "skip",
    ) -> list[Recommendations]:
        """Recommendations for many requests, one forward pass per `batch_size` requests.

        Each request is a dict with keys among `REQUEST_KEYS` (same meaning as in `recommend`); the keyword
        arguments here are the defaults for keys a request leaves out. Results are in request order and equal
        `recommend` called on each request. A bad request raises before any scoring, its index in a note.
        """
        if isinstance(requests, (Mapping, str)) or not isinstance(requests, Sequence):
            raise InvalidRequestError(f"requests must be a list of dicts, got {type(requests).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidRequestError(f"batch_size must be a positive int, got {batch_size!r}")
        defaults = {"k": k, "exclude_seen": exclude_seen, "filters": filters, "on_unknown": on_unknown}
        prepared = []
        for i, request in enumerate(requests):
            if not isinstance(request, Mapping):
                raise InvalidRequestError(f"requests[{i}] must be a dict, got {type(request).__name__}")
            unknown = sorted(map(str, set(request) - set(REQUEST_KEYS)))
            if unknown:
                raise InvalidRequestError(f"requests[{i}] has unknown keys {unknown}; allowed: {list(REQUEST_KEYS)}")
            try:
                prepared.append(self._prepare(**{**defaults, **request}))
            except ValueError as error:
                error.add_note(f"(in requests[{i}])")
                raise
        results: list[Recommendations] = []
        for start in range(0, len(prepared), batch_size):
            results.extend(self._run(prepared[start : start + batch_size]))
        self._warn_skipped(results)
        return results

    def popular(self, k: int = 10, filters: Mapping[str, Any] | None = None) -> Recommendations:
        """The `k` most popular items (training interaction counts): what a brand-new user is served."""
        return self.recommend(user_id=None, history=[], k=k, filters=filters)

    @torch.inference_mode()
    def similar_items(self, item: int | str, k: int = 10, filters: Mapping[str, Any] | None = None) -> Recommendations:
        """The `k` items most similar to `item` (an id or a title): cosine similarity of the model's scoring
        embeddings (`model.output_weight()` rows, token 0 skipped), the item itself excluded, `filters` applied.

        Same result format as `recommend` (the `score` is the cosine, in [-1, 1]; `strategy` is `"similar"`).
        Raises `UnknownItemError`, `TitleMatchError`, `InvalidRequestError`, `UnknownFilterError`,
        `EmptyCatalogueError`.
        """
        k = self._check_k(k)
        result = Recommendations()
        if isinstance(item, str) and not (self._str_ids and item in self._token_of):
            if not self.titles.has_titles and self._str_ids:
                raise UnknownItemError([item], self.num_items)
            token = self.titles.resolve(item)[0]
            result.resolved_titles[item] = self._item_ids[token]  # type: ignore[assignment]
        elif isinstance(item, (str, int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            token = self._token(item)
        else:
            raise InvalidRequestError(f"item must be an item id or a title, got {type(item).__name__} {item!r}")
        allowed = self.filters.mask(filters)
        if self._unit_weight is None:
            weight = self.model.output_weight().detach().float()
            self._unit_weight = torch.nn.functional.normalize(weight, dim=1)
        scores = (self._unit_weight @ self._unit_weight[token])[None].clone()
        result.strategy = "similar"
        request = _Request([], [token], 0, None, False, k, True, allowed, result)
        top_scores, top_tokens = self._top(scores, [request])
        return self._format(request, top_scores[0], top_tokens[0])
