"""What :func:`load_movielens` returns (:class:`MovieLensData`), :func:`load_movielens` itself and
:func:`push_dataset_to_hub`."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from transformers.utils import logging

from .movielens_builder import INFO_FILE, MovieLensBuilder, MovieLensConfig
from .movielens_releases import CONFIG_NAMES, GROUPLENS_LICENSE, RELEASES
from .splits import PROTOCOLS, ROW_FEATURES, SPLITS
from .vocab import ItemVocab, UserVocab, load_vocabs

logger = logging.get_logger("hf_recsys.data.movielens")  # one logger for every MovieLens module


@dataclass
class MovieLensData:
    """What :func:`load_movielens` returns: the splits plus the vocabularies that tokenized them."""

    dataset: datasets.DatasetDict
    items: ItemVocab
    users: UserVocab
    interactions_count: int
    config_name: str
    protocol: str
    cache_dir: Path
    info: dict[str, Any]

    @functools.cached_property
    def item_features(self) -> Any:
        """Genres and release decade as the item table's feature fields (an
        :class:`~hf_recsys.data.features.EncodedFeatures` in token order), None without them."""
        from .movielens_features import movielens_item_features

        return movielens_item_features(self.items)

    @functools.cached_property
    def user_features(self) -> Any:
        """Gender, age group and occupation as the user table's feature fields (by user index), None without."""
        from .movielens_features import movielens_user_features

        return movielens_user_features(self.users)

    @property
    def fallback(self) -> bool:
        """True when ML-1M was built from the SASRec-format file instead of the official ratings.dat."""
        return bool(self.info.get("fallback"))

    def describe(self) -> dict[str, Any]:
        """Which data this is, as a JSON-able dict (what ``results.json`` stores under ``"data"``).

        Keys: ``name`` (config, e.g. ``ml-1m``), ``title`` (``MovieLens 1M``), ``variant`` (``official``: the
        release's own ratings file, e.g. ratings.dat with 3,706 rated movies; ``sasrec-benchmark``: the
        SASRec-format file, 3,416 items, the ML-1M of published results; ``sequences``: a user's file),
        ``source_file`` (name of the file read), ``description`` (one sentence), ``num_users``,
        ``num_items``, ``num_interactions`` (after filters), ``url`` (homepage or None), ``license`` (short
        text or None), plus ``protocol``, ``min_rating``, ``k_core``, ``filters`` (what each filter removed: the
        :class:`~hf_recsys.data.filters.FilterReport` as a dict, as ``load_interactions`` reports it),
        ``archive``, ``archive_md5`` and ``download_url`` (None when not applicable). Recorded when the builder
        prepared the data, so it costs nothing and is the same on a cached reload.
        """
        data = self.info.get("data")
        if data is None:  # an info file written before describe() existed
            variant = "sasrec-benchmark" if self.fallback else "official"
            if self.config_name == "sequences":
                variant = "sequences"
            release = RELEASES.get(self.config_name)
            files = self.info.get("files") or []
            data = {
                "name": self.config_name,
                "title": release.title if release else self.config_name,
                "variant": variant,
                "source_file": Path(files[0]).name if files else None,
                "description": str(self.info.get("source", "")),
                "num_users": self.users.num_users,
                "num_items": self.items.num_items,
                "num_interactions": self.interactions_count,
                "url": release.homepage if release else None,
                "license": GROUPLENS_LICENSE if release else None,
            }
        return json.loads(json.dumps(data))  # a copy: callers may edit it


