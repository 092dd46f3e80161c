"""Interaction logs from any source: the reading half of "your own data" (issue 21).

:func:`read_interactions` reads (user, item[, time]) events from CSV, TSV, Parquet or JSON Lines
files (a path, a glob, a URL, or a list of them), a pandas ``DataFrame``, a ``datasets.Dataset``,
a Hub dataset id (or a local dataset folder, both through ``datasets.load_dataset``), or the
research text formats: SASRec ``user item`` lines and S3-Rec ``user item1 item2 ...`` lines, each
in time order. It returns an :class:`InteractionLog`, one ``pyarrow.Table`` with the columns

* ``user_id``, ``item_id``: the original ids, int64 or string. Typed sources (Parquet, JSON,
  DataFrame, Dataset) keep their type; in text files an id column is int64 only when every id is
  a canonical integer, so ``"007"`` stays the string ``"007"`` and ids round-trip exactly.
* ``timestamp``: int64 unix seconds (UTC; naive datetimes are read as UTC), or all null when the
  source has no time column;
* the ``keep_columns`` (ratings, event types, ...), unchanged (large strings become strings);
* ``row``: the 0-based position in the source (data row; for S3-Rec lines, the interaction in
  file order). It breaks ties stably and locates a row for error messages.

Only the needed columns are read (column projection), with pyarrow's readers or ``datasets``,
so memory grows with the rows and the few columns used, not with the file's other columns. Bad
input raises :class:`InteractionDataError`, whose message names the file, the row (and line),
the column and what was expected. :func:`chronological` sorts a log stably by (user, time).

The reading is split by concern: :mod:`.interaction_files` (files, globs, URLs and their formats),
:mod:`.timestamps` (time units and ISO 8601), :mod:`.interaction_log` (the log and its sort) and
:mod:`.input_errors` (the errors); this module reads every kind of source through them and types the ids.
"""

from __future__ import annotations

import dataclasses
import glob as globlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_checks import _first, _is_text
from .input_errors import InputDataError, InteractionDataError, SourceNotFoundError, _error, _Part, _Where
from .interaction_files import (
    FORMATS,
    _Columns,
    _expand,
    _format_of,
    _has_file_suffix,
    _is_url,
    _read_files,
    _require,
    _stamp,
)
from .interaction_log import CORE_COLUMNS, ITEM, ROW, TIME, USER, InteractionLog, _digest, chronological
from .timestamps import TIME_UNITS, _seconds

__all__ = [
    "CORE_COLUMNS",
    "FORMATS",
    "ITEM",
    "ROW",
    "TIME",
    "TIME_UNITS",
    "USER",
    "InputDataError",
    "InteractionDataError",
    "InteractionLog",
    "SourceNotFoundError",
    "chronological",
    "read_interactions",
    "source_fingerprint",
]

_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def read_interactions(
    source: Any,
    *,
    user_column: str = USER,
    item_column: str = ITEM,
    time_column: str | None = None,
    time_unit: str = "auto",
    format: str | None = None,
    keep_columns: Sequence[str] = (),
    split: str | None = None,
) -> InteractionLog:
    """Read an interaction log from a file, glob, URL, DataFrame, Dataset or Hub id (see the module docstring).

    ``format`` is taken from the file extension (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``/``.json``, optionally
    compressed ``.gz``/``.bz2``/``.zst``/``.lz4``) unless given; ``.txt`` files need it (``sasrec`` or ``s3rec``,
    whose lines carry no column names or times: ``user_column`` and friends are then ignored). ``time_unit``:
    ``auto`` detects seconds/ms/us/ns from the magnitude of numbers, reads strings as ISO 8601 and datetime columns
    as they are; ``s``, ``ms``, ``us``, ``ns`` or ``iso`` force one. ``split`` picks the split of a Hub dataset or
    ``DatasetDict`` (default: its only split). Without ``time_column`` the file order is the time order.
    """
    cols = _Columns(user_column, item_column, time_column, tuple(keep_columns))
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r}: expected one of {', '.join(TIME_UNITS)}")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format={format!r}: expected one of {', '.join(FORMATS)}")
    if time_unit != "auto" and time_column is None:
        raise ValueError(f"time_unit={time_unit!r} needs a time_column")
    if user_column == item_column:
        raise ValueError(f"user_column and item_column are both {user_column!r}")
    clash = sorted(set(cols.keep) & set(CORE_COLUMNS))
    if clash:
        raise ValueError(f"keep_columns {clash} would overwrite the normalised columns {list(CORE_COLUMNS)}")
    if format in ("sasrec", "s3rec"):
        if time_column or cols.keep:
            raise ValueError(f"format={format!r} has only user and item ids: no time_column or keep_columns")
        cols = _Columns(USER, ITEM, None, ())
    raw, parts, fmt, name, content = _load(source, cols, format, split)
    where = _Where(parts)
    textual = fmt in ("csv", "tsv", "sasrec", "s3rec")
    columns = {
        USER: _ids(raw[cols.user], cols.user, textual, where),
        ITEM: _ids(raw[cols.item], cols.item, textual, where),
    }
    unit = None
    if cols.time:
        columns[TIME], unit = _seconds(raw[cols.time], time_unit, cols.time, where)
    else:
        columns[TIME] = pa.nulls(raw.num_rows, pa.int64())
    columns |= {c: raw[c].cast(pa.string()) if _is_text(raw[c].type) else raw[c] for c in cols.keep}
    columns[ROW] = pa.array(np.arange(raw.num_rows, dtype=np.int64))
    return InteractionLog(pa.table(columns), name, fmt, _fingerprint(content, cols, time_unit, fmt, split), unit)


