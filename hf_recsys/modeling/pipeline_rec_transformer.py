"""The `"next-item-recommendation"` pipeline: a thin `transformers.Pipeline` wrapper over `Recommender`.

Saved next to the model (see `save_pipeline_files`) so that anyone can run, without `hf_recsys` installed::

    pipe = pipeline("next-item-recommendation", model="user/repo-or-folder", trust_remote_code=True)
    pipe({"user_id": 5, "history": ["Toy Story (1995)", 260]}, top_k=10)
    # -> [{"item_id": ..., "title": ..., "genres": [...], "score": ..., "rank": 1}, ...]
    pipe({"similar_to": "Toy Story (1995)"}, top_k=5)  # the items most like one item (Recommender.similar_items)

All mapping logic (ids, titles, cold start, filters, user features) is `Recommender`'s; this file only adapts the
pipeline protocol (preprocess -> forward -> postprocess) to it. Imports: transformers, stdlib and sibling files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import Pipeline, PreTrainedModel
from transformers.dynamic_module_utils import custom_object_save

from .errors import InvalidRequestError
from .fields import FIELDS_FORMAT, ITEM_FIELDS_FILE, USER_FIELDS_FILE
from .recommender import Recommender
from .run_files import load_run_fields, load_vocabularies
from .vocab import ITEM_VOCAB_FILE, USER_VOCAB_FILE, ItemVocab, UserVocab, atomic_write_json

__all__ = ["PIPELINE_TASK", "NextItemRecommendationPipeline", "pipeline_config_entry", "save_pipeline_files"]

PIPELINE_TASK = "next-item-recommendation"
INPUT_KEYS = ("user_id", "history", "user_features")
SIMILAR_KEY = "similar_to"


class NextItemRecommendationPipeline(Pipeline):
    """Top-k next items for a user and/or a history of item ids or titles.

    Inputs (one request): a dict `{"user_id": int | str | None, "history": [ids or titles], "user_features":
    {field: raw value}}` (every key optional) or a bare list of item ids/titles (the history). A list of such dicts
    (or of lists) is a batch, scored one forward pass per `batch_size` (default 256) requests. Parameters (at
    construction or per call): `top_k` (default 10), `exclude_seen`, `filters`, `on_unknown` (see
    `Recommender.recommend`). `{"similar_to": item id or title}` asks for the items most similar to that one
    (`Recommender.similar_items`; `top_k` and `filters` apply).

    Output: `Recommender`'s result dicts, `[{"item_id", "score", "rank"[, "title"][, <item fields>]}, ...]` best
    first (a list of those per request for a batch). Errors: those of `Recommender` (errors.py).

    The vocabularies and feature fields are read from where the model came from (`model.name_or_path`: a folder or
    a Hub repo id), or passed as `item_vocab` / `user_vocab` (and `item_fields` / `user_fields`).
    """

    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(
        self,
        model: PreTrainedModel,
        item_vocab: ItemVocab | None = None,
        user_vocab: UserVocab | None = None,
        item_fields: list[dict[str, Any]] | None = None,
        user_fields: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        source = getattr(self.model, "name_or_path", None) or getattr(self.model.config, "_name_or_path", None)
        if item_vocab is None or user_vocab is None:
            if not source:
                raise ValueError(
                    "cannot find the vocabularies: the model was not loaded from a folder or Hub repo; pass "
                    "item_vocab= and user_vocab="
                )
            loaded_items, loaded_users, commit = load_vocabularies(source)
            item_vocab = item_vocab or loaded_items
            user_vocab = user_vocab or loaded_users
            if item_fields is None and user_fields is None:
                fields = load_run_fields(source, revision=commit)
                item_fields, user_fields = fields["item"], fields["user"]
        self.recommender = Recommender(
            self.model, item_vocab, user_vocab, device=self.device, item_fields=item_fields, user_fields=user_fields
        )

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        exclude_seen: bool | None = None,
        filters: Mapping[str, Any] | None = None,
        on_unknown: str | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise InvalidRequestError(
                f"unexpected pipeline arguments {sorted(kwargs)}; expected top_k, exclude_seen, filters, on_unknown"
            )
        preprocess: dict[str, Any] = {}
        for name, value in (("k", top_k), ("exclude_seen", exclude_seen), ("filters", filters)):
            if value is not None:
                preprocess[name] = value
        if on_unknown is not None:
            preprocess["on_unknown"] = on_unknown
        return preprocess, {}, {}

    @staticmethod
    def _as_request(inputs: Any) -> dict[str, Any]:
        """One pipeline input -> `Recommender` request fields (`user_id`, `history`, `user_features`)."""
        if isinstance(inputs, Mapping):
            unknown = sorted(map(str, set(inputs) - set(INPUT_KEYS)))
            if unknown:
                raise InvalidRequestError(f"unknown input keys {unknown}; expected some of {list(INPUT_KEYS)}")
            return {key: inputs[key] for key in INPUT_KEYS if key in inputs}
        if isinstance(inputs, (list, tuple)):
            return {"history": list(inputs)}
        raise InvalidRequestError(
            f"pipeline input must be a dict {{'user_id': ..., 'history': [...]}} or a list of item ids/titles, "
            f"got {type(inputs).__name__} {inputs!r}"
        )

    @staticmethod
    def _is_batch(inputs: Any) -> bool:
        return (
            isinstance(inputs, (list, tuple))
            and bool(inputs)
            and all(isinstance(x, (Mapping, list, tuple)) for x in inputs)
        )

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Recommend for one request (dict or history list) or a batch (list of dicts / lists)."""
        if self._is_batch(inputs):
            batch_size = kwargs.pop("batch_size", None) or self._batch_size or 256
            params, _, _ = self._sanitize_parameters(**kwargs)
            params = {**self._preprocess_params, **params}
            requests = [self._as_request(x) for x in inputs]
            results = self.recommender.recommend_batch(requests, batch_size=batch_size, **params)
            return [self.postprocess({"result": r}) for r in results]
        if isinstance(inputs, (list, tuple)):  # a bare history; the base class would treat a list as a batch
            inputs = {"history": list(inputs)}
        if isinstance(inputs, Mapping) and SIMILAR_KEY in inputs:
            return self._similar(inputs, **kwargs)
        return super().__call__(inputs, *args, **kwargs)

    def _similar(self, inputs: Mapping[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
        """`{"similar_to": item}`: `Recommender.similar_items` with the call's `top_k` and `filters`."""
        extra = sorted(map(str, set(inputs) - {SIMILAR_KEY}))
        if extra:
            raise InvalidRequestError(f"a {SIMILAR_KEY!r} request takes no other input keys, got {extra}")
        params, _, _ = self._sanitize_parameters(**kwargs)
        unused = sorted(set(params) - {"k", "filters"})
        if unused:
            raise InvalidRequestError(f"a {SIMILAR_KEY!r} request takes top_k and filters only, got {unused}")
        params = {**self._preprocess_params, **params}
        result = self.recommender.similar_items(
            inputs[SIMILAR_KEY], k=params.get("k", 10), filters=params.get("filters")
        )
        return self.postprocess({"result": result})

    def preprocess(self, inputs: Any, **params: Any) -> dict[str, Any]:
        return {"request": self.recommender._prepare(**self._as_request(inputs), **params)}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        request = model_inputs["request"]
        result = self.recommender._run([request])[0]
        self.recommender._warn_skipped([result])
        return {"result": result}

    def postprocess(self, model_outputs: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(item) for item in model_outputs["result"]]

    def save_pretrained(self, save_directory: str | os.PathLike[str], **kwargs: Any) -> None:
        """Save model, code (model + pipeline), vocabularies and feature fields: the folder works with
        `pipeline(...)` alone."""
        super().save_pretrained(save_directory, **kwargs)
        folder = Path(save_directory)
        self.recommender.item_vocab.save(folder / ITEM_VOCAB_FILE)
        self.recommender.user_vocab.save(folder / USER_VOCAB_FILE)
        for name, fields in (
            (ITEM_FIELDS_FILE, self.recommender.item_fields_data),
            (USER_FIELDS_FILE, self.recommender.user_fields_data),
        ):
            if fields is not None:
                atomic_write_json(folder / name, {"format": FIELDS_FORMAT, "version": 1, "fields": fields})
        save_pipeline_files(save_directory, self.model)


def pipeline_config_entry() -> dict[str, dict[str, Any]]:
    """The `custom_pipelines` entry of config.json that `pipeline(task, model=..., trust_remote_code=True)` reads."""
    impl = f"{NextItemRecommendationPipeline.__module__.split('.')[-1]}.{NextItemRecommendationPipeline.__name__}"
    return {PIPELINE_TASK: {"impl": impl, "pt": ["AutoModel"]}}


def save_pipeline_files(folder: str | os.PathLike[str], model: PreTrainedModel | None = None) -> list[Path]:
    """Make a model folder usable with `pipeline("next-item-recommendation", model=folder, trust_remote_code=True)`.

    Copies this pipeline file and the files it imports (recommender, vocab, modeling code) into `folder` and adds
    `custom_pipelines` to its `config.json` (if the folder has one yet). When `model` is given its config gets the
    same entry, so a later `model.save_pretrained` / `push_to_hub` keeps it. Call it after `save_pretrained` (or
    before: then pass `model`). Returns the paths of the files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entry = pipeline_config_entry()
    if model is not None:
        custom = dict(getattr(model.config, "custom_pipelines", None) or {})
        model.config.custom_pipelines = {**custom, **entry}
    written = [Path(p) for p in custom_object_save(NextItemRecommendationPipeline, folder) or []]
    config_file = folder / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        config["custom_pipelines"] = {**(config.get("custom_pipelines") or {}), **entry}
        tmp = config_file.with_name(f".{config_file.name}.tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, config_file)
        written.append(config_file)
    return written