def load_movielens(
    name: str = "ml-1m",
    data_dir: str | os.PathLike[str] | None = None,
    protocol: str = "leave-one-out",
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 42,
    min_rating: float | None = None,
    k_core: int | None = None,
    *,
    download_mode: str | datasets.DownloadMode | None = None,
    **config_kwargs: Any,
) -> MovieLensData:
    """Prepare (or reload from cache) a MovieLens release and return splits + vocabularies.

    Args:
        name: a config name (:data:`CONFIG_NAMES`).
        data_dir: folder with the official files (zip or extracted) or a parent folder with one
            subfolder per release; default ``$HF_RECSYS_DATA_DIR``, else download from GroupLens.
        protocol: ``leave-one-out``, ``seed-windows`` or ``temporal`` (see :class:`MovieLensConfig`).
        cache_dir: ``datasets`` cache root (default: the ``datasets`` cache).
        seed, min_rating, k_core, config_kwargs: :class:`MovieLensConfig` options.
        download_mode: e.g. ``"force_redownload"`` to rebuild the cache.
    """
    if name not in CONFIG_NAMES:
        raise ValueError(f"unknown MovieLens config {name!r}; expected one of {list(CONFIG_NAMES)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
    options = {"protocol": protocol, "seed": seed, "min_rating": min_rating, "k_core": k_core, **config_kwargs}
    defaults = MovieLensConfig()
    # only non-default values go into the config id (readable cache folder names); all are in the hash
    options = {k: v for k, v in options.items() if v is not None and v != getattr(defaults, k, object())}
    builder = MovieLensBuilder(
        config_name=name,
        data_dir=None if data_dir is None else str(Path(data_dir).expanduser()),
        cache_dir=None if cache_dir is None else str(cache_dir),
        dataset_name="movielens",
        **options,
    )
    was_cached = (Path(builder.cache_dir) / datasets.config.DATASET_INFO_FILENAME).is_file()
    builder.download_and_prepare(download_mode=download_mode)
    dataset = builder.as_dataset()
    assert isinstance(dataset, datasets.DatasetDict)
    empty = {name: [] for name in ROW_FEATURES}
    dataset = datasets.DatasetDict(
        {
            split: dataset[split] if split in dataset else datasets.Dataset.from_dict(empty, features=ROW_FEATURES)
            for split in SPLITS
        }
    )
    folder = Path(builder.cache_dir)
    items, users = load_vocabs(folder)
    with open(folder / INFO_FILE, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("fallback") and was_cached:
        logger.warning("%s: using the cached SASRec-format fallback (%s)", name, info["source"])
    return MovieLensData(
        dataset=dataset,
        items=items,
        users=users,
        interactions_count=int(info["num_interactions"]),
        config_name=name,
        protocol=info["protocol"],
        cache_dir=folder,
        info=info,
    )


def push_dataset_to_hub(
    data: MovieLensData | datasets.DatasetDict,
    repo_id: str,
    *,
    items: ItemVocab | None = None,
    users: UserVocab | None = None,
    config_name: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    api: Any | None = None,
) -> str:
    """Upload prepared splits to a Hub dataset repo as Parquet, plus the vocabularies as JSON.

    Wraps ``DatasetDict.push_to_hub(repo_id, config_name=...)`` (one Parquet config per
    release/protocol, e.g. ``ml-1m-leave-one-out``) and uploads ``vocab/<config_name>/item_vocab.json``
    and ``user_vocab.json`` so the token ids in the Parquet files can be decoded. Afterwards
    ``datasets.load_dataset(repo_id, config_name)`` reads the splits back. Needs ``HF_TOKEN`` (or
    ``token``) with write access. ``api`` defaults to ``huggingface_hub.HfApi(token=token)``.

    Returns the dataset's URL.
    """
    if isinstance(data, MovieLensData):
        dataset = data.dataset
        items = items or data.items
        users = users or data.users
        config_name = config_name or f"{data.config_name}-{data.protocol}"
    else:
        dataset = data
    config_name = config_name or "default"
    dataset.push_to_hub(
        repo_id,
        config_name=config_name,
        private=private,
        token=token,
        revision=revision,
        commit_message=commit_message or f"Upload {config_name} splits",
    )
    if items is not None or users is not None:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(token=token)
        for vocab, file in ((items, "item_vocab.json"), (users, "user_vocab.json")):
            if vocab is None:
                continue
            api.upload_file(
                path_or_fileobj=json.dumps(vocab.to_dict(), ensure_ascii=False).encode("utf-8"),
                path_in_repo=f"vocab/{config_name}/{file}",
                repo_id=repo_id,
                repo_type="dataset",
                revision=revision,
                commit_message=f"Upload {config_name} {file}",
            )
    return f"https://huggingface.co/datasets/{repo_id}"
