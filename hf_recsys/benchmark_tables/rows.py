"""Which benchmark rows a table shows: the data variant of a row, the latest row of each model.

Pure Python, like the whole package: no torch, transformers, datasets or numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .format import _model_key

# Rows recorded before rows carried their data variant all came from the SASRec-format ML-1M file (the only ML-1M
# copy the benchmark machine had); `data_variant` reads them as such.
DEFAULT_VARIANT = "sasrec-benchmark"


def data_variant(row: Mapping[str, Any]) -> str:
    """Which file of the dataset a row was measured on.

    ``row["data_variant"]`` (what ``hf-recsys bench`` records), else ``row["data"]["variant"]`` (a whole
    ``describe()``), else :data:`DEFAULT_VARIANT` for the rows recorded before either existed.
    """
    if row.get("data_variant"):
        return str(row["data_variant"])
    data = row.get("data")
    if isinstance(data, Mapping) and data.get("variant"):
        return str(data["variant"])
    return DEFAULT_VARIANT


def latest_rows(
    rows: Iterable[Mapping[str, Any]],
    dataset: str = "ml-1m",
    protocol: str = "leave-one-out",
    variant: str = DEFAULT_VARIANT,
) -> list[Mapping[str, Any]]:
    """The latest row (last in file order) of each model for one dataset, protocol and data variant."""
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if row.get("dataset") == dataset and row.get("protocol") == protocol and data_variant(row) == variant:
            latest[str(row["model"])] = row
    return [latest[name] for name in sorted(latest, key=_model_key)]
