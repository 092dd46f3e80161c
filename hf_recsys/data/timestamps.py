"""Timestamps of an interaction log -> int64 unix seconds: unit detection (seconds/ms/us/ns by magnitude), ISO 8601
strings (zoned ones converted to UTC, naive ones read as UTC) and datetime columns. Bad values name their row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_checks import _first, _is_text
from .input_errors import _Where

TIME_UNITS = ("auto", "s", "ms", "us", "ns", "iso")
"""Values of ``time_unit=``; ``auto`` detects the unit from the column's type and magnitude."""
_UNIT_SECONDS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_EXPECTED_TIME = (
    "unix seconds/milliseconds/micro/nanoseconds, an ISO 8601 date such as 2021-03-04T05:06:07Z, or a datetime"
)


def _seconds(values: pa.ChunkedArray, unit: str, column: str, where: _Where) -> tuple[pa.ChunkedArray, str]:
    """(int64 unix seconds, unit read or detected)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    kind = values.type
    bad = _first(pc.is_null(values))
    if bad is not None:
        raise where.error("missing timestamp", bad, column, _EXPECTED_TIME)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if unit not in ("auto", "iso"):
            raise where.error(f"holds datetimes ({kind}), not numbers in {unit!r}", 0, column, "time_unit='auto'")
        if pa.types.is_date(kind):
            return values.cast(pa.timestamp("s")).cast(pa.int64()), "datetime"
        return _divide(values.cast(pa.int64()), _UNIT_SECONDS[kind.unit]), "datetime"
    if _is_text(kind):
        values = pc.utf8_trim_whitespace(values.cast(pa.string()))
        number = pc.match_substring_regex(values, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
        numeric = unit in _UNIT_SECONDS or (unit == "auto" and number[0].as_py())
        if not numeric:
            return _iso(values, column, where), "iso"
        bad = _first(pc.invert(number))
        if bad is not None:
            raise where.error(
                f"cannot parse timestamp {values[bad].as_py()!r}",
                bad,
                column,
                f"a number (unix time in {unit if unit != 'auto' else 'seconds or ms'}, as row 0 holds)",
            )
        integral = pc.all(pc.match_substring_regex(values, r"^[+-]?\d{1,18}$")).as_py()
        values = values.cast(pa.int64() if integral else pa.float64())
        kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if unit == "iso":
            raise where.error(f"holds numbers ({kind})", 0, column, "ISO 8601 strings for time_unit='iso'")
        if pa.types.is_floating(kind):
            bad = _first(pc.invert(pc.is_finite(values)))
            if bad is not None:
                raise where.error(f"cannot parse timestamp {values[bad].as_py()!r}", bad, column, _EXPECTED_TIME)
        if unit == "auto":
            peak = max(abs(pc.min(values).as_py()), abs(pc.max(values).as_py()))
            unit = "s" if peak < 1e11 else "ms" if peak < 1e14 else "us" if peak < 1e17 else "ns"
        return _divide(values, _UNIT_SECONDS[unit]), unit
    raise where.error(f"timestamps of type {kind}", 0, column, _EXPECTED_TIME)


def _divide(values: pa.ChunkedArray, factor: int) -> pa.ChunkedArray:
    """Floor division to int64 seconds (floats floor too, so 1.9 s is second 1, like a truncated datetime)."""
    array = values.to_numpy()
    out = np.floor_divide(array, factor) if factor != 1 or array.dtype.kind == "f" else array
    return pa.chunked_array([pa.array(out.astype(np.int64, copy=False))])


def _iso(values: pa.ChunkedArray, column: str, where: _Where) -> pa.ChunkedArray:
    """ISO 8601 strings -> unix seconds. Strings with a zone (``Z``, ``+02:00``) are converted to UTC, the others
    read as UTC; fractions of a second are dropped. The first string that does not parse is reported."""
    values = values.combine_chunks()
    text = pc.replace_substring_regex(values, r"(\d{2}:\d{2}:\d{2})[.,]\d+", r"\1")
    zoned = pc.match_substring_regex(text, r"\d{2}:\d{2}(:\d{2})?\s?(Z|z|[+-]\d{2}(:?\d{2})?)$").to_numpy(
        zero_copy_only=False
    )
    out, failures = np.empty(len(values), dtype=np.int64), []
    for mask, target in ((zoned, pa.timestamp("s", tz="UTC")), (~zoned, pa.timestamp("s"))):
        rows = np.flatnonzero(mask)
        subset = text.take(pa.array(rows))
        try:
            out[rows] = subset.cast(target).cast(pa.int64()).to_numpy()
        except pa.ArrowInvalid:
            lo, hi = 0, len(subset)  # bisect: the first string that does not parse lies in [lo, hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                try:
                    subset.slice(lo, mid - lo).cast(target)
                    lo = mid
                except pa.ArrowInvalid:
                    hi = mid
            failures.append(int(rows[lo]))
    if failures:
        pos = min(failures)
        expected = "an ISO 8601 date such as 2021-03-04 or 2021-03-04T05:06:07Z"
        raise where.error(f"cannot parse timestamp {values[pos].as_py()!r}", pos, column, expected)
    return pa.chunked_array([pa.array(out)])
