"""The pyarrow type and mask checks that the interaction and feature-table readers share."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Index of the first true value, or None."""
    index = pc.index(mask, True).as_py()
    return None if index < 0 else index
