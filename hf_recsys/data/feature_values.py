"""Raw feature-table columns -> normalised pyarrow arrays: ids (int64 or text), categorical values as normalised
text (trimmed, ``3.0`` -> ``"3"``, empty = missing), multi values (lists or delimited strings) and numbers. A value
of the wrong shape or type raises :class:`~hf_recsys.data.feature_errors.FeatureTableError` naming its row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_checks import _is_list, _is_text
from .feature_errors import _Where

_NULL_TEXT = pa.scalar(None, pa.large_string())


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
