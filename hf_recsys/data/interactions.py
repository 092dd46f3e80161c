"""Any interaction log as tokenized next-item examples: the generic data path (issue 21).

:func:`load_interactions` turns a log (CSV, TSV, Parquet or JSON Lines files, a DataFrame, a ``datasets.Dataset``,
a Hub id, or the SASRec / S3-Rec text formats; see :func:`hf_recsys.data.sources.read_interactions`) into the
train / validation / test splits of a protocol plus the item and user vocabularies that tokenized them::

    data = load_interactions("All_Beauty.csv", item_column="parent_asin", time_column="timestamp")
    data.dataset["test"][0]   # {"user_id", "user_index", "input_ids", "target", "timestamp"}
    data.describe()           # {"name": "All_Beauty", "variant": "interactions", "num_items": ..., ...}

Pipeline: ``read_interactions`` -> ``chronological`` (stable sort by user, time) -> ``apply_filters`` (then
``min_history``: users too short to evaluate stay in training only) -> item vocabulary (tokens ``1..n`` in
ascending id order) and user vocabulary -> the protocol's rows (:mod:`hf_recsys.data.splits`), with the row schema
of every other builder (``user_id`` keeps the ids' type: int64 or string).

:class:`InteractionsBuilder` is a ``datasets.GeneratorBasedBuilder``, so the prepared splits are Arrow files in the
``datasets`` cache. Its cache key (``builder.hash``) is the source's fingerprint (path, size and mtime of each file,
or the content hash of an in-memory source), every option and the code of the data modules: changing the file or an
option rebuilds, nothing else does, and a cached reload of a file source reads nothing but the cache. The
vocabularies and ``interactions_info.json`` are written (temp file + rename) inside the ``.incomplete`` folder that
``datasets`` renames only on success, so a failed preparation leaves no finished-looking cache.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import sources as _sources
from . import splits as _splits
from .filters import apply_filters
from .interaction_options import InteractionOptions, _options, default_dataset_name
from .interaction_summary import log_description, source_files
from .sources import ITEM, TIME, USER, InteractionDataError, InteractionLog, chronological, read_interactions
from .splits import SPLITS, Sequences, SplitRowsBuilder, row_features
from .vocab import ItemVocab, UserVocab, atomic_write_json, load_vocabs, save_vocabs

__all__ = ["INFO_FILE", "InteractionData", "InteractionOptions", "InteractionsBuilder", "load_interactions"]

INFO_FILE = "interactions_info.json"
_VERSION = datasets.Version("1.0.0")  # bump when the prepared output (rows, vocabularies, info) changes


def _code_digest() -> str:
    """Digest of the code that shapes the prepared data: editing it rebuilds the caches it made."""
    h = hashlib.sha256()
    for module in (__name__, *_PIPELINE_MODULES, ItemVocab.__module__):
        h.update(module.encode())
        h.update(Path(importlib.import_module(module).__file__ or "").read_bytes())
    return h.hexdigest()


# the modules that read, filter and split a log (the MovieLens and feature modules do not shape these rows)
_PIPELINE_MODULES = tuple(
    f"{__package__}.{name}"
    for name in (
        "interaction_options", "interaction_summary", "sources", "interaction_files", "interaction_log", "timestamps", "arrow_checks", "input_errors", "filters",
        "splits",
    )
    if importlib.util.find_spec(f"{__package__}.{name}") is not None
)  # fmt: skip


class InteractionsBuilder(SplitRowsBuilder):
    """``datasets`` builder for any interaction log: one instance per (source, options).

    ``InteractionsBuilder(source, options, cache_dir=...)``; the cache folder is
    ``<cache_dir>/interactions/default/<version>/<hash>``. The source is read only when the splits must be
    prepared, except an in-memory source or a Hub id, whose fingerprint needs a read.
    """

    VERSION = _VERSION

    def __init__(
        self,
        source: Any,
        options: InteractionOptions,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        log: InteractionLog | None = None,
    ) -> None:
        self.source, self.options, self._log = source, options, log
        fingerprint = log.fingerprint if log is not None else _sources.source_fingerprint(source, **self._read_args())
        if fingerprint is None:
            self._log = self._read()
            fingerprint = self._log.fingerprint
        self.fingerprint = fingerprint
        key = {
            "fingerprint": fingerprint,
            "options": options.to_dict(),
            "code": _code_digest(),
            "version": str(_VERSION),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        super().__init__(
            cache_dir=None if cache_dir is None else str(cache_dir), dataset_name="interactions", hash=digest
        )

    def _read_args(self) -> dict[str, Any]:
        o = self.options
        return {
            "user_column": o.user_column, "item_column": o.item_column, "time_column": o.time_column,
            "time_unit": o.time_unit, "format": o.format, "keep_columns": o.keep_columns(), "split": o.split,
        }  # fmt: skip

    def _read(self) -> InteractionLog:
        return read_interactions(self.source, **self._read_args())

    @property
    def is_prepared(self) -> bool:
        """True when this source and these options are already prepared in the cache."""
        return (Path(self.cache_dir) / datasets.config.DATASET_INFO_FILENAME).is_file()

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="An interaction log as tokenized next-item examples (history -> target).",
            features=row_features("int64"),  # the real user id type is set once the log is read
            license=self.options.license,
        )

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """Read the log before ``datasets`` creates its cache folder (unless cached), so bad input leaves none."""
        if not self.is_prepared and self._log is None:
            self._log = self._read()
        try:
            super().download_and_prepare(*args, **kwargs)
        finally:
            self._log = None  # the table is not needed once the Arrow files are written

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        opts = self.options
        log = chronological(self._log if self._log is not None else self._read())
        n_raw = log.num_rows
        if opts.protocol == "temporal" and not log.has_time:
            raise InteractionDataError(
                "protocol='temporal' needs a time column; this source has none (its order is the time order)",
                source=log.source,
                expected="time_column= naming the column with the time of each interaction",
            )
        log, report = apply_filters(log, opts.filter_spec())
        seqs, item_ids, user_ids = self._sequences(chronological(log))
        items, users = ItemVocab(item_ids.to_pylist()), UserVocab(user_ids.to_pylist())
        n = len(item_ids)
        if items.decode(1) != item_ids[0].as_py() or items.decode(n) != item_ids[n - 1].as_py():
            raise RuntimeError("ItemVocab did not assign tokens 1..n in ascending id order")  # vocab contract
        test_frac, val_frac = opts.fractions()
        extra: dict[str, Any] = {}
        if opts.protocol == "leave-one-out":
            rows = _splits.leave_one_out(seqs)
        elif opts.protocol == "seed-windows":
            rows = _splits.seed_windows(seqs, opts.window_size, opts.window_step, test_frac, val_frac, opts.seed)
        else:
            rows, extra = _splits.temporal(seqs, test_frac, val_frac)

        save_vocabs(self._output_dir, items, users)
        id_type = "int64" if pa.types.is_integer(user_ids.type) else "string"
        self.info.features = row_features(id_type)
        n_train_only = 0 if seqs.train_only is None else int(seqs.train_only.sum())
        n_seen = int(seqs.tokens.size)
        text = log_description(self.source, log, opts.time_column, users.num_users, n, n_seen, report, n_train_only)
        data = {
            "name": opts.name,
            "title": opts.name,
            "variant": "interactions",
            "source_file": source_files(self.source, log.source),
            "description": text,
            "num_users": users.num_users,
            "num_items": n,
            "num_interactions": int(seqs.tokens.size),
            "url": None,
            "license": opts.license,
            "protocol": opts.protocol,
            "filters": report.to_dict(),
            "time_unit": log.time_unit,
        }
        info = {
            "name": opts.name,
            "protocol": opts.protocol,
            "source": log.source,
            "format": log.format,
            "fingerprint": self.fingerprint,
            "user_id_type": id_type,
            "item_id_type": "int64" if pa.types.is_integer(item_ids.type) else "string",
            "time_unit": log.time_unit,
            "num_users": users.num_users,
            "num_items": n,
            "num_interactions": int(seqs.tokens.size),
            "num_interactions_before_filters": n_raw,
            "num_train_only_users": n_train_only,
            "num_rows": {split: len(r) for split, r in rows.items()},
            "options": opts.to_dict(),
            "filters": report.to_dict(),
            "data": data,
            **extra,
        }
        atomic_write_json(Path(self._output_dir) / INFO_FILE, info)
        self.info.description = f"{self.info.description} Source: {data['description']}"
        # datasets cannot read back a split with no rows: leave it out (load_interactions adds it empty)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": rows[split], "seqs": seqs})
            for split in SPLITS
            if len(rows[split])
        ]

    @staticmethod
    def _sequences(log: InteractionLog) -> tuple[Sequences, pa.Array, pa.Array]:
        """Tokens (1..n in ascending item id order) and per-user runs of a chronological log."""
        table = log.table
        items_col, users_col = table[ITEM].combine_chunks(), table[USER].combine_chunks()
        uniq = pc.unique(items_col)
        item_ids = uniq.take(pc.sort_indices(uniq))
        tokens = (pc.index_in(items_col, value_set=item_ids).to_numpy() + ItemVocab.NUM_SPECIAL).astype(np.int32)
        uniq = pc.unique(users_col)
        user_ids = uniq.take(pc.sort_indices(uniq))
        codes = pc.index_in(users_col, value_set=user_ids).to_numpy()
        if codes.size > 1 and np.any(codes[1:] < codes[:-1]):
            raise RuntimeError("the log is not sorted by user (chronological() contract)")
        lengths = np.bincount(codes, minlength=len(user_ids)).astype(np.int64)
        train_only = None
        if log.train_only_users is not None and len(log.train_only_users):
            value_set = log.train_only_users.cast(user_ids.type)
            train_only = pc.is_in(user_ids, value_set=value_set).to_numpy(zero_copy_only=False)
        if pa.types.is_integer(user_ids.type):
            ids = user_ids.to_numpy().astype(np.int64)
        else:
            ids = np.array(user_ids.to_pylist(), dtype=object)
        seqs = Sequences(
            user_ids=ids,
            offsets=np.cumsum(lengths) - lengths,
            lengths=lengths,
            tokens=tokens,
            timestamps=pc.fill_null(table[TIME], 0).to_numpy().astype(np.int64),
            train_only=train_only,
        )
        return seqs, item_ids, user_ids


@dataclass
class InteractionData:
    """What :func:`load_interactions` returns: the splits plus the vocabularies that tokenized them (the attributes
    the training code reads from any prepared data: ``dataset``, ``items``, ``users``, ``interactions_count``,
    ``protocol``, ``info``, ``describe()``)."""

    dataset: datasets.DatasetDict
    items: ItemVocab
    users: UserVocab
    interactions_count: int
    protocol: str
    name: str
    cache_dir: Path
    info: dict[str, Any]

    @property
    def config_name(self) -> str:
        return self.name

    def describe(self) -> dict[str, Any]:
        """Which data this is, as a JSON-able dict (what ``results.json`` stores under ``"data"``): ``name``,
        ``title``, ``variant`` (``"interactions"``), ``source_file``, ``description``, ``num_users``, ``num_items``,
        ``num_interactions`` (after filters), ``url`` (None), ``license``, ``protocol``, ``filters`` (the
        :class:`~hf_recsys.data.filters.FilterReport` as a dict) and ``time_unit`` (None without a time column).
        Recorded when the data was prepared, so it is the same on a cached reload."""
        return json.loads(json.dumps(self.info["data"]))  # a copy: callers may edit it


def load_interactions(
    source: Any,
    *,
    user_column: str = USER,
    item_column: str = ITEM,
    time_column: str | None = None,
    time_unit: str = "auto",
    format: str | None = None,
    filters: Sequence[Any] = (),
    min_history: int | None = 3,
    protocol: str = "leave-one-out",
    seed: int = 42,
    cache_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    license: str | None = None,
    window_size: int = 4,
    window_step: int = 2,
    test_fraction: float | None = None,
    validation_fraction: float | None = None,
    split: str | None = None,
) -> InteractionData:
    """Prepare (or reload from the cache) any interaction log as train / validation / test rows + vocabularies.

    Args:
        source: a path, glob, URL or list of files (CSV, TSV, Parquet, JSON Lines, or with ``format=`` the SASRec /
            S3-Rec text formats), a pandas DataFrame, a ``datasets.Dataset`` or a Hub dataset id.
        user_column, item_column, time_column, time_unit, format, split: how to read it
            (:func:`~hf_recsys.data.sources.read_interactions`). Without ``time_column`` the row order is the time
            order.
        filters: :func:`~hf_recsys.data.filters.apply_filters` entries, e.g.
            ``[{"name": "min_rating", "column": "rating", "threshold": 4}, {"k_core": {"user_k": 5, "item_k": 5}}]``.
        min_history: users with fewer interactions stay in training only (3: what leave-one-out needs to evaluate);
            0 or None: off.
        protocol: ``leave-one-out``, ``seed-windows`` (``seed``, ``window_size``, ``window_step``) or ``temporal``
            (needs ``time_column``); ``test_fraction`` / ``validation_fraction``: the held-out shares.
        cache_dir: ``datasets`` cache root (default: the ``datasets`` cache).
        name: the dataset's name in ``describe()`` (default: the source file's stem); license: its licence.
    """
    opts = _options(
        filters, user_column=user_column, item_column=item_column, time_column=time_column, time_unit=time_unit,
        format=format, min_history=min_history, protocol=protocol, seed=seed, window_size=window_size,
        window_step=window_step, test_fraction=test_fraction, validation_fraction=validation_fraction, split=split,
        name=name or default_dataset_name(source), license=license,
    )  # fmt: skip
    if protocol == "temporal" and time_column is None:
        where = source if isinstance(source, str | os.PathLike) else type(source).__name__
        raise InteractionDataError(
            "protocol='temporal' needs a time column; without time_column the row order is the only time there is",
            source=str(where),
            expected="time_column= naming the column with the time of each interaction",
        )
    builder = InteractionsBuilder(source, opts, cache_dir=cache_dir)
    builder.download_and_prepare()
    loaded = builder.as_dataset()
    assert isinstance(loaded, datasets.DatasetDict)
    features = builder.info.features
    empty = datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    dataset = datasets.DatasetDict({s: loaded.get(s, empty) for s in SPLITS})
    folder = Path(builder.cache_dir)
    items, users = load_vocabs(folder)
    with open(folder / INFO_FILE, encoding="utf-8") as f:
        info = json.load(f)
    return InteractionData(
        dataset=dataset,
        items=items,
        users=users,
        interactions_count=int(info["num_interactions"]),
        protocol=info["protocol"],
        name=info["name"],
        cache_dir=folder,
        info=info,
    )
