"""The training curve of a run folder (validation NDCG@10 and training loss per epoch), drawn with matplotlib."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .card_text import _finite
from .run_folder import _atomic_write_bytes

logger = logging.get_logger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# training curve
# --------------------------------------------------------------------------------------------------------------------
def plot_training_curve(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    metric: str = "valid_ndcg@10",
) -> Path | None:
    """Plot validation NDCG@10 per epoch (rows of ``results["history"]``) and write it atomically as a PNG.

    Uses matplotlib's Agg canvas directly (no pyplot), so it works headless, changes no global backend and is safe
    from threads. Rows without the metric (loss-only log lines) are skipped; with nothing to plot, nothing is written
    and None is returned so training never fails on a missing curve.
    """
    points = sorted(
        (float(row["epoch"]), value)
        for row in history
        if _finite(row.get("epoch")) is not None and (value := _finite(row.get(metric))) is not None
    )
    if not points:
        logger.warning("no %s in the training history: training curve not written", metric)
        return None
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs, values = zip(*points)
    best = max(range(len(values)), key=values.__getitem__)
    fig = Figure(figsize=(6, 3.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(epochs, values, marker="o", markersize=3, linewidth=1.5, label="validation")
    ax.scatter([epochs[best]], [values[best]], color="tab:red", zorder=3, label=f"best {values[best]:.4f}")
    ax.set_xlabel("epoch")
    label = metric.removeprefix("valid_").upper()
    ax.set_ylabel(label)
    ax.set_title(f"Validation {label} per epoch")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return _atomic_write_bytes(Path(path), buffer.getvalue())
