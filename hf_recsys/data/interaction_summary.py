"""How :func:`hf_recsys.data.interactions.load_interactions` names what it prepared: the source file names and the
one-sentence description of ``describe()``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .interaction_log import InteractionLog

FORMAT_LABELS = {
    "csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "jsonl": "JSON Lines", "sasrec": "SASRec 'user item' text",
    "s3rec": "S3-Rec 'user item1 item2 ...' text", "dataframe": "pandas DataFrame", "dataset": "datasets.Dataset",
    "hub": "Hub dataset",
}  # fmt: skip


def source_files(source: Any, log_source: str) -> str:
    """The file names the log was read from, for ``describe()["source_file"]``."""
    if isinstance(source, str | os.PathLike) and Path(source).is_file():
        return Path(source).name
    if isinstance(source, Sequence) and not isinstance(source, str | bytes) and source:
        return ", ".join(Path(os.fspath(p)).name for p in source)
    return log_source


def log_description(
    source: Any, log: InteractionLog, time_column: str | None, n_users: int, n_items: int, n: int, report: Any,
    n_short: int,
) -> str:  # fmt: skip
    """``describe()["description"]``: the file, its format, the counts, the time column, filters and short users."""
    label = FORMAT_LABELS.get(log.format, log.format)
    text = f"Interaction log {source_files(source, log.source)} ({label}): {n_users:,} users, "
    text += f"{n_items:,} items, {n:,} interactions"
    if log.has_time:
        text += f"; time from column {time_column!r} ({log.time_unit})"
    else:
        text += "; no time column, the order of the rows is the time order"
    applied = [s.name for s in report.steps if s.name != "min_history"]
    if applied:
        text += f"; filters: {', '.join(applied)}"
    if n_short:
        text += f"; {n_short:,} users too short to evaluate kept for training only"
    return text + "."
