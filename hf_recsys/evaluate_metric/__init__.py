"""An `evaluate`-loadable ranking metric for next-item recommendation.

`import evaluate` takes seconds, so this package does not import it: the metric class is loaded on first access.

    import evaluate
    from hf_recsys.evaluate_metric import METRIC_PATH
    metric = evaluate.load(METRIC_PATH)            # or: from hf_recsys.evaluate_metric import NextItemRanking
    metric.compute(predictions=top_k_ids, references=targets, num_items=3416)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRIC_PATH = str(Path(__file__).with_name("next_item_ranking.py"))
"""Path of the metric script, for `evaluate.load(METRIC_PATH)`."""

__all__ = ["METRIC_PATH", "NextItemRanking"]


def __getattr__(name: str) -> Any:
    """Import the metric class (and `evaluate`) lazily, on first access."""
    if name == "NextItemRanking":
        from .next_item_ranking import NextItemRanking

        return NextItemRanking
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
