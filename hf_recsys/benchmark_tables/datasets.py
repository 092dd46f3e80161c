"""The tables of the other benchmark datasets (``benchmarks/datasets.md``) and the figures published on them.

Pure Python, like the whole package: no torch, transformers, datasets or numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .format import _commit, _epochs, _header, _line, _mean_spread, _minutes, _model_key, _num

# Published full-ranking figures on the S3-Rec files (leave-one-out, all items ranked, seen items' scores set to 0,
# max length 50), from the S3-Rec paper's table (CIKM 2020), by the preset name of the file.
PUBLISHED_S3REC: dict[str, dict[str, dict[str, float]]] = {
    "amazon-toys": {
        "popularity": {"ndcg@10": 0.0061, "hr@10": 0.0113},
        "SASRec": {"ndcg@10": 0.0374, "hr@10": 0.0675},
        "S3-Rec": {"ndcg@10": 0.0376, "hr@10": 0.0700},
    },
    "lastfm": {
        "popularity": {"ndcg@10": 0.0203, "hr@10": 0.0440},
        "SASRec": {"ndcg@10": 0.0390, "hr@10": 0.0688},
        "S3-Rec": {"ndcg@10": 0.0427, "hr@10": 0.0743},
    },
}


def datasets_table(rows: Iterable[Mapping[str, Any]], datasets: Iterable[str] = tuple(PUBLISHED_S3REC)) -> str:
    """One table of the other benchmark datasets: per dataset and model, the mean ± spread over seeds of test
    NDCG@10 and HR@10 (the latest row of each seed), the seeds, epochs and minutes, then the published figures.

    Rows are those of leave-one-out on each dataset (``hf-recsys bench --dataset NAME``)."""
    names = ["dataset", "model", "test NDCG@10", "test HR@10", "seeds", "epochs", "training", "commit"]
    lines = _header(names, [False, False, True, True, True, True, True, False])
    rows = list(rows)
    for dataset in datasets:
        by_model: dict[str, dict[Any, Mapping[str, Any]]] = {}
        for row in rows:
            if row.get("dataset") == dataset and row.get("protocol") == "leave-one-out":
                by_model.setdefault(str(row["model"]), {})[row.get("seed")] = row
        for model in sorted(by_model, key=_model_key):
            seeds = list(by_model[model].values())
            ndcg = _mean_spread([r["test_ndcg@10"] for r in seeds if r.get("test_ndcg@10") is not None])
            last = seeds[-1]
            lines.append(
                _line(
                    [
                        dataset,
                        model,
                        f"**{ndcg}**" if model == "rec-transformer" and ndcg else ndcg,
                        _mean_spread([r["test_hr@10"] for r in seeds if r.get("test_hr@10") is not None]),
                        str(len(seeds)),
                        _epochs({"epochs": sum(r.get("epochs") or 0 for r in seeds) / len(seeds)}),
                        _minutes({"train_seconds": sum(r.get("train_seconds") or 0 for r in seeds) / len(seeds)}),
                        _commit(last),
                    ]
                )
            )
        for name, values in PUBLISHED_S3REC.get(dataset, {}).items():
            cells = [dataset, f"{name}, published (S3-Rec paper)", _num(values["ndcg@10"]), _num(values["hr@10"])]
            lines.append(_line(cells + [""] * (len(names) - len(cells))))
    return "\n".join(lines)
