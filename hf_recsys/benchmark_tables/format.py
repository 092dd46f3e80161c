"""Cells and lines of the generated Markdown tables: numbers, minutes, epochs, commits, the model order.

Pure Python, like the whole package: no torch, transformers, datasets or numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Table order: the baselines first, then the default model; any other model (ablations) after them by name.
MODEL_ORDER = ("popularity", "notebook-recipe", "rec-transformer")


def _model_key(name: str) -> tuple[int, str]:
    return (MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER), name)


def _num(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _minutes(row: Mapping[str, Any]) -> str:
    seconds = row.get("train_seconds") or 0.0
    return "—" if seconds == 0 else f"{seconds / 60:.1f} min"


def _epochs(row: Mapping[str, Any]) -> str:
    epochs = row.get("epochs")
    return "" if epochs is None else f"{round(epochs)}"


def _commit(row: Mapping[str, Any]) -> str:
    commit = row.get("git_commit")
    return f"`{commit}`" if commit else ""


def _line(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(names: list[str], numeric: list[bool]) -> list[str]:
    return [_line(names), "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean_spread(values: list[float]) -> str:
    """ "0.0512 ± 0.0011" (mean ± sample standard deviation) over seeds; the value alone for one seed."""
    mean = _mean(values)
    if mean is None:
        return ""
    if len(values) == 1:
        return f"{mean:.4f}"
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.4f} ± {spread:.4f}"
