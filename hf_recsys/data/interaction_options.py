"""Options of :func:`hf_recsys.data.interactions.load_interactions`: validated once, all part of the cache key."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import filters as _filters
from .sources import ITEM, USER
from .splits import check_protocol_options, protocol_fractions

if TYPE_CHECKING:
    from .interaction_tables import TableOptions

__all__ = ["InteractionOptions"]


@dataclass(frozen=True)
class InteractionOptions:
    """Every option of one preparation (all part of the cache key); see :func:`load_interactions`."""

    user_column: str = USER
    item_column: str = ITEM
    time_column: str | None = None
    time_unit: str = "auto"
    format: str | None = None
    filters: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    min_history: int | None = 3
    protocol: str = "leave-one-out"
    seed: int = 42
    window_size: int = 4
    window_step: int = 2
    test_fraction: float | None = None
    validation_fraction: float | None = None
    split: str | None = None
    name: str = "interactions"
    license: str | None = None
    item_table: TableOptions | None = None  # the item and user tables (`interaction_tables.table_options`)
    user_table: TableOptions | None = None

    def tables(self) -> dict[str, TableOptions]:
        """The tables given, by side (``"item"``, ``"user"``)."""
        return {t.side: t for t in (self.item_table, self.user_table) if t is not None}

    def filter_spec(self) -> list[tuple[str, dict[str, Any]]]:
        """The filters for :func:`apply_filters`, ``min_history`` last (unless the filters already hold one)."""
        spec = [(name, dict(params)) for name, params in self.filters]
        if self.min_history and all(name != "min_history" for name, _ in spec):
            spec.append(("min_history", {"n": int(self.min_history)}))
        return spec

    def keep_columns(self) -> tuple[str, ...]:
        """The log columns the filters read (``min_rating``'s and ``keep_events``' ``column``)."""
        return tuple(dict.fromkeys(str(p["column"]) for _, p in self.filter_spec() if "column" in p))

    def fractions(self) -> tuple[float, float]:
        """(test, validation) fractions with the protocol defaults filled in (`splits.protocol_fractions`)."""
        return protocol_fractions(self.protocol, self.test_fraction, self.validation_fraction)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able options (filters as ``[{"name": ..., **params}]``, tables as their ``to_dict()``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}  # not asdict: it would deep-copy a DataFrame
        out["filters"] = [{"name": name, **dict(params)} for name, params in self.filters]
        for side, table in self.tables().items():
            out[f"{side}_table"] = table.to_dict()
        return json.loads(json.dumps(out, sort_keys=True, default=str))


def _options(filters: Sequence[Any], **values: Any) -> InteractionOptions:
    """Validated options: bad values fail here, before any file is read."""
    parsed = _filters._parse_spec(list(filters))
    frozen = tuple((name, tuple(sorted(params.items()))) for name, params in parsed)
    opts = InteractionOptions(filters=frozen, **values)
    check_protocol_options(
        opts.protocol, opts.window_size, opts.window_step, opts.test_fraction, opts.validation_fraction
    )
    if opts.min_history is not None and (int(opts.min_history) != opts.min_history or opts.min_history < 0):
        raise ValueError(f"min_history={opts.min_history!r}: expected an integer >= 0, or None")
    return opts


def default_dataset_name(source: Any) -> str:
    """The source file's stem (``All_Beauty.csv`` -> ``All_Beauty``), else a word for the kind of source."""
    if isinstance(source, Sequence) and not isinstance(source, str | bytes) and source:
        source = source[0]
    if isinstance(source, str | os.PathLike):
        path = Path(os.fspath(source).split("?")[0])
        if path.suffix.lower() in (".gz", ".bz2", ".zst", ".lz4"):
            path = path.with_suffix("")
        if any(ch in path.name for ch in "*?["):
            return path.parent.name or "interactions"
        return path.stem or path.name or "interactions"
    return "dataframe" if type(source).__name__ == "DataFrame" else "dataset"
