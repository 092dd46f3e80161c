"""Reading item and user feature tables: CSV, TSV, Parquet and JSON Lines files, pandas DataFrames and S3-Rec
``*_item2attributes.json`` mappings -> a checked :class:`FeatureTable`, each feature column's kind given or inferred
(``kinds="auto"``). Bad input fails here, naming the file, the row and the column."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_checks import _is_list, _is_text
from .feature_errors import FeatureTableError, _Where
from .feature_fields import DEFAULT_DELIMITER, KINDS
from .feature_values import _column, _keys, _multi, _numbers, _text
from .movielens_errors import MissingDataError

logger = logging.getLogger(f"{__package__}.features")  # one logger for the feature modules, as before the split
AUTO_NUMERIC_MIN_DISTINCT = 32  # kinds="auto" buckets a numeric column only with MORE distinct values than this
MAPPING_COLUMN = "attributes"  # the one feature column of an S3-Rec ``*_item2attributes.json`` mapping
_READERS = {".csv": "CSV", ".tsv": "TSV", ".tab": "TSV", ".parquet": "Parquet", ".pq": "Parquet"}
_READERS |= {".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".json": "S3-Rec JSON"}


def _infer(arr: pa.Array, delimiter: str) -> tuple[str, str]:
    """``kinds="auto"``: list values -> multi; a numeric dtype with more than AUTO_NUMERIC_MIN_DISTINCT distinct
    values -> numeric; strings that contain the delimiter -> multi; anything else -> categorical."""
    t = arr.type
    if _is_list(t):
        return "multi", f"{t} values"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        n = pc.count_distinct(arr.cast(pa.float64()).drop_null()).as_py()
        if n > AUTO_NUMERIC_MIN_DISTINCT:
            return "numeric", f"{t} with {n} > {AUTO_NUMERIC_MIN_DISTINCT} distinct values"
        return "categorical", f"{t} with {n} <= {AUTO_NUMERIC_MIN_DISTINCT} distinct values"
    if _is_text(t) and pc.any(pc.match_substring(arr, delimiter)).as_py():
        return "multi", f"strings containing {delimiter!r}"
    return "categorical", f"{t} values"


@dataclass
class FeatureTable:
    """A checked item or user table (made by :func:`read_feature_table`). ``data`` holds the key column (int64
    or strings), the title column and the feature columns (categorical: normalised text, numeric: float64,
    multi: as read); ``kinds`` maps each feature column to its kind, ``inferred`` says why for inferred ones."""

    data: pa.Table
    key_column: str
    title_column: str | None
    kinds: dict[str, str]
    delimiters: dict[str, str]
    inferred: dict[str, str]
    where: _Where = field(repr=False)

    @property
    def source(self) -> str:
        """The file the table was read from, or what it was made from."""
        return self.where.source


def _check_columns(present: Sequence[str], wanted: Sequence[str], where: _Where) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise where.error(f"no column {missing[0]!r}; columns present: {list(present)}", missing[0],
                          expected="the key, title and feature columns asked for")  # fmt: skip


def _read(source: Any, key_column: str, columns: list[str] | None, text: Callable[[str], bool]) -> tuple[pa.Table, _Where]:  # fmt: skip
    """``source`` as a pyarrow table (only ``columns`` if given); CSV/TSV columns where ``text(name)`` stay text."""
    if isinstance(source, pd.DataFrame):
        labels = None if isinstance(source.index, pd.RangeIndex) else source.index  # else the row says it all
        where = _Where("pandas DataFrame", labels=labels, label="index")
        _check_columns([str(c) for c in source.columns], columns or [], where)
        return pa.table({str(c): _column(source[c], where, str(c)) for c in columns or source.columns}), where
    path = None if isinstance(source, Mapping) else Path(source)
    what = "mapping" if path is None else _READERS.get(path.suffix.lower())
    if what is None:
        raise FeatureTableError(f"unknown extension {path.suffix!r}", path, expected=f"one of {sorted(_READERS)}")
    if path is not None and not path.is_file():
        raise MissingDataError("file not found", path, expected=f"a {what} file")
    if what == "S3-Rec JSON":
        try:
            with open(path, encoding="utf-8") as f:
                source = json.load(f)
        except json.JSONDecodeError as e:
            raise FeatureTableError(f"not valid JSON ({e})", path, expected="an id -> attributes object") from None
        if not isinstance(source, Mapping):
            raise FeatureTableError(f"a JSON {type(source).__name__}", path, expected="an id -> attributes object")
    if isinstance(source, Mapping):  # the S3-Rec id -> [attribute ids] mapping; JSON keys are always text:
        where = _Where(str(path or "id -> attributes mapping"), labels=list(source))
        keys = pa.array([str(k) for k in source], pa.large_string())  # canonical integers become integers
        if len(keys) and pc.all(pc.match_substring_regex(keys, r"^(0|-?[1-9][0-9]{0,17})$")).as_py():
            keys = keys.cast(pa.int64())
        return pa.table({key_column: keys, MAPPING_COLUMN: _column(list(source.values()), where, MAPPING_COLUMN)}), where  # fmt: skip
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    where = _Where(str(path), path, {"CSV": 1, "TSV": 1, "JSON Lines": 0}.get(what))
    parse = pacsv.ParseOptions(delimiter="," if what == "CSV" else "\t")
    try:
        fmt = {"Parquet": ds.ParquetFileFormat(), "JSON Lines": ds.JsonFileFormat()}.get(what)
        names = ds.dataset(path, format=fmt or ds.CsvFileFormat(parse)).schema.names
        _check_columns(names, columns or [], where)
        types = pacsv.ConvertOptions(column_types={c: pa.large_string() for c in names if text(c)})
        return ds.dataset(path, format=fmt or ds.CsvFileFormat(parse, convert_options=types)).to_table(columns), where
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise FeatureTableError(f"cannot read as {what} ({e})", path, expected=f"a {what} file") from None


def read_feature_table(
    source: str | os.PathLike[str] | pd.DataFrame | Mapping[Any, Any],
    key_column: str,
    *,
    title_column: str | None = None,
    feature_columns: Sequence[str] | None = None,
    kinds: str | Mapping[str, str] | None = None,
    delimiter: str | Mapping[str, str] | None = None,
) -> FeatureTable:
    """Read and check an item or user table, so that bad input fails here, naming the file, row and column.

    Args:
        source: a ``.csv``, ``.tsv``, ``.parquet`` or ``.jsonl`` path, a pandas DataFrame, or (items) an S3-Rec
            ``*_item2attributes.json`` path or ``{id: [attribute ids]}`` mapping (feature :data:`MAPPING_COLUMN`).
        key_column: the id column (integers or strings; the name given to a mapping's keys). CSV/TSV ids
            are read as text, so ``007`` stays ``007``; :func:`build_feature_fields` matches them as text.
        title_column: an optional display column (not a feature).
        feature_columns: the feature columns; default all but the key and title columns.
        kinds: ``"auto"`` (default), one of :data:`KINDS` for all columns, or a mapping column -> kind (the
            others ``"auto"``). CSV/TSV columns declared categorical or multi are read as text.
        delimiter: how multi strings split (default :data:`DEFAULT_DELIMITER`), or a mapping column -> delimiter.

    Raises:
        FeatureTableError: a missing column, a null or repeated id, a multi column that holds something else
            than lists of scalars or delimited strings, a numeric column with a value that is not a number, or
            a file that is not what its extension says. ``MissingDataError`` (a ``FileNotFoundError``) if absent.
    """
    per_column = dict(kinds) if isinstance(kinds, Mapping) else {}
    default = "auto" if kinds is None or isinstance(kinds, Mapping) else kinds
    for k in (default, *per_column.values()):
        if k not in (*KINDS, "auto"):
            raise ValueError(f"kind {k!r} is not one of {(*KINDS, 'auto')}")
    named = [key_column, *([title_column] if title_column else [])]
    feats = (
        None if feature_columns is None else [*feature_columns, *(c for c in per_column if c not in feature_columns)]
    )
    if set(named) & set(feats or per_column) or title_column == key_column:
        raise ValueError("the key and title columns must differ and cannot be feature columns")
    text = lambda c: c in named or per_column.get(c, default) in ("categorical", "multi")  # noqa: E731
    table, where = _read(source, key_column, None if feats is None else [*named, *feats], text)
    _check_columns(table.column_names, [*named, *per_column], where)
    feats = feats or [c for c in table.column_names if c not in named]
    delims = {
        c: delimiter if isinstance(delimiter, str) else (delimiter or {}).get(c, DEFAULT_DELIMITER) for c in feats
    }
    data = {key_column: _keys(_column(table[key_column], where, key_column), where, key_column)}
    if title_column:
        data[title_column] = _text(_column(table[title_column], where, title_column), where, title_column, "text")
    out_kinds, inferred = {}, {}
    for c in feats:
        arr, kind = _column(table[c], where, c), per_column.get(c, default)
        if kind == "auto":
            kind, inferred[c] = _infer(arr, delims[c])
            logger.info("%s: column %r is %s (%s)", where.source, c, kind, inferred[c])
        if kind == "categorical":
            arr = _text(arr, where, c, "one scalar value per row (or kind 'multi')")
        elif kind == "numeric":
            arr = pa.array(_numbers(arr, where, c))
        else:
            _multi(arr, delims[c], where, c)  # check the shape now, so that the error names the row
        data[c], out_kinds[c] = arr, kind
    return FeatureTable(pa.table(data), key_column, title_column, out_kinds, delims, inferred, where)
