"""The ML-1M tables: the README's results table, the seed-windows protocol, the history of every row, training
speed, the fine-tuning example; and the published ML-1M figures they quote.

Pure Python, like the whole package: no torch, transformers, datasets or numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .format import _commit, _epochs, _header, _line, _minutes, _num
from .rows import DEFAULT_VARIANT, data_variant, latest_rows

# Published ML-1M figures (test split, leave-one-out, full ranking over the whole catalogue, seen items excluded,
# max length 200) on the SASRec-format ML-1M file (6,040 users, 3,416 items). They compare with runs on that file
# only: the official ratings.dat has 3,706 items. Quoted for reference, not re-run here; training's results.json and
# the demo print them from here.
PUBLISHED_ML1M: dict[str, dict[str, float]] = {
    "SASRec (BCE)": {"ndcg@10": 0.134, "hr@10": 0.250},
    "BERT4Rec": {"ndcg@10": 0.154, "hr@10": 0.284},
    "SASRec (full CE)": {"ndcg@10": 0.182, "hr@10": 0.315},
    "gSASRec": {"ndcg@10": 0.173, "hr@10": 0.300},
}

# The original notebook's own report under its own protocol (`seed-windows`).
PUBLISHED_ML1M_SEED_WINDOWS: dict[str, dict[str, float]] = {
    "original notebook (its own report)": {"ndcg@10": 0.093},
}


def results_table(
    rows: Iterable[Mapping[str, Any]],
    dataset: str = "ml-1m",
    protocol: str = "leave-one-out",
    variant: str = DEFAULT_VARIANT,
    published: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """The README's results table: the latest row of each model, then the published figures.

    Published figures (default :data:`PUBLISHED_ML1M`) are listed only for ML-1M leave-one-out on the
    SASRec-format file, the only setting they compare with.
    """
    names = ["model", "test NDCG@10", "test HR@10", "test MRR@10", "valid NDCG@10", "training", "epochs", "commit"]
    lines = _header(names, [False, True, True, True, True, True, True, False])
    for row in latest_rows(rows, dataset, protocol, variant):
        ndcg = _num(row.get("test_ndcg@10"))
        lines.append(
            _line(
                [
                    str(row["model"]),
                    f"**{ndcg}**" if ndcg else "",
                    _num(row.get("test_hr@10")),
                    _num(row.get("test_mrr@10")),
                    _num(row.get("valid_ndcg@10")),
                    _minutes(row),
                    _epochs(row),
                    _commit(row),
                ]
            )
        )
    if published is None:
        applies = dataset == "ml-1m" and protocol == "leave-one-out" and variant == DEFAULT_VARIANT
        published = PUBLISHED_ML1M if applies else {}
    for name, values in published.items():
        cells = [f"{name}, published", _num(values.get("ndcg@10"), 3), _num(values.get("hr@10"), 3)]
        lines.append(_line(cells + [""] * (len(names) - len(cells))))
    return "\n".join(lines)


def seed_windows_table(
    rows: Iterable[Mapping[str, Any]],
    dataset: str = "ml-1m",
    variant: str = DEFAULT_VARIANT,
    published: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """The original notebook's protocol (``seed-windows``): NDCG@3/5/10 and HR@10, then its own report."""
    names = ["model", "test NDCG@3", "test NDCG@5", "test NDCG@10", "test HR@10", "training", "commit"]
    lines = _header(names, [False, True, True, True, True, True, False])
    for row in latest_rows(rows, dataset, "seed-windows", variant):
        lines.append(
            _line(
                [
                    str(row["model"]),
                    _num(row.get("test_ndcg@3")),
                    _num(row.get("test_ndcg@5")),
                    _num(row.get("test_ndcg@10")),
                    _num(row.get("test_hr@10")),
                    _minutes(row),
                    _commit(row),
                ]
            )
        )
    if published is None:
        published = PUBLISHED_ML1M_SEED_WINDOWS if dataset == "ml-1m" and variant == DEFAULT_VARIANT else {}
    for name, values in published.items():
        cells = [name, _num(values.get("ndcg@3"), 3), _num(values.get("ndcg@5"), 3), _num(values.get("ndcg@10"), 3)]
        lines.append(_line(cells + [""] * (len(names) - len(cells))))
    return "\n".join(lines)


