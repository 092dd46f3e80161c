"""Inference for a trained next-item recommender: raw movie ids or titles in, ranked movies with titles out.

This is the ONE implementation of inference logic (history mapping, title matching, cold start, filters,
batching); the public API (`hf_recsys.Recommender`), the custom `transformers` pipeline and the CLI are thin
wrappers around it. The file lives in the self-contained modeling package, so it is copied next to every saved
model and works through `trust_remote_code` without `hf_recsys` installed: it imports only torch, numpy,
huggingface_hub, the standard library and its sibling files.

Behaviour worth knowing (documented once, here):

* Ids keep the vocabulary's type (`ItemVocab.id_type`): ints for integer-keyed logs, strings for logs with keys like "B07J3GH1W1"
  ("B07J3GH1W1"). Results' `"movie_id"` values are of that type; no id is converted between int and str.
* Histories are chronological (oldest first) and may mix movie ids and titles. With an int item vocabulary, an
  `int` is a movie id and a `str` a title (exactly as always). With a string item vocabulary, a `str` that is a
  known movie id is that movie; any other `str` is looked up as a title (or, when the vocabulary has no titles, is
  an unknown movie id), and an `int` is an unknown movie id. Titles are
  matched exactly, then case-insensitively, then by a normalised key (articles such as "Matrix, The" moved to
  the front, punctuation and the year dropped when the query has none), then by whole words ("Star Wars"), then
  fuzzily (`difflib`); an ambiguous or unknown title raises `TitleMatchError` (a `ValueError`) listing close
  matches.
* Unknown movie ids (including ids of the other type) follow `on_unknown`: `"skip"` (default) drops them, emits an `UnknownMovieWarning` and lists
  them in the result's `skipped_movie_ids`; `"error"` raises `UnknownMovieError` (a `ValueError`) naming them.
* Histories longer than the model's `max_position_embeddings` keep their most recent items for scoring; every
  item of the full history is still excluded from the recommendations when `exclude_seen=True`.
* Cold start: with an empty history (after skipping unknown ids), a known user of a model with
  `user_conditioning="prepend"` is scored from the user token alone; everyone else (unknown or anonymous users,
  or models without a user token) gets the most popular items, ranked by the training interaction counts stored
  in the model's `item_counts` buffer (the `score` is then that count). The result's `strategy` says which.
* `filters` are applied as score masks before the top-k, so a narrow filter may return fewer than `k` items.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .modeling_rec_transformer import RecTransformerForNextItemPrediction
from .vocab import ITEM_VOCAB_FILE, USER_VOCAB_FILE, ItemVocab, UserVocab

__all__ = [
    "FILTER_KEYS",
    "REQUEST_KEYS",
    "Recommendations",
    "Recommender",
    "TitleMatchError",
    "UnknownMovieError",
    "UnknownMovieWarning",
    "load_vocabularies",
]

ON_UNKNOWN = ("skip", "error")
FILTER_KEYS = ("genres", "year_min", "year_max", "exclude_movie_ids", "include_movie_ids")
REQUEST_KEYS = ("user_id", "history", "k", "exclude_seen", "filters", "on_unknown")
_MAX_CACHE = 4096  # resolved titles / filter masks kept per Recommender


class TitleMatchError(ValueError):
    """A title in a history that matches no movie, or several equally well; `candidates` lists close matches."""

    def __init__(self, query: str, candidates: list[tuple[int | str, str]], ambiguous: bool) -> None:
        self.query = query
        self.candidates = candidates
        self.ambiguous = ambiguous
        listed = "; ".join(f"{title!r} (movie id {movie_id!r})" for movie_id, title in candidates)
        if ambiguous:
            message = (
                f"title {query!r} is ambiguous: it matches {listed}. Pass the exact title or the movie id instead."
            )
        elif candidates:
            message = f"title {query!r} not found in the catalogue; close matches: {listed}"
        else:
            message = f"title {query!r} not found in the catalogue and no similar title exists"
        super().__init__(message)


class UnknownMovieError(ValueError):
    """Movie ids that are not in the model's catalogue (raised with `on_unknown="error"`); `movie_ids` lists them."""

    def __init__(self, movie_ids: list[int | str], num_items: int) -> None:
        self.movie_ids = movie_ids
        super().__init__(
            f"movie ids not in the catalogue ({num_items} movies): {movie_ids}; use on_unknown='skip' to ignore them"
        )


