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

Item and user tables (``item_table=``, ``user_table=``; :mod:`hf_recsys.data.interaction_tables`) are read before
the cache folder is made and aligned with the vocabularies there: their fields and matrices are prepared files of
the cache too (``InteractionData.item_features`` / ``user_features``), and their fingerprints part of the key.
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

from . import interaction_tables as _tables
from . import sources as _sources
from .features import EncodedFeatures
from .interaction_options import InteractionOptions, _options, default_dataset_name
from .interaction_summary import log_description, source_files
from .log_pipeline import prepare_log
from .sources import ITEM, USER, InteractionDataError, InteractionLog, read_interactions
from .splits import SPLITS, SplitRowsBuilder, row_features
from .vocab import ItemVocab, UserVocab, atomic_write_json, load_vocabs, save_vocabs

__all__ = ["INFO_FILE", "InteractionData", "InteractionOptions", "InteractionsBuilder", "load_interactions"]

INFO_FILE = "interactions_info.json"
_VERSION = datasets.Version("1.2.0")  # bump when the prepared output (rows, vocabularies, info) changes


def _code_digest(tables: bool = False) -> str:
    """Digest of the code that shapes the prepared data (with ``tables``, the feature modules too): editing it
    rebuilds the caches it made."""
    h = hashlib.sha256()
    features = tuple(f"{__package__}.{name}" for name in _tables.FEATURE_MODULES) if tables else ()
    for module in (__name__, *_PIPELINE_MODULES, ItemVocab.__module__, *features):
        h.update(module.encode())
        h.update(Path(importlib.import_module(module).__file__ or "").read_bytes())
    return h.hexdigest()


