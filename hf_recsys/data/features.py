"""Item and user feature tables -> feature fields, the side features of any data set (groundwork of issue 21).

A table is keyed by item (or user) id. Each feature column becomes a field of one kind:

* ``categorical``: one value per row (brand, gender, occupation).
* ``multi``: a list, or a delimited string such as ``Action|Comedy`` (genres, tags, S3-Rec attributes); a set:
  repeats merge, and a row's values are ordered by repeats, then first occurrence (what a ``max_values`` cut keeps).
* ``numeric``: bucketed by quantiles (price, year, age). Rule: with at most ``max_buckets`` (16) distinct values
  each value is its own bucket; otherwise the cut points are the ``i / max_buckets`` quantiles (inverted CDF: data
  values), repeats removed, so tied data get fewer buckets. Bucket ``b`` holds ``edges[b-2] <= x < edges[b-1]``.

Index 0 means padding, missing or unknown. A field is a :class:`FeatureField` (JSON round trip, so that, saved
beside a model, it encodes new items later; unseen values -> 0) and an int32 matrix ``(len(ordered_ids) + 1,
max_values)`` in token order (row ``t`` = ``ordered_ids[t - 1]``; row 0, the padding token or unknown user, is
zero) that feeds ``nn.EmbeddingBag(mode="mean", padding_idx=0)`` as is. Categorical and multi values compare as
normalised text (trimmed, ``3.0`` -> ``"3"``, empty = missing), so CSV, Parquet and JSON requests agree. Fields
are fitted on the rows whose id is in ``ordered_ids``: a value seen only outside them would never be trained.

    table = read_feature_table("items.csv", "item_id", title_column="title")  # kinds="auto": table.inferred
    feats = build_feature_fields(table, item_vocab.item_ids)  # feats.matrices["genres"], feats.report
    save_feature_fields("model/item_fields.json", feats.fields)  # load_feature_fields(...) to encode new items
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .movielens import DataFormatError, MissingDataError
from .vocab import atomic_write_json

__all__ = [
    "AUTO_NUMERIC_MIN_DISTINCT",
    "DEFAULT_DELIMITER",
    "KINDS",
    "MAPPING_COLUMN",
    "MAX_BUCKETS",
    "EncodedFeatures",
    "FeatureField",
    "FeatureTable",
    "FeatureTableError",
    "build_feature_fields",
    "load_feature_fields",
    "read_feature_table",
    "save_feature_fields",
]

logger = logging.getLogger(__name__)
KINDS = ("categorical", "multi", "numeric")
DEFAULT_DELIMITER = "|"
MAX_BUCKETS = 16
AUTO_NUMERIC_MIN_DISTINCT = 32  # kinds="auto" buckets a numeric column only with MORE distinct values than this
MAPPING_COLUMN = "attributes"  # the one feature column of an S3-Rec ``*_item2attributes.json`` mapping
_FORMAT = "hf_recsys.FeatureFields"
_READERS = {".csv": "CSV", ".tsv": "TSV", ".tab": "TSV", ".parquet": "Parquet", ".pq": "Parquet"}
_READERS |= {".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".json": "S3-Rec JSON"}
_NULL_TEXT = pa.scalar(None, pa.large_string())


class FeatureTableError(DataFormatError):
    """A feature table that cannot be used. The message names the source, the line (text files) or the row
    (1-based, header not counted) and key, the column, and what was expected; all are attributes too."""

    def __init__(self, message: str, path: Any = None, *, line: int | None = None, row: int | None = None,
                 column: str | None = None, key: Any = None, label: str = "key", expected: str | None = None) -> None:  # fmt: skip
        self.row, self.column, self.key = row, column, key.item() if isinstance(key, np.generic) else key
        where = f"row {row}" if line is None and row is not None else ""
        where += "" if key is None else f" ({label} {self.key!r})"
        where = ", ".join(w for w in (where.strip(), "" if column is None else f"column {column!r}") if w)
        super().__init__(f"{where}: {message}" if where else message, path, line, expected)


@dataclass
class _Where:
    """Where values come from, to turn a 0-based row position into an error that points at it."""

    source: str
    path: Path | None = None
    header_lines: int | None = None  # text files: non-blank lines before the first row (CSV/TSV 1, JSON Lines 0)
    labels: Any = None  # mapping keys or DataFrame index labels, by row, named in errors as `label`
    label: str = "key"

    def error(self, message: str, column: str | None, row: int | None = None, expected: str | None = None):
        line = key = None
        if row is not None:
            if self.path is not None and self.header_lines is not None:
                with open(self.path, "rb") as f:  # the readers skip blank lines: count the others
                    nonblank = [i for i, text in enumerate(f, start=1) if text.strip()]
                line = dict(enumerate(nonblank)).get(row + self.header_lines)
            key = None if self.labels is None else self.labels[row]
        return FeatureTableError(message, self.path or self.source, line=line, row=None if row is None else row + 1,
                                 column=column, key=key, label=self.label, expected=expected)  # fmt: skip


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _shape(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "null"
    if isinstance(v, (list, tuple, np.ndarray)):
        return "nested list" if any(isinstance(x, (list, tuple, np.ndarray, Mapping)) for x in v) else "list"
    return "dict" if isinstance(v, Mapping) else "str" if isinstance(v, str) else "number"


def _column(values: Any, where: _Where, column: str | None) -> pa.Array:
    """One column as a (non-dictionary) pyarrow array; a conversion error names the first odd row."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            shapes = [_shape(v) for v in values]  # error path only
            bad = next((i for i, s in enumerate(shapes) if s == "nested list"), None)
            if bad is not None:
                raise where.error("nested values (a list inside a list)", column, bad, "a list of scalars") from None
            first = next((s for s in shapes if s != "null"), "null")
            bad = next((i for i, s in enumerate(shapes) if s not in ("null", first)), None)
            if bad is None:
                raise where.error(f"cannot convert ({e})", column) from None
            raise where.error(f"a {shapes[bad]} in a column of {first}s", column, bad, "one shape per column") from None
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def _text(arr: pa.Array, where: _Where, column: str | None, expected: str) -> pa.Array:
    """Scalars as normalised large strings: trimmed, integral floats without ``.0``, empty or NaN -> null."""
    t = arr.type
    if pa.types.is_floating(t):
        arr = arr.cast(pa.float64())
        whole = pc.and_(pc.equal(arr, pc.floor(arr)), pc.less(pc.abs(arr), 2.0**53))
        ints = pc.cast(pc.cast(pc.if_else(whole, arr, 0.0), pa.int64()), pa.large_string())
        return pc.if_else(pc.is_nan(arr), _NULL_TEXT, pc.if_else(whole, ints, pc.cast(arr, pa.large_string())))
    if _is_text(t):
        out = pc.utf8_trim_whitespace(arr.cast(pa.large_string()))
        return pc.if_else(pc.equal(out, ""), _NULL_TEXT, out)
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t) or pa.types.is_temporal(t):
        return arr.cast(pa.large_string())
    bad = pc.index(arr.is_valid(), True).as_py()
    raise where.error(f"a {t} value", column, bad if bad >= 0 else None, expected)