class UnknownMovieWarning(UserWarning):
    """Unknown movie ids were dropped from a history (`on_unknown="skip"`)."""


class Recommendations(list):
    """The ranked recommendations of one request: a plain list of dicts, best first, with request metadata.

    Each item is `{"movie_id", "title", "score", "rank"}` plus `"year"` and `"genres"` when the vocabulary knows
    them. Attributes: `strategy` (`"model"` or `"popularity"`, see the module docstring), `user_id`,
    `known_user` (the id is in the user vocabulary), `skipped_movie_ids` (unknown ids dropped from the history),
    `resolved_titles` (each title of the history -> the movie id it matched), `truncated` (oldest history items
    not read by the model because the history exceeded `max_position_embeddings`).
    """

    strategy: str = "model"
    user_id: int | str | None = None
    known_user: bool = False
    skipped_movie_ids: list[int | str]
    resolved_titles: dict[str, int | str]
    truncated: int = 0

    def __init__(self, items: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(items)
        self.skipped_movie_ids = []
        self.resolved_titles = {}


@dataclass
class _Request:
    """A validated, encoded request: what the scoring step needs (tokens, user, masks)."""

    model_tokens: list[int]  # most recent history tokens the model reads (<= max_position_embeddings)
    seen_tokens: list[int]  # every token of the history (excluded when exclude_seen)
    user_index: int
    use_model: bool
    k: int
    exclude_seen: bool
    allowed: np.ndarray | None  # (V,) bool mask from the filters, None = everything allowed
    excluded: list[int] = field(default_factory=list)  # tokens removed by filters
    result: Recommendations = field(default_factory=Recommendations)


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------
def load_vocabularies(
    path_or_repo_id: str | os.PathLike[str],
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> tuple[ItemVocab, UserVocab, str | None]:
    """Read `item_vocab.json` and `user_vocab.json` from a model folder or a Hub repo.

    Returns the two vocabularies and, for a Hub repo, the commit they came from (so the weights can be loaded
    from the very same commit); None for a local folder. Raises `FileNotFoundError` naming a missing file.
    """
    path = Path(path_or_repo_id)
    if path.is_dir():
        missing = [name for name in (ITEM_VOCAB_FILE, USER_VOCAB_FILE) if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{path} has no {' or '.join(missing)}: a model folder needs the vocabularies written by "
                "save_vocabs() next to the weights"
            )
        return ItemVocab.load(path / ITEM_VOCAB_FILE), UserVocab.load(path / USER_VOCAB_FILE), None
    if path.exists() or str(path_or_repo_id).startswith((".", "/", "~")):
        raise FileNotFoundError(f"{path_or_repo_id} is not a model folder")

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    paths = {}
    for name in (ITEM_VOCAB_FILE, USER_VOCAB_FILE):
        try:
            paths[name] = hf_hub_download(
                str(path_or_repo_id),
                name,
                revision=revision,
                token=token,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
            )
        except EntryNotFoundError as error:
            raise FileNotFoundError(
                f"{path_or_repo_id} has no {name}: the repo must hold the vocabularies next to the weights"
            ) from error
        revision = _commit_of(paths[name]) or revision  # the second file comes from the same commit
    return (
        ItemVocab.load(paths[ITEM_VOCAB_FILE]),
        UserVocab.load(paths[USER_VOCAB_FILE]),
        _commit_of(paths[ITEM_VOCAB_FILE]),
    )


def _commit_of(cached_file: str) -> str | None:
    """Commit hash of a file in the Hub cache (`.../snapshots/<commit>/<file>`), None elsewhere."""
    parent = Path(cached_file).parent
    return parent.name if parent.parent.name == "snapshots" else None


# --------------------------------------------------------------------------------------------------------------
# Title matching helpers
# --------------------------------------------------------------------------------------------------------------
_YEAR_RE = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_TRAILING_PAREN_RE = re.compile(r"\s*\([^()]*\)\s*$")
_ARTICLE_RE = re.compile(
    r"^(?P<rest>.*?),\s*(?P<article>the|a|an|les|la|le|l'|il|das|der|die|el|los|las|lo|det|den)$", re.IGNORECASE
)
_NON_WORD_RE = re.compile(r"[^\w]+")


def _casefold(text: str) -> str:
    """Case- and whitespace-insensitive form of a title."""
    return " ".join(text.casefold().split())


def _title_key(title: str, keep_year: bool) -> tuple[str, str | None]:
    """Normalised matching key of a title and its year, e.g. "Matrix, The (1999)" -> ("the matrix 1999", "1999").

    Accents, case and punctuation are dropped, a trailing article ("..., The") moves to the front, alternative
    titles in parentheses (e.g. "Cité des enfants perdus, La") are dropped; the year is kept in the key
    only when `keep_year`.
    """
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).strip()
    year = None
    match = _YEAR_RE.search(text)
    if match:
        year = match.group(1)
        text = text[: match.start()]
    while True:  # alternative titles: "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)"
        stripped = _TRAILING_PAREN_RE.sub("", text)
        if stripped == text or not stripped.strip():
            break
        text = stripped
    article = _ARTICLE_RE.match(text.strip())
    if article:
        text = f"{article.group('article')} {article.group('rest')}"
    key = " ".join(_NON_WORD_RE.sub(" ", text.casefold()).split())
    if keep_year and year:
        key = f"{key} {year}"
    return key, year


def _add(index: dict[str, list[int]], key: str, token: int) -> None:
    if key:
        index.setdefault(key, []).append(token)


# --------------------------------------------------------------------------------------------------------------
# The recommender
# --------------------------------------------------------------------------------------------------------------
class Recommender:
    """Serve recommendations from a trained model and its vocabularies; see the module docstring.

    Build it with `Recommender.from_pretrained(folder_or_repo_id)` or from objects already in memory with
    `Recommender(model, item_vocab, user_vocab)`. Everything that does not depend on the request (title index,
    genre/year tables, popularity) is precomputed here, so a request costs one forward pass and no file I/O.

    Args:
        model: a `RecTransformerForNextItemPrediction` (put in eval mode; moved to `device` when given).
        item_vocab: the item vocabulary the model was trained with (movie id <-> token, titles, genres, years).
        user_vocab: the user vocabulary (user id <-> index).
        device: where to run the model, e.g. `"cpu"` or `"cuda"`; None keeps the model where it is.
    """

    def __init__(
        self,
        model: RecTransformerForNextItemPrediction,
        item_vocab: ItemVocab,
        user_vocab: UserVocab,
        device: str | torch.device | None = None,
    ) -> None:
        config = model.config
        if item_vocab.num_items != config.num_items:
            raise ValueError(
                f"the item vocabulary has {item_vocab.num_items} movies but the model scores {config.num_items}: "
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

        # Movie id <-> token and display metadata, as plain Python containers (fast per-item access). Ids keep
        # the vocabulary's type (Python int or str).
        ids = item_vocab.item_ids.tolist()
        self._str_ids = item_vocab.id_type == "str"
        self._str_users = user_vocab.id_type == "str"
        self._token_of: dict[int | str, int] = {m: t for t, m in enumerate(ids, start=ItemVocab.NUM_SPECIAL)}
        self._movie_ids: list[int | str | None] = [None, *ids]
        meta = item_vocab.to_dict()
        self._titles: list[str | None] = [None, *(meta["titles"] or [None] * len(ids))]
        self._years: list[int | None] = [None, *(meta["years"] or [None] * len(ids))]
        self._has_genres = meta["genres"] is not None
        self._genres: list[list[str]] = [[], *(meta["genres"] or [[]] * len(ids))]
        self._genre_matrix = item_vocab.genre_matrix().astype(bool)  # (V, G)
        self._genre_column = {name.casefold(): j for j, name in enumerate(item_vocab.genre_names)}
        self._year_array = np.array([-1 if y is None else y for y in self._years], dtype=np.int64)
        self._has_years = meta["years"] is not None and any(y is not None for y in meta["years"])
        self._build_title_index()
        self._title_cache: dict[str, tuple[int, str]] = {}
        self._mask_cache: dict[Any, tuple[np.ndarray | None, tuple[int, ...]]] = {}

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
        """Load the model and its vocabularies from a run folder or a Hub repo id.

        Args:
            path_or_repo_id: a folder written by training / `save_pretrained` + `save_vocabs`, or a Hub repo id.
            revision: Hub branch, tag or commit (weights and vocabularies are read from the same commit).
            token: Hub token for private repos (default: the saved login / `HF_TOKEN`).
            device: where to run the model (default CPU, as loaded).
            cache_dir, local_files_only: as in `huggingface_hub.hf_hub_download`.
        """
        items, users, commit = load_vocabularies(
            path_or_repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only
        )
        hub_kwargs: dict[str, Any] = {}
        if not Path(path_or_repo_id).is_dir():
            hub_kwargs = {
                "revision": commit or revision,
                "token": token,
                "cache_dir": cache_dir,
                "local_files_only": local_files_only,
            }
        model = RecTransformerForNextItemPrediction.from_pretrained(str(path_or_repo_id), **hub_kwargs)
        return cls(model, items, users, device=device)

    def __repr__(self) -> str:
        return (
            f"Recommender(num_items={self.num_items}, num_users={self.user_vocab.num_users}, "
            f"user_conditioning={self.config.user_conditioning!r}, max_length={self.max_length}, device={self.device})"
        )

    # -- title matching --------------------------------------------------------------------------------------
    def _build_title_index(self) -> None:
        """Precompute the lookup tables of `resolve_title` (one pass over the catalogue)."""
        self._exact: dict[str, list[int]] = {}
        self._folded: dict[str, list[int]] = {}
        self._keyed: dict[str, list[int]] = {}  # normalised key with year
        self._keyed_no_year: dict[str, list[int]] = {}
        for token, title in enumerate(self._titles):
            if not title:
                continue
            _add(self._exact, title, token)
            _add(self._folded, _casefold(title), token)
            _add(self._keyed, _title_key(title, keep_year=True)[0], token)
            _add(self._keyed_no_year, _title_key(title, keep_year=False)[0], token)
        self._has_titles = bool(self._exact)
        self._padded_keys = [(f" {key} ", tokens) for key, tokens in self._keyed_no_year.items()]
        self._key_list = list(self._keyed)
        self._key_no_year_list = list(self._keyed_no_year)

    def _candidates(self, tokens: Sequence[int], limit: int = 10) -> list[tuple[int | str, str]]:
        return [(self._movie_ids[t], self._titles[t]) for t in list(dict.fromkeys(tokens))[:limit]]

    def _id_key(self, movie_id: Any) -> int | str | None:
        """`movie_id` as a key of `_token_of`, None when it cannot be a movie id of this vocabulary's type."""
        if self._str_ids:
            return str(movie_id) if isinstance(movie_id, str) else None
        if isinstance(movie_id, (str, bytes)):
            return None
        try:
            return int(movie_id)
        except (TypeError, ValueError, OverflowError):
            return None

    def title(self, movie_id: int | str) -> str | None:
        """Title of `movie_id` (None when the vocabulary has no title for it); `UnknownMovieError` if not a movie."""
        key = self._id_key(movie_id)
        token = None if key is None else self._token_of.get(key)
        if token is None:
            raise UnknownMovieError([movie_id if key is None else key], self.num_items)
        return self._titles[token]

    def resolve_title(self, title: str) -> int | str:
        """Movie id of `title` (see the module docstring for the matching rules).

        Raises `TitleMatchError` (a `ValueError`) when the title is unknown or ambiguous, listing close matches.
        """
        return self._movie_ids[self._resolve_title_token(title)[0]]

    def _resolve_title_token(self, title: str) -> tuple[int, str]:
        """(token, how it matched) for `title`; cached because real traffic repeats titles."""
        cached = self._title_cache.get(title)
        if cached is not None:
            return cached
        if not self._has_titles:
            raise ValueError("this model's item vocabulary has no titles: pass movie ids instead")
        result = self._match_title(title)
        if len(self._title_cache) >= _MAX_CACHE:
            self._title_cache.clear()
        self._title_cache[title] = result
        return result

    def _match_title(self, title: str) -> tuple[int, str]:
        def unique(tokens: list[int] | None, how: str) -> tuple[int, str] | None:
            if not tokens:
                return None
            if len(set(tokens)) > 1:
                raise TitleMatchError(title, self._candidates(tokens), ambiguous=True)
            return tokens[0], how

        for tokens, how in (
            (self._exact.get(title), "exact"),
            (self._folded.get(_casefold(title)), "case-insensitive"),
        ):
            found = unique(tokens, how)
            if found:
                return found
        key, year = _title_key(title, keep_year=True)
        if not key:
            raise TitleMatchError(title, [], ambiguous=False)
        found = unique(self._keyed.get(key), "normalised")
        if found:
            return found
        if year is None:
            found = unique(self._keyed_no_year.get(key), "normalised")
            if found:
                return found
            # Whole-word containment: "Star Wars" -> every "Star Wars: ..." title (ambiguous unless only one).
            if len(key) >= 3:
                padded = f" {key} "
                hits = [t for k, tokens in self._padded_keys if padded in k for t in tokens]
                found = unique(hits, "words")
                if found:
                    return found

        # Fuzzy: difflib ratio on the normalised keys; accept a clear winner only.
        keys = self._key_list if year is not None else self._key_no_year_list
        index = self._keyed if year is not None else self._keyed_no_year
        matcher = difflib.SequenceMatcher(b=key, autojunk=False)
        scored = []
        for candidate in difflib.get_close_matches(key, keys, n=8, cutoff=0.5):
            matcher.set_seq1(candidate)
            scored.append((matcher.ratio(), candidate))
        scored.sort(key=lambda pair: -pair[0])
        # A query with a year only accepts titles of that year (typos, not remakes: "Grumpy Old Men (1993)" must
        # not silently become "Grumpier Old Men (1995)"); those of other years are listed as close matches.
        good = [(ratio, k) for ratio, k in scored if ratio >= 0.8 and (year is None or k.endswith(f" {year}"))]
        if good:
            best_ratio, best_key = good[0]
            rivals = [k for ratio, k in good[1:] if ratio > best_ratio - 0.05]
            if not rivals and len(index[best_key]) == 1:
                return index[best_key][0], "fuzzy"
            tokens = [t for _, k in good for t in index[k]]
            raise TitleMatchError(title, self._candidates(tokens, limit=8), ambiguous=True)
        tokens = [t for _, k in scored for t in index[k]]
        raise TitleMatchError(title, self._candidates(tokens, limit=5), ambiguous=False)

    # -- request validation and encoding --------------------------------------------------------------------
    def _check_k(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        if k > self.num_items:
            raise ValueError(f"k={k} is larger than the catalogue ({self.num_items} movies)")
        return int(k)

    def _filter_mask(self, filters: Mapping[str, Any] | None) -> tuple[np.ndarray | None, tuple[int, ...]]:
        """(allowed-token mask or None, excluded tokens) for a `filters` dict; validated and cached."""
        if filters is None:
            return None, ()
        if not isinstance(filters, Mapping):
            raise TypeError(f"filters must be a dict, got {type(filters).__name__}")
        unknown = sorted(set(filters) - set(FILTER_KEYS))
        if unknown:
            raise ValueError(f"unknown filter keys {unknown}; allowed: {list(FILTER_KEYS)}")
        try:
            cache_key = tuple(
                (name, tuple(value) if isinstance(value, (list, tuple)) else value)
                for name, value in sorted(filters.items())
            )
            cached = self._mask_cache.get(cache_key)
        except TypeError:  # unhashable values: validate (and fail) below
            cache_key, cached = None, None
        if cached is not None:
            return cached

        allowed = np.ones(self.num_items + 1, dtype=bool)
        genres = filters.get("genres")
        if genres is not None:
            if isinstance(genres, str):
                genres = [genres]
            if not isinstance(genres, (list, tuple)) or not all(isinstance(g, str) for g in genres):
                raise TypeError(f"filters['genres'] must be a list of genre names, got {genres!r}")
            if not self._genre_column:
                raise ValueError("this model's item vocabulary has no genres to filter on")
            bad = [g for g in genres if g.casefold() not in self._genre_column]
            if bad:
                raise ValueError(f"unknown genres {bad}; known genres: {self.item_vocab.genre_names}")
            columns = [self._genre_column[g.casefold()] for g in genres]
            allowed &= self._genre_matrix[:, columns].any(axis=1)  # a movie passes if it has ANY listed genre
        year_min, year_max = filters.get("year_min"), filters.get("year_max")
        for name, value in (("year_min", year_min), ("year_max", year_max)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
                raise TypeError(f"filters[{name!r}] must be an int year, got {value!r}")
        if year_min is not None or year_max is not None:
            if not self._has_years:
                raise ValueError("this model's item vocabulary has no release years to filter on")
            if year_min is not None and year_max is not None and year_min > year_max:
                raise ValueError(f"filters year_min={year_min} is after year_max={year_max}")
            known = self._year_array >= 0  # movies with an unknown year never pass a year filter
            allowed &= known & (self._year_array >= (year_min if year_min is not None else -1))
            if year_max is not None:
                allowed &= self._year_array <= year_max
        excluded: tuple[int, ...] = ()
        id_ok = (
            (lambda m: isinstance(m, str))
            if self._str_ids
            else (lambda m: isinstance(m, (int, np.integer)) and not isinstance(m, bool))
        )
        for name in ("exclude_movie_ids", "include_movie_ids"):
            ids = filters.get(name)
            if ids is None:
                continue
            if not isinstance(ids, (list, tuple, set, np.ndarray)) or not all(id_ok(m) for m in ids):
                raise TypeError(f"filters[{name!r}] must be a list of {self.item_vocab.id_type} movie ids, got {ids!r}")
            tokens = tuple(t for t in (self._token_of.get(self._id_key(m)) for m in ids) if t is not None)  # type: ignore[arg-type]
            if name == "exclude_movie_ids":
                excluded = tokens
            else:
                keep = np.zeros_like(allowed)
                keep[list(tokens)] = True
                allowed &= keep
        allowed[0] = False
        result = (None if allowed[1:].all() else allowed), excluded
        if cache_key is not None:
            if len(self._mask_cache) >= _MAX_CACHE:
                self._mask_cache.clear()
            self._mask_cache[cache_key] = result
        return result

    def _prepare(
        self,
        user_id: Any = None,
        history: Any = None,
        k: Any = 10,
        exclude_seen: Any = True,
        filters: Mapping[str, Any] | None = None,
        on_unknown: str = "skip",
    ) -> _Request:
        """Validate one request and map it to tokens (no model call). Raises `TypeError`/`ValueError`."""
        k = self._check_k(k)
        if on_unknown not in ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise TypeError(f"exclude_seen must be a bool, got {type(exclude_seen).__name__}")
        if self._str_users:
            if user_id is not None and not isinstance(user_id, str):
                raise TypeError(
                    f"user_id must be a str (this model's user ids are strings) or None, "
                    f"got {type(user_id).__name__} {user_id!r}"
                )
        elif user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, (int, np.integer))):
            raise TypeError(f"user_id must be an int or None, got {type(user_id).__name__} {user_id!r}")
        if history is None:
            history = []
        elif isinstance(history, np.ndarray):
            if history.ndim != 1:
                raise ValueError(f"history must be 1-D, got an array of shape {history.shape}")
            history = history.tolist()
        elif isinstance(history, torch.Tensor):
            if history.dim() != 1 or history.is_floating_point():
                raise ValueError(f"history must be a 1-D integer tensor, got shape {tuple(history.shape)}")
            history = history.tolist()
        elif not isinstance(history, (list, tuple)):
            hint = " (wrap a single title or id in a list)" if isinstance(history, (str, int)) else ""
            raise TypeError(
                f"history must be a list of movie ids (int) or titles (str), got {type(history).__name__}{hint}"
            )

        result = Recommendations()
        tokens: list[int] = []
        unknown: list[int | str] = []
        token_of = self._token_of
        if all(type(item) is int for item in history):  # fast path: plain movie ids (no bools, no titles)
            looked_up = [token_of.get(item) for item in history]
            if None in looked_up:
                unknown = [m for m, t in zip(history, looked_up) if t is None]
                looked_up = [t for t in looked_up if t is not None]
            tokens, history = looked_up, ()
        for position, item in enumerate(history):
            if isinstance(item, str):
                if self._str_ids:  # a known movie id first, a title otherwise
                    found = token_of.get(item)
                    if found is not None:
                        tokens.append(found)
                        continue
                    if not self._has_titles:  # nothing to match a title against: an unknown movie id
                        unknown.append(str(item))
                        continue
                token, _ = self._resolve_title_token(item)
                result.resolved_titles[item] = self._movie_ids[token]
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                token = token_of.get(int(item))
                if token is None:
                    unknown.append(int(item))
                    continue
            else:
                raise TypeError(
                    f"history[{position}] must be a movie id (int) or a title (str), got {type(item).__name__} {item!r}"
                )
            tokens.append(token)
        if unknown:
            if on_unknown == "error":
                raise UnknownMovieError(unknown, self.num_items)
            result.skipped_movie_ids = unknown

        user_index = self.user_vocab.encode(user_id) if user_id is not None else UserVocab.UNKNOWN_INDEX
        known_user = user_index != UserVocab.UNKNOWN_INDEX
        use_model = bool(tokens) or (known_user and self.config.user_conditioning == "prepend")
        model_tokens = tokens[-self.max_length :] if tokens else []
        allowed, excluded = self._filter_mask(filters)
        result.strategy = "model" if use_model else "popularity"
        result.user_id = None if user_id is None else str(user_id) if self._str_users else int(user_id)
        result.known_user = known_user
        result.truncated = len(tokens) - len(model_tokens)
        return _Request(
            model_tokens=model_tokens,
            seen_tokens=tokens,
            user_index=user_index,
            use_model=use_model,
            k=k,
            exclude_seen=bool(exclude_seen),
            allowed=allowed,
            excluded=list(excluded),
            result=result,
        )

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
            length = max(len(requests[i].model_tokens) for i in model_rows)
            input_ids = np.zeros((len(model_rows), length), dtype=np.int64)
            for row, i in enumerate(model_rows):
                tokens = requests[i].model_tokens
                input_ids[row, : len(tokens)] = tokens
            user_ids = torch.tensor([requests[i].user_index for i in model_rows], device=self.device)
            inputs: dict[str, torch.Tensor] = {"input_ids": torch.from_numpy(input_ids).to(self.device)}
            if self.config.user_conditioning != "none":
                inputs["user_ids"] = user_ids  # the model holds each known user's feature values
            logits = self.model(**inputs).logits.float()
            if len(model_rows) == batch:
                scores = logits
            else:
                scores[model_rows] = logits
        popularity_rows = [i for i, r in enumerate(requests) if not r.use_model]
        if popularity_rows:
            counts = self.model.rec_transformer.item_counts.float()
            scores[popularity_rows] = counts

        blocked = [r.excluded + r.seen_tokens if r.exclude_seen else r.excluded for r in requests]
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
            item: dict[str, Any] = {
                "movie_id": self._movie_ids[token],
                "title": self._titles[token],
                "score": score,
                "rank": rank,
            }
            if self._years[token] is not None:
                item["year"] = self._years[token]
            if self._has_genres:
                item["genres"] = list(self._genres[token])
            result.append(item)
        return result

    def _run(self, requests: Sequence[_Request]) -> list[Recommendations]:
        scores, tokens = self._score(requests)
        return [self._format(r, scores[i], tokens[i]) for i, r in enumerate(requests)]

    @staticmethod
    def _warn_skipped(results: Sequence[Recommendations]) -> None:
        skipped = [m for r in results for m in r.skipped_movie_ids]
        if skipped:
            shown = sorted(set(skipped), key=lambda m: (isinstance(m, str), m))  # ints and/or strings
            more = f" and {len(shown) - 20} more" if len(shown) > 20 else ""
            warnings.warn(
                f"skipped {len(skipped)} movie ids that are not in the catalogue: {shown[:20]}{more} "
                "(on_unknown='skip'; see each result's skipped_movie_ids)",
                UnknownMovieWarning,
                stacklevel=3,
            )

    # -- public API --------------------------------------------------------------------------------------------
    def recommend(
        self,
        user_id: int | str | None = None,
        history: Sequence[int | str] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        filters: Mapping[str, Any] | None = None,
        on_unknown: str = "skip",
    ) -> Recommendations:
        """Top-`k` next movies for one user and/or history, best first.

        Args:
            user_id: original user id (of the user vocabulary's type: int, or str for string ids); None or an id
                never seen in training is an unknown user.
            history: chronological movies (oldest first) as movie ids and/or titles (`str`); with string movie
                ids, a string that is a known id is that movie, otherwise a title (see the module docstring).
                Longer than `max_position_embeddings`: the most recent items are read.
            k: number of movies, 1..catalogue size.
            exclude_seen: never recommend a movie of the history.
            filters: score masks applied before the top-k: `genres` (movie has ANY of them), `year_min` /
                `year_max` (inclusive; movies of unknown year are dropped), `exclude_movie_ids`,
                `include_movie_ids` (restrict to these). A narrow filter may return fewer than `k` movies.
            on_unknown: `"skip"` (warn, drop, report in `skipped_movie_ids`) or `"error"` for unknown movie ids.

        Returns:
            `Recommendations`: a list of `{"movie_id", "title", "score", "rank"[, "year", "genres"]}` with the
            request metadata as attributes (`strategy`, `skipped_movie_ids`, ...).

        Raises:
            TypeError: wrong types (e.g. a bare string or int as history, a float movie id).
            ValueError: bad values (k < 1 or above the catalogue, unknown filter keys or genres), unknown or
                ambiguous titles (`TitleMatchError`), unknown ids with `on_unknown="error"` (`UnknownMovieError`).
        """
        request = self._prepare(user_id, history, k, exclude_seen, filters, on_unknown)
        results = self._run([request])
        self._warn_skipped(results)
        return results[0]

    def recommend_batch(
        self,
        requests: Sequence[Mapping[str, Any]],
        batch_size: int = 256,
        k: int = 10,
        exclude_seen: bool = True,
        filters: Mapping[str, Any] | None = None,
        on_unknown: str = "skip",
    ) -> list[Recommendations]:
        """Recommendations for many requests, one forward pass per `batch_size` requests.

        Each request is a dict with keys among `user_id`, `history`, `k`, `exclude_seen`, `filters`,
        `on_unknown` (same meaning as in `recommend`); the keyword arguments here are the defaults for keys a
        request leaves out. Results are in request order and equal `recommend` called on each request.
        A bad request raises before any scoring, its index given in an exception note.
        """
        if isinstance(requests, Mapping) or not isinstance(requests, Sequence) or isinstance(requests, str):
            raise TypeError(f"requests must be a list of dicts, got {type(requests).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        defaults = {"k": k, "exclude_seen": exclude_seen, "filters": filters, "on_unknown": on_unknown}
        prepared = []
        for i, request in enumerate(requests):
            if not isinstance(request, Mapping):
                raise TypeError(f"requests[{i}] must be a dict, got {type(request).__name__}")
            unknown = sorted(set(request) - set(REQUEST_KEYS))
            if unknown:
                raise ValueError(f"requests[{i}] has unknown keys {unknown}; allowed: {list(REQUEST_KEYS)}")
            try:
                prepared.append(self._prepare(**{**defaults, **request}))
            except (TypeError, ValueError) as error:
                error.add_note(f"(in requests[{i}])")
                raise
        results: list[Recommendations] = []
        for start in range(0, len(prepared), batch_size):
            results.extend(self._run(prepared[start : start + batch_size]))
        self._warn_skipped(results)
        return results

    def popular(self, k: int = 10) -> Recommendations:
        """The `k` most popular movies (training interaction counts): what a brand-new user is served."""
        return self.recommend(user_id=None, history=[], k=k)