def _fingerprint(content: Any, cols: _Columns, time_unit: str, fmt: str, split: str | None) -> str:
    options = dataclasses.asdict(cols) | {"time_unit": time_unit, "format": fmt, "split": split}
    return _digest({"content": content, "options": options})


def source_fingerprint(
    source: Any,
    *,
    user_column: str = USER,
    item_column: str = ITEM,
    time_column: str | None = None,
    time_unit: str = "auto",
    format: str | None = None,
    keep_columns: Sequence[str] = (),
    split: str | None = None,
) -> str | None:
    """The ``fingerprint`` :func:`read_interactions` would give, without reading the data, or None.

    Files (a path, glob, URL or list of them) are identified by path, size and mtime, so a builder can find its
    cache before reading anything. In-memory sources and Hub ids return None: only reading them tells their
    content. Bad options or missing files raise as :func:`read_interactions` would.
    """
    if not isinstance(source, str | os.PathLike) and not (
        isinstance(source, Sequence) and source and all(isinstance(p, str | os.PathLike) for p in source)
    ):
        return None
    paths = [os.fspath(source)] if isinstance(source, str | os.PathLike) else [os.fspath(p) for p in source]
    if len(paths) == 1 and format is None and not _is_url(paths[0]) and not globlib.has_magic(paths[0]):
        local = Path(paths[0])
        if local.is_dir() or (not local.exists() and _HUB_ID.fullmatch(paths[0]) and not _has_file_suffix(local)):
            return None  # a Hub id or a dataset folder
    cols = _Columns(user_column, item_column, time_column, tuple(keep_columns))
    if format in ("sasrec", "s3rec"):
        cols = _Columns(USER, ITEM, None, ())
    files = [f for p in paths for f in _expand(p)]
    formats = {_format_of(f, format) for f in files}
    if len(formats) != 1:
        return None  # read_interactions reports the mix
    return _fingerprint([_stamp(f) for f in files], cols, time_unit, formats.pop(), split)


def _load(source: Any, cols: _Columns, format: str | None, split: str | None):
    """(raw table, parts, format, source name, content descriptor for the fingerprint)."""
    pd, hfds = sys.modules.get("pandas"), sys.modules.get("datasets")  # a DataFrame implies pandas is imported
    if pd is not None and isinstance(source, pd.DataFrame):
        return _from_dataframe(source, cols)
    if hfds is not None and isinstance(source, hfds.Dataset | hfds.DatasetDict):
        return _from_dataset(source, cols, split, None, "dataset")
    if isinstance(source, str | os.PathLike):
        paths = [os.fspath(source)]
        if format is None and not _is_url(paths[0]) and not globlib.has_magic(paths[0]):
            local = Path(paths[0])
            if local.is_dir() or (not local.exists() and _HUB_ID.fullmatch(paths[0]) and not _has_file_suffix(local)):
                return _from_hub(paths[0], cols, split)
    elif isinstance(source, Sequence) and source and all(isinstance(p, str | os.PathLike) for p in source):
        paths = [os.fspath(p) for p in source]
    else:
        raise TypeError(f"cannot read interactions from {type(source).__name__}: expected a path, glob, URL, list "
                        "of paths, pandas.DataFrame, datasets.Dataset or Hub dataset id")  # fmt: skip
    return _read_files(paths, cols, format)