def history_table(rows: Iterable[Mapping[str, Any]], dataset: str = "ml-1m") -> str:
    """Every recorded row of a dataset, oldest first: the commit-by-commit record of the benchmark."""
    names = ["date", "commit", "model", "protocol", "data", "test NDCG@10", "test HR@10", "valid NDCG@10"]
    names += ["training", "epochs"]
    lines = _header(names, [False, False, False, False, False, True, True, True, True, True])
    for row in rows:
        if row.get("dataset") != dataset:
            continue
        lines.append(
            _line(
                [
                    str(row.get("date", ""))[:10],
                    _commit(row),
                    str(row["model"]),
                    str(row.get("protocol", "")),
                    data_variant(row),
                    _num(row.get("test_ndcg@10")),
                    _num(row.get("test_hr@10")),
                    _num(row.get("valid_ndcg@10")),
                    _minutes(row),
                    _epochs(row),
                ]
            )
        )
    return "\n".join(lines)


def speed_table(rows: Iterable[Mapping[str, Any]], model: str = "rec-transformer", dataset: str = "ml-1m") -> str:
    """Training and evaluation speed of every recorded leave-one-out row of one model, oldest first."""
    names = ["date", "commit", "blocks", "epoch (s)", "first epoch (s)", "sequences/s", "target positions/s"]
    names += ["test evaluation (s)", "peak RSS (MiB)"]
    lines = _header(names, [False, False] + [True] * 7)
    for row in rows:
        if row.get("model") != model or row.get("dataset") != dataset or row.get("protocol") != "leave-one-out":
            continue
        blocks = (row.get("config") or {}).get("num_hidden_layers")
        lines.append(
            _line(
                [
                    str(row.get("date", ""))[:10],
                    _commit(row),
                    "" if blocks is None else str(blocks),
                    _num(row.get("epoch_seconds"), 1),
                    _num(row.get("first_epoch_seconds"), 1),
                    _num(row.get("sequences_per_second"), 0),
                    _num(row.get("positions_per_second"), 0),
                    _num(row.get("eval_seconds"), 1),
                    _num(row.get("peak_mem_mb"), 0),
                ]
            )
        )
    return "\n".join(lines)


def finetune_table(experiment: Mapping[str, Any]) -> str:
    """The fine-tuning example (``benchmarks/finetune_example.py``): one line per model of its ``results``."""
    new_users = experiment.get("test_rows_users_new_to_A")
    names = [
        "model",
        "NDCG@10",
        "HR@10",
        "NDCG@10, rows of users new to A" + (f" ({new_users:,})" if new_users else ""),
        "ΔNDCG@10 vs A, 95% CI",
        "training time",
    ]
    lines = _header(names, [False, True, True, True, False, True])
    for result in experiment.get("results", []):
        model = str(result["model"])
        seconds = result.get("train_seconds")
        if seconds is None:
            time = ""
        elif model.startswith("A fine-tuned"):
            time = f"+{seconds:.0f} s"  # on top of A's own training
        else:
            time = f"{seconds:.0f} s"
        ci = result.get("delta_vs_A_ci95")
        cells = [
            model,
            _num(result.get("ndcg@10")),
            _num(result.get("hr@10")),
            _num(result.get("ndcg@10_users_new_to_A")),
            f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "",
            time,
        ]
        if result.get("notes") == "headline budget":
            cells = [f"**{c}**" if c and i < 4 else c for i, c in enumerate(cells)]
        lines.append(_line(cells))
    return "\n".join(lines)
