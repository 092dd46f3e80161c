"""The interaction log: its normalised columns, the :class:`InteractionLog` that holds them, its fingerprint, and
:func:`chronological`, the stable (user, time) sort."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

USER, ITEM, TIME, ROW = "user_id", "item_id", "timestamp", "row"
CORE_COLUMNS = (USER, ITEM, TIME, ROW)


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """An interaction log with normalised columns (see :mod:`.sources`) and where it came from.

    ``fingerprint`` changes whenever the source's content (file path/size/mtime, or the hash of a DataFrame or
    Dataset) or a reading option changes, and every filter folds its name and parameters into it, so it can key a
    cache. ``time_unit`` is the unit read or detected (``s``, ``ms``, ``us``, ``ns``, ``iso``, ``datetime``), or
    None without a time column. ``train_only_users`` is set by :func:`hf_recsys.data.filters.min_history`: users
    too short to evaluate, to be kept in training only.
    """

    table: pa.Table
    source: str
    format: str
    fingerprint: str
    time_unit: str | None = None
    is_chronological: bool = False
    train_only_users: pa.Array | None = None

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def has_time(self) -> bool:
        return self.time_unit is not None

    @property
    def kept_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.table.column_names if c not in CORE_COLUMNS)

    def num_users(self) -> int:
        return pc.count_distinct(self.table[USER]).as_py()

    def num_items(self) -> int:
        return pc.count_distinct(self.table[ITEM]).as_py()

    def replace(self, **changes: Any) -> InteractionLog:
        """A copy with some fields changed (the log is immutable)."""
        return dataclasses.replace(self, **changes)

    def info(self) -> dict[str, Any]:
        """A JSON-serialisable summary: source, format, fingerprint, sizes, id types and time unit."""
        return {
            "source": self.source,
            "format": self.format,
            "fingerprint": self.fingerprint,
            "num_rows": self.num_rows,
            "num_users": self.num_users(),
            "num_items": self.num_items(),
            "user_id_type": str(self.table.schema.field(USER).type),
            "item_id_type": str(self.table.schema.field(ITEM).type),
            "time_unit": self.time_unit,
            "kept_columns": list(self.kept_columns),
            "train_only_users": None if self.train_only_users is None else len(self.train_only_users),
        }


def chronological(log: InteractionLog) -> InteractionLog:
    """The log sorted by (user, timestamp), ties kept in source order (a stable sort, broken by ``row``).

    Users come in ascending id order (numeric for int64 ids, lexicographic for strings). Without a time column each
    user's rows keep their file order, which is then the time order (SASRec and S3-Rec files, or logs written in
    time order). Vectorised: one stable argsort of a combined int64 (user, time) key where it fits, else
    ``np.lexsort``: about 2 s for 10M rows here.
    """
    if log.is_chronological:
        return log
    table = log.table
    users = table[USER].combine_chunks()
    if pa.types.is_integer(users.type):
        codes = users.to_numpy()
    else:
        uniques = pc.unique(users)
        codes = pc.index_in(users, value_set=uniques.take(pc.sort_indices(uniques))).to_numpy().astype(np.int64)
    rows = table[ROW].to_numpy()
    times = table[TIME].to_numpy() if log.has_time else np.zeros(len(codes), dtype=np.int64)
    if len(codes) == 0:
        order = np.zeros(0, dtype=np.int64)
    else:
        c_min, t_min = int(codes.min()), int(times.min())
        c_span, t_span = int(codes.max()) - c_min + 1, int(times.max()) - t_min + 1
        in_row_order = bool(np.all(rows[1:] > rows[:-1]))  # then a stable sort keeps ties in row order
        if in_row_order and c_span * t_span < 2**62:
            order = np.argsort((codes - c_min) * t_span + (times - t_min), kind="stable")
        else:
            order = np.lexsort((rows, times, codes))
    return log.replace(table=table.take(order), is_chronological=True, fingerprint=_digest([log.fingerprint, "chrono"]))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