def _from_dataframe(df: Any, cols: _Columns):
    """Only the needed columns are converted; an object column mixing types names its first odd row."""
    from datasets.fingerprint import Hasher

    _require([str(c) for c in df.columns], cols, "DataFrame")
    arrays = {}
    for c in cols.needed:
        try:
            arrays[c] = pa.chunked_array([pa.array(df[c], from_pandas=True)])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            values = df[c].tolist()
            kinds = [None if v is None or v != v else type(v) for v in values]
            first = next((i for i, k in enumerate(kinds) if k is not None), 0)
            odd = next((i for i, k in enumerate(kinds) if k is not None and k is not kinds[first]), None)
            if odd is None:
                raise _error("DataFrame", f"cannot convert to Arrow ({e})", column=c) from e
            was, now = kinds[first].__name__, kinds[odd].__name__
            message = f"mixed types: row {first} holds {was} {values[first]!r}, this row holds {now} {values[odd]!r}"
            raise _error("DataFrame", message, f"one type in the column ({was})", row=odd, column=c) from e
    table = pa.table(arrays)
    if table.num_rows == 0:
        raise _error("DataFrame", "no interactions (the DataFrame has no rows)")
    return table, [_Part("DataFrame", table.num_rows)], "dataframe", "DataFrame", Hasher.hash(table)


def _from_hub(name: str, cols: _Columns, split: str | None):
    import datasets

    try:
        data = datasets.load_dataset(name, split=split)
    except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as e:
        raise SourceNotFoundError(f"cannot load this dataset ({type(e).__name__}: {e})", source=name) from e
    return _from_dataset(data, cols, split, name, "hub")


def _from_dataset(data: Any, cols: _Columns, split: str | None, name: str | None, fmt: str):
    """A Dataset (or one split of a DatasetDict): the needed columns as an Arrow table, memory-mapped if the
    dataset is; its ``datasets`` fingerprint identifies the content."""
    import datasets

    name = name or "Dataset"
    if isinstance(data, datasets.DatasetDict):
        if split is None and len(data) != 1:
            raise _error(name, f"has the splits {list(data)}", "split= naming one")
        split = split or next(iter(data))
        if split not in data:
            raise _error(name, f"has no split {split!r}, only {list(data)}")
        data, name = data[split], f"{name}[{split}]"
    _require(data.column_names, cols, name)
    table = data.select_columns(cols.needed).with_format("arrow")[:]
    if table.num_rows == 0:
        raise _error(name, "no interactions (the dataset has no rows)")
    return table, [_Part(name, table.num_rows)], fmt, name, [data._fingerprint, split]


def _ids(values: pa.ChunkedArray, column: str, textual: bool, where: _Where) -> pa.ChunkedArray:
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    kind = values.type
    bad = _first(pc.is_null(values, nan_is_null=True))
    if bad is not None:
        raise where.error("missing id (null or empty)", bad, column, "an id in every row")
    if pa.types.is_integer(kind):
        if kind == pa.uint64() and pc.max(values).as_py() > 2**63 - 1:
            raise where.error("id too large for int64", _first(pc.greater(values, 2**63 - 1)), column, "int64 ids")
        return values.cast(pa.int64())
    if pa.types.is_floating(kind):
        bad = _first(pc.not_equal(values, pc.floor(values)))
        if bad is not None:
            raise where.error(f"id {values[bad].as_py()!r} is not an integer", bad, column, "integer or string ids")
        return values.cast(pa.int64())
    if _is_text(kind):
        values = values.cast(pa.string())
        if textual and pc.all(pc.match_substring_regex(values, r"^-?(0|[1-9][0-9]{0,17})$")).as_py():
            return values.cast(pa.int64())  # canonical integers only: "007" stays a string
        return values
    raise where.error(f"ids of type {kind}", 0, column, "integer or string ids")