def _multi(arr: pa.Array, delimiter: str, where: _Where, column: str | None) -> tuple[np.ndarray, pa.Array]:
    """A multi-valued column as (row of each value, normalised values); nulls and empty values dropped."""
    expected = f"a list of scalars or a {delimiter!r}-delimited string per row"
    if _is_text(arr.type):
        arr = pc.split_pattern(arr.cast(pa.large_string()), delimiter)
    if not _is_list(arr.type):  # one number per row: a one-value list
        parents, flat = np.arange(len(arr)), _text(arr, where, column, expected)
    else:
        parents, inner = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False), pc.list_flatten(arr)
        if pa.types.is_nested(inner.type):
            rows = parents[np.flatnonzero(inner.is_valid().to_numpy(zero_copy_only=False))]
            where_bad = int(rows[0]) if rows.size else None
            raise where.error("nested values (a list inside a list)", column, where_bad, expected)
        flat = _text(_column(inner, where, column), where, column, expected)
    keep = flat.is_valid().to_numpy(zero_copy_only=False)
    return np.asarray(parents, dtype=np.int64)[keep], flat.filter(pa.array(keep))


def _numbers(arr: pa.Array, where: _Where, column: str | None) -> np.ndarray:
    """A numeric column as float64 (NaN = missing); a value that is not a number names its row."""
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
        return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    series = pd.Series(_text(arr, where, column, "a number").to_pandas(), dtype=object)
    out = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(out) & series.notna().to_numpy())
    if bad.size:
        raise where.error(f"{series.iloc[bad[0]]!r} is not a number", column, int(bad[0]), "a number")
    return out


