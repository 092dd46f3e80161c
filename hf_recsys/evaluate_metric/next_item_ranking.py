"""`evaluate` metric: full-ranking NDCG@k, HR@k (= Recall@k), MRR@k and catalogue coverage for next-item prediction.

A thin `evaluate.Metric` wrapper around `hf_recsys.metrics.ranking_metrics`, so numbers computed through the Hub's
`evaluate` API are exactly the numbers of the Trainer evaluation. Load it with
`evaluate.load(hf_recsys.evaluate_metric.METRIC_PATH)` or instantiate `NextItemRanking()` directly.

Imports are absolute (`evaluate.load` copies this file into its module cache, where relative imports do not work).
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate
import numpy as np

from hf_recsys.metrics import KS, ranking_metrics

_CITATION = """\
@inproceedings{krichene2020sampled,
  title     = {On Sampled Metrics for Item Recommendation},
  author    = {Krichene, Walid and Rendle, Steffen},
  booktitle = {Proceedings of the 26th ACM SIGKDD International Conference on Knowledge Discovery \\& Data Mining},
  pages     = {1748--1757},
  year      = {2020}
}
@article{jarvelin2002cumulated,
  title   = {Cumulated Gain-Based Evaluation of IR Techniques},
  author  = {J{\\"a}rvelin, Kalervo and Kek{\\"a}l{\\"a}inen, Jaana},
  journal = {ACM Transactions on Information Systems},
  volume  = {20},
  number  = {4},
  pages   = {422--446},
  year    = {2002}
}
"""

_DESCRIPTION = """\
Full-ranking metrics for next-item recommendation with one relevant item per user (the next item of a history).
Each prediction is the user's top-k list of item ids over the whole catalogue (best first, padding token and, as is
standard, already-seen items removed); each reference is the true next item. With the target's 1-based rank r:
NDCG@k = 1/log2(r+1), HR@k (= Recall@k) = 1, MRR@k = 1/r when r <= k, else 0, averaged over users.
coverage@k is the share of the catalogue (items 1..num_items) that appears in at least one top-k list.
Full ranking (not sampled negatives) is used because sampled metrics can be inconsistent (Krichene & Rendle, 2020).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[int]]`): top-k item ids per user, best first, every list of the same length K with
        K >= max(ks) (and >= coverage_k). Negative ids (e.g. -1 = no item left) never count as hits.
    references (`list[int]`): the next item of each user, item tokens >= 1 (0 is the padding token).
    num_items (`int`, optional): catalogue size (item tokens are 1..num_items). Needed for coverage; without it
        coverage is not reported.
    ks (`list[int]`, defaults to `[1, 5, 10, 20]`): cut-offs.
    coverage_k (`int`, defaults to 10): cut-off of the coverage metric; None skips it.
Returns:
    `dict[str, float]` with keys `ndcg@k`, `hr@k`, `mrr@k` for every k in `ks`, and `coverage@{coverage_k}`
    when `num_items` is given.
Examples:
    >>> metric = evaluate.load(hf_recsys.evaluate_metric.METRIC_PATH)
    >>> metric.compute(predictions=[[5, 3, 9], [1, 2, 4]], references=[3, 7], num_items=10, ks=[1, 3], coverage_k=3)
    {'ndcg@1': 0.0, 'hr@1': 0.0, 'mrr@1': 0.0, 'ndcg@3': 0.31546487678572877, 'hr@3': 0.5, 'mrr@3': 0.25, 'coverage@3': 0.6}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NextItemRanking(evaluate.Metric):
    """Full-ranking NDCG@k / HR@k / MRR@k / coverage@k; the computation is `hf_recsys.metrics.ranking_metrics`."""

    def _info(self) -> evaluate.MetricInfo:
        """Describe the metric and its inputs (top-k id lists and one target id per user)."""
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Value("int64"),
                }
            ),
            reference_urls=["https://doi.org/10.1145/3394486.3403226", "https://doi.org/10.1145/582415.582418"],
        )

    def _compute(
        self,
        predictions: Sequence[Sequence[int]],
        references: Sequence[int],
        num_items: int | None = None,
        ks: Sequence[int] = KS,
        coverage_k: int | None = 10,
    ) -> dict[str, float]:
        """Delegate to `ranking_metrics` after turning the stored lists into arrays."""
        lengths = {len(p) for p in predictions}
        if len(lengths) > 1:
            raise ValueError(f"every top-k list must have the same length, got lengths {sorted(lengths)}")
        top = np.asarray(predictions, dtype=np.int64).reshape(len(predictions), -1 if predictions else 0)
        targets = np.asarray(references, dtype=np.int64)
        return ranking_metrics(top, targets, num_items, ks=ks, coverage_k=coverage_k)