# the modules that read, filter and split a log (the MovieLens and feature modules do not shape these rows)
_PIPELINE_MODULES = tuple(
    f"{__package__}.{name}"
    for name in (
        "interaction_options", "interaction_summary", "sources", "interaction_files", "interaction_log", "timestamps", "arrow_checks", "input_errors", "filters",
        "splits", "log_pipeline",
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
        self._tables: dict[str, Any] | None = None  # side -> (TableOptions, FeatureTable), while preparing
        fingerprint = log.fingerprint if log is not None else _sources.source_fingerprint(source, **self._read_args())
        if fingerprint is None:
            self._log = self._read()
            fingerprint = self._log.fingerprint
        self.fingerprint = fingerprint
        tables = options.tables()
        key = {
            "fingerprint": fingerprint,
            "options": options.to_dict(),
            "code": _code_digest(bool(tables)),
            "version": str(_VERSION),
        }
        if tables:  # the tables' content: a file's path, size and mtime, or an in-memory table's hash
            key["tables"] = {side: t.fingerprint() for side, t in tables.items()}
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

    def _read_tables(self) -> dict[str, Any]:
        return {side: (t, t.read()) for side, t in self.options.tables().items()}

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
        """Read the log and the tables before ``datasets`` creates its cache folder (unless cached), so bad input
        leaves none."""
        if not self.is_prepared:
            self._log = self._log if self._log is not None else self._read()
            self._tables = self._read_tables()
        try:
            super().download_and_prepare(*args, **kwargs)
        finally:
            self._log = self._tables = None  # not needed once the Arrow files are written

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        opts = self.options
        log = self._log if self._log is not None else self._read()
        prep = prepare_log(log, opts.filter_spec(), opts)  # sort, filter, vocabularies, the protocol's rows
        log, report, seqs, rows, n = prep.log, prep.report, prep.seqs, prep.rows, len(prep.item_ids)

        tables = self._tables if self._tables is not None else self._read_tables()
        items, prepared = _tables.write_tables(self._output_dir, tables, prep.items, prep.users)
        users = prep.users
        save_vocabs(self._output_dir, items, users)
        id_type = prep.user_id_type
        self.info.features = row_features(id_type)
        n_train_only = prep.num_train_only
        n_seen = prep.num_interactions
        text = log_description(self.source, log, opts.time_column, users.num_users, n, n_seen, report, n_train_only)
        data = {
            "name": opts.name,
            "title": opts.name,
            "variant": "interactions",
            "source_file": source_files(self.source, log.source),
            "description": text,
            "num_users": users.num_users,
            "num_items": n,
            "num_interactions": n_seen,
            "url": None,
            "license": opts.license,
            "protocol": opts.protocol,
            "filters": report.to_dict(),
            "repeat_consumption": prep.repeat_consumption,
            "time_unit": log.time_unit,
            **{f"{side}_features": prepared[side]["summary"] if side in prepared else None for side in _tables.SIDES},
        }
        info = {
            "name": opts.name,
            "protocol": opts.protocol,
            "source": log.source,
            "format": log.format,
            "fingerprint": self.fingerprint,
            "user_id_type": id_type,
            "item_id_type": prep.item_id_type,
            "time_unit": log.time_unit,
            "num_users": users.num_users,
            "num_items": n,
            "num_interactions": n_seen,
            "num_interactions_before_filters": prep.num_before_filters,
            "num_train_only_users": n_train_only,
            "num_rows": {split: len(r) for split, r in rows.items()},
            "options": opts.to_dict(),
            "filters": report.to_dict(),
            "data": data,
            "tables": {side: {"titles": p["titles"], "report": p["report"]} for side, p in prepared.items()},
            **prep.cuts,
        }
        atomic_write_json(Path(self._output_dir) / INFO_FILE, info)
        self.info.description = f"{self.info.description} Source: {data['description']}"
        # datasets cannot read back a split with no rows: leave it out (load_interactions adds it empty)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": rows[split], "seqs": seqs})
            for split in SPLITS
            if len(rows[split])
        ]


@dataclass
class InteractionData:
    """What :func:`load_interactions` returns: the splits plus the vocabularies that tokenized them (the attributes
    the training code reads from any prepared data: ``dataset``, ``items``, ``users``, ``interactions_count``,
    ``protocol``, ``info``, ``describe()``), and the tables' features: ``item_features`` (matrix row ``t`` = item
    token ``t``, row 0 = padding) and ``user_features`` (row ``u`` = user index ``u``, row 0 = the unknown user),
    each an :class:`~hf_recsys.data.features.EncodedFeatures`, or None without a table."""

    dataset: datasets.DatasetDict
    items: ItemVocab
    users: UserVocab
    interactions_count: int
    protocol: str
    name: str
    cache_dir: Path
    info: dict[str, Any]
    item_features: EncodedFeatures | None = None
    user_features: EncodedFeatures | None = None

    @property
    def config_name(self) -> str:
        return self.name

    def describe(self) -> dict[str, Any]:
        """Which data this is, as a JSON-able dict (what ``results.json`` stores under ``"data"``): ``name``,
        ``title``, ``variant`` (``"interactions"``), ``source_file``, ``description``, ``num_users``, ``num_items``,
        ``num_interactions`` (after filters), ``url`` (None), ``license``, ``protocol``, ``filters`` (the
        :class:`~hf_recsys.data.filters.FilterReport` as a dict), ``time_unit`` (None without a time column) and
        ``item_features`` / ``user_features`` (None without a table, else its ``source_file``, ``id_column``,
        ``fields`` as ``{name: {kind, size, max_values}}`` and the id counts ``ids``, ``matched``,
        ``missing_from_table``, ``unused_table_rows``). Recorded when the data was prepared, so it is the same on a
        cached reload."""
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
    item_table: Any = None,
    item_id_column: str | None = None,
    item_title_column: str | None = None,
    item_feature_columns: Sequence[str] | None = None,
    item_feature_kinds: str | dict[str, str] | None = None,
    item_delimiter: str | dict[str, str] | None = None,
    user_table: Any = None,
    user_id_column: str | None = None,
    user_feature_columns: Sequence[str] | None = None,
    user_feature_kinds: str | dict[str, str] | None = None,
    user_delimiter: str | dict[str, str] | None = None,
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
        item_table: an item table (CSV, TSV, Parquet or JSON Lines path, a pandas DataFrame, or an S3-Rec
            ``*_item2attributes.json`` path or ``{id: [attributes]}`` dict), keyed by ``item_id_column`` (default:
            the log's item column); ``item_title_column``: titles for the item vocabulary; ``item_feature_columns``:
            the features (default all other columns); ``item_feature_kinds``: ``"auto"``, a kind or a mapping
            column -> kind; ``item_delimiter``: how multi strings split (``read_feature_table``). The ``user_*``
            options: the same for a user table (no title). Ids of the log missing from a table get all-zero rows
            (counted in ``describe()``, with a warning); a table that matches no id at all is an error.
    """
    opts = _options(
        filters, user_column=user_column, item_column=item_column, time_column=time_column, time_unit=time_unit,
        format=format, min_history=min_history, protocol=protocol, seed=seed, window_size=window_size,
        window_step=window_step, test_fraction=test_fraction, validation_fraction=validation_fraction, split=split,
        name=name or default_dataset_name(source), license=license,
        item_table=_tables.table_options("item", item_table, ITEM if format in ("sasrec", "s3rec") else item_column,
            id_column=item_id_column, title_column=item_title_column, feature_columns=item_feature_columns,
            kinds=item_feature_kinds, delimiter=item_delimiter),
        user_table=_tables.table_options("user", user_table, USER if format in ("sasrec", "s3rec") else user_column,
            id_column=user_id_column, feature_columns=user_feature_columns, kinds=user_feature_kinds,
            delimiter=user_delimiter),
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
    features = _tables.load_tables(folder, info, items)
    return InteractionData(
        dataset=dataset,
        items=items,
        users=users,
        interactions_count=int(info["num_interactions"]),
        protocol=info["protocol"],
        name=info["name"],
        cache_dir=folder,
        info=info,
        item_features=features["item"],
        user_features=features["user"],
    )