def _pad(parents: np.ndarray, codes: np.ndarray, n: int, width: int | None, exact: bool) -> tuple[np.ndarray, int]:
    """Each row's distinct non-zero codes, ordered by repeats then first occurrence, padded with 0: (matrix,
    rows cut). The width is ``width`` if ``exact``, else the longest row (at least 1) capped at ``width``."""
    keep = np.flatnonzero(codes > 0)
    size = int(codes.max(initial=0)) + 1
    uniq, first, counts = np.unique(parents[keep] * size + codes[keep], return_index=True, return_counts=True)
    order = np.lexsort((keep[first], -counts, uniq // size))
    rows, vals = uniq[order] // size, uniq[order] % size
    per_row = np.bincount(rows, minlength=n)
    longest = max(1, int(per_row.max(initial=0)))
    width = width if exact else longest if width is None else min(width, longest)
    rank = np.arange(rows.size) - (np.cumsum(per_row) - per_row)[rows]
    out = np.zeros((n, width), dtype=np.int32)
    out[rows[rank < width], rank[rank < width]] = vals[rank < width]
    return out, int(np.count_nonzero(per_row > width))


@dataclass
class FeatureField:
    """One field: how raw values become embedding-bag indices (0 = padding, missing or unknown).

    ``vocabulary`` maps a normalised value (numeric: a bucket label) to its index ``1..len`` in a fixed order
    (numbers ascending, then text); ``edges`` are a numeric field's cut points; ``max_values`` is the width of
    its matrix (1 unless multi); ``delimiter`` splits a multi field's strings; ``size`` is the embedding rows.
    """

    name: str
    kind: str
    vocabulary: dict[str, int]
    edges: list[float] | None = None
    max_values: int = 1
    delimiter: str | None = None
    _lookup: pa.Array | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if sorted(self.vocabulary.values()) != list(range(1, len(self.vocabulary) + 1)):
            raise ValueError(f"field {self.name!r}: vocabulary indices must be 1..{len(self.vocabulary)}")
        if self.kind == "numeric" and (self.edges is None or len(self.vocabulary) != len(self.edges) + 1):
            raise ValueError(f"field {self.name!r}: a numeric field needs len(edges) + 1 buckets")

    @property
    def size(self) -> int:
        """Embedding rows: the vocabulary plus index 0."""
        return len(self.vocabulary) + 1

    @property
    def values(self) -> list[str]:
        """The vocabulary in index order (``values[i - 1]`` has index ``i``)."""
        return sorted(self.vocabulary, key=self.vocabulary.__getitem__)

    def _encode(self, raw: Any, where: _Where, width: int | None, exact: bool, delimiter: str | None = None):
        arr = _column(raw, where, self.name)
        if self.kind == "numeric":
            x = _numbers(arr, where, self.name)
            idx = np.where(np.isnan(x), 0, 1 + np.searchsorted(np.asarray(self.edges), x, side="right"))
            return idx.astype(np.int32).reshape(-1, 1), 0
        if self._lookup is None:
            self._lookup = pa.array(self.values, pa.large_string())
        if self.kind == "categorical":
            parents, flat = np.arange(len(arr)), _text(arr, where, self.name, "one scalar value per row")
        else:
            parents, flat = _multi(arr, delimiter or self.delimiter or DEFAULT_DELIMITER, where, self.name)
        codes = pc.fill_null(pc.index_in(flat, value_set=self._lookup), -1).to_numpy(zero_copy_only=False) + 1
        return _pad(parents, codes.astype(np.int64), len(arr), width, exact)

    def encode_many(self, raw: Any) -> np.ndarray:
        """Raw values of many rows (a list, pandas Series or pyarrow array) -> int32 ``(len(raw), max_values)``.

        Why: encodes NEW items or users at serving or fine-tuning time with the vocabulary a model was
        trained with. Unseen or missing values give 0; a multi row keeps at most ``max_values`` values."""
        return self._encode(raw, _Where("raw values"), self.max_values, True)[0]

    def encode_values(self, raw: Any) -> list[int]:
        """One row's raw value (a scalar, a list or a delimited string) -> its indices, never empty: one index
        for a categorical or numeric field, the distinct known values of a multi field, ``[0]`` if none."""
        row = self.encode_many([raw])[0]
        return row[row != 0].tolist() or [0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; :meth:`from_dict` restores an equal field."""
        return {"name": self.name, "kind": self.kind, "values": self.values, "edges": self.edges,
                "max_values": self.max_values, "delimiter": self.delimiter}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureField:
        """Inverse of :meth:`to_dict`."""
        vocab = {str(v): i for i, v in enumerate(data["values"], start=1)}
        edges = None if data.get("edges") is None else [float(e) for e in data["edges"]]
        return cls(data["name"], data["kind"], vocab, edges, int(data.get("max_values", 1)), data.get("delimiter"))


def _fit(name: str, kind: str, arr: pa.Array, delimiter: str, where: _Where, max_buckets: int) -> FeatureField:
    """A field whose vocabulary (or buckets, by the rule of the module doc) is fitted on ``arr``."""
    if kind == "numeric":
        x = np.sort(_numbers(arr, where, name))
        x = x[~np.isnan(x)]
        edges = np.unique(x)[1:]
        if edges.size >= max_buckets:
            edges = np.unique(np.quantile(x, np.arange(1, max_buckets) / max_buckets, method="inverted_cdf"))
            edges = edges[edges > x[0]]
        e = [repr(float(v)) for v in edges]
        labels = [f"< {e[0]}", *(f"[{a}, {b})" for a, b in itertools.pairwise(e)), f">= {e[-1]}"] if e else ["all"]
        return FeatureField(name, kind, {lab: i for i, lab in enumerate(labels, 1)}, edges.tolist())
    multi = kind == "multi"
    flat = _multi(arr, delimiter, where, name)[1] if multi else _text(arr, where, name, "one scalar value per row")
    uniq = pc.unique(flat.drop_null()).to_numpy(zero_copy_only=False).astype(object)
    num = pd.to_numeric(pd.Series(uniq, dtype=object), errors="coerce").to_numpy()  # numbers first, ascending
    uniq = uniq[np.lexsort((uniq.astype(str), np.nan_to_num(num, nan=0.0), np.isnan(num)))].tolist()
    return FeatureField(name, kind, {v: i for i, v in enumerate(uniq, 1)}, delimiter=delimiter if multi else None)


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


def _keys(arr: pa.Array, where: _Where, column: str) -> pa.Array:
    """The id column as int64 or large strings; a null, non-integer float or repeated id names its row."""
    nulls = pc.is_null(arr, nan_is_null=True).to_numpy(zero_copy_only=False)
    if nulls.any():
        raise where.error("null id", column, int(np.flatnonzero(nulls)[0]), "an id in every row")
    if pa.types.is_floating(arr.type):
        whole = pc.equal(arr, pc.floor(arr)).to_numpy(zero_copy_only=False)
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise where.error(f"id {arr[bad].as_py()!r} is not an integer", column, bad, "integer or string ids")
    elif not (pa.types.is_integer(arr.type) or _is_text(arr.type)):
        raise where.error(f"ids of type {arr.type}", column, None, "integer or string ids")
    arr = arr.cast(pa.large_string() if _is_text(arr.type) else pa.int64())
    series = pd.Series(arr.to_numpy(zero_copy_only=False))
    dup = np.flatnonzero(series.duplicated().to_numpy())
    if dup.size:
        i = int(dup[0])
        j = int(np.flatnonzero((series == series.iloc[i]).to_numpy())[0])
        raise where.error(f"id {arr[i].as_py()!r} appears again (first in row {j + 1})", column, i, "one row per id")
    return arr


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


@dataclass
class EncodedFeatures:
    """What :func:`build_feature_fields` makes: the fields by name; one int32 matrix per field, in token order,
    row 0 = padding; the titles in token order (None where unknown, or no title column); the matching report."""

    fields: dict[str, FeatureField]
    matrices: dict[str, np.ndarray]
    titles: list[str | None] | None
    report: dict[str, Any]


def build_feature_fields(
    table: FeatureTable,
    ordered_ids: Sequence[Any] | np.ndarray,
    *,
    fields: Iterable[FeatureField] | Mapping[str, FeatureField] | None = None,
    max_values: int | Mapping[str, int] | None = None,
    max_buckets: int = MAX_BUCKETS,
) -> EncodedFeatures:
    """Feature fields and their matrices for the ids in token order (token ``t`` is ``ordered_ids[t - 1]``).

    Why: the model looks a token's features up by row, so the table is aligned with the vocabulary once, here,
    vectorised. Ids that are not in the table get all-zero rows and table rows of other ids are ignored; both
    are counted in ``report`` (with up to 5 examples). Integer and string ids are matched as text.

    Args:
        fields: reuse these fields (a trained model's) instead of fitting new ones, e.g. for new items at
            fine-tuning time: unseen values give 0 and multi matrices keep the fields' ``max_values``.
        max_values: at most this many values per multi row (an int, or a mapping column -> int); default the
            longest row. Rows cut are counted in ``report["fields"][name]["truncated_rows"]``.
        max_buckets: at most this many buckets per numeric field.

    Raises:
        FeatureTableError: no id is in the table (usually ids of another form); repeated ``ordered_ids``.
        ValueError: ``fields`` that do not fit the table's columns.
    """
    ids = _keys(_column(np.asarray(ordered_ids), _Where("ordered_ids"), None), _Where("ordered_ids"), "ordered_ids")
    keys = table.data[table.key_column].combine_chunks()
    match = "exact" if ids.type == keys.type else "as text"
    a, b = (ids, keys) if match == "exact" else (ids.cast(pa.large_string()), keys.cast(pa.large_string()))
    pos = pd.Index(b.to_numpy(zero_copy_only=False)).get_indexer(a.to_numpy(zero_copy_only=False))
    matched, n = pos >= 0, len(ids)
    rows, n_matched = pos[pos >= 0], int(np.count_nonzero(pos >= 0))
    used = np.zeros(table.data.num_rows, dtype=bool)
    used[rows] = True
    missing, unused = ids.filter(pa.array(~matched))[:5].to_pylist(), keys.filter(pa.array(~used))[:5].to_pylist()
    if n and table.data.num_rows and not n_matched:
        raise FeatureTableError(f"none of the {n} ids is in the table (ids {missing}..., keys {unused}...)",
                                table.source, column=table.key_column, expected="the ids of the log")  # fmt: skip
    given = (
        None if fields is None else {f.name: f for f in (fields.values() if isinstance(fields, Mapping) else fields)}
    )
    for name, f in (given or {}).items():
        if table.kinds.get(name, f.kind) != f.kind or name not in table.kinds:
            got = table.kinds.get(name, "absent")
            raise ValueError(f"field {name!r} ({f.kind}) does not fit column {name!r} of {table.source} ({got})")
    where = table.where  # the columns were checked when read: no error can name a row here
    take = pa.array(rows, pa.int64())
    out_fields, matrices, stats = {}, {}, {}
    for name in given or table.kinds:
        col = table.data[name].combine_chunks().take(take)
        if given is not None:
            f, width, exact = given[name], given[name].max_values, True
        else:
            f = _fit(name, table.kinds[name], col, table.delimiters[name], where, max_buckets)
            width = max_values.get(name) if isinstance(max_values, Mapping) else max_values
            exact = False
        m, cut = f._encode(col, where, width, exact, table.delimiters[name])  # the table's own delimiter
        f.max_values = m.shape[1]
        matrices[name] = np.zeros((n + 1, m.shape[1]), dtype=np.int32)
        matrices[name][1 + np.flatnonzero(matched)] = m
        out_fields[name] = f
        stats[name] = {"kind": f.kind, "size": f.size, "max_values": f.max_values, "truncated_rows": cut,
                       "rows_without_value": int(np.count_nonzero(~m.any(axis=1)))}  # fmt: skip
    titles = None
    if table.title_column:
        t = np.full(n, None, dtype=object)
        t[matched] = table.data[table.title_column].combine_chunks().take(take).to_numpy(zero_copy_only=False)
        titles = t.tolist()
    report = {"source": table.source, "key_column": table.key_column, "ids": n, "table_rows": table.data.num_rows,
              "matched": n_matched, "missing_from_table": n - n_matched, "unused_table_rows": table.data.num_rows - n_matched,
              "missing_examples": missing, "unused_examples": unused, "key_match": match,
              "inferred": dict(table.inferred), "fields": stats}  # fmt: skip
    if n_matched < n:
        logger.warning("%s: %d of %d ids are not in the table; their features are 0", table.source, n - n_matched, n)
    return EncodedFeatures(out_fields, matrices, titles, report)


def save_feature_fields(
    path: str | os.PathLike[str], fields: Iterable[FeatureField] | Mapping[str, FeatureField]
) -> Path:
    """Write fields as JSON (atomically), e.g. ``item_fields.json`` beside a model, to encode new items later."""
    fields = fields.values() if isinstance(fields, Mapping) else fields
    atomic_write_json(path, {"format": _FORMAT, "version": 1, "fields": [f.to_dict() for f in fields]})
    return Path(path)


def load_feature_fields(path: str | os.PathLike[str]) -> list[FeatureField]:
    """Read the fields written by :func:`save_feature_fields` (a list, in the saved order)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("version", 0) > 1:
        raise ValueError(f"{path}: not a {_FORMAT} file of version 1")
    return [FeatureField.from_dict(d) for d in data["fields"]]
