"""Markdown tables generated from the recorded benchmark results (``benchmarks/results/*.json``).

The README's results table and the tables of ``benchmarks/*.md`` are never typed by hand: each sits between two
markers, ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, and ``benchmarks/render_tables.py`` replaces what is
between them with ``TABLES[NAME](results_dir)``. ``tests/test_readme.py`` fails when a table is stale.

Pure Python and ``json``: no torch, transformers or datasets, so rendering is instant and the module can be imported
anywhere (``hf-recsys bench`` prints the same table at the end of a run).

Row format (``hf-recsys bench``, one dict per trained or scored model, appended to ``ml-1m.json``)::

    {"model": "rec-transformer", "dataset": "ml-1m", "protocol": "leave-one-out",
     "valid_ndcg@10": ..., "test_ndcg@10": ..., "test_hr@10": ..., "test_mrr@10": ..., ...,
     "train_seconds": 1813.9, "epochs": 46.0, "git_commit": "99dd1da", "date": "2026-11-29T09:51:06+00:00",
     "data_variant": "sasrec-benchmark"}   # optional, see data_variant

The table of a dataset and protocol shows the latest row of each model (the last one in file order), then the
published reference figures where they apply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_VARIANT",
    "PUBLISHED_ML1M",
    "PUBLISHED_ML1M_SEED_WINDOWS",
    "PUBLISHED_S3REC",
    "TABLES",
    "data_variant",
    "datasets_table",
    "default_results_dir",
    "finetune_table",
    "history_table",
    "latest_rows",
    "load_rows",
    "render_markers",
    "results_table",
    "seed_windows_table",
    "speed_table",
]

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

# The original notebook's own report under its own protocol (`seed-windows`).
PUBLISHED_ML1M_SEED_WINDOWS: dict[str, dict[str, float]] = {
    "original notebook (its own report)": {"ndcg@10": 0.093},
}

# Rows recorded before rows carried their data variant all came from the SASRec-format ML-1M file (the only ML-1M
# copy the benchmark machine had); `data_variant` reads them as such.
DEFAULT_VARIANT = "sasrec-benchmark"

# Table order: the baselines first, then the default model; any other model (ablations) after them by name.
MODEL_ORDER = ("popularity", "notebook-recipe", "rec-transformer")


def default_results_dir() -> Path:
    """``benchmarks/results`` of the source tree this module sits in."""
    return Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def load_rows(results_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every benchmark row of every ``*.json`` in ``results_dir`` that holds a list of rows, in file order.

    Files holding anything else (e.g. ``finetune_example.json``, one experiment's dict) are skipped.
    """
    folder = Path(results_dir) if results_dir is not None else default_results_dir()
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list) and all(isinstance(r, dict) and "model" in r for r in data):
            rows.extend(data)
    return rows


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


def _model_key(name: str) -> tuple[int, str]:
    return (MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER), name)


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


def _mean_spread(values: list[float]) -> str:
    """ "0.0512 ± 0.0011" (mean ± sample standard deviation) over seeds; the value alone for one seed."""
    if not values:
        return ""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f}"
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.4f} ± {spread:.4f}"


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


def _read_json(results_dir: Path, name: str) -> Any:
    return json.loads((results_dir / name).read_text(encoding="utf-8"))


#: Marker name -> renderer of the table it holds, given the results folder.
TABLES: dict[str, Callable[[Path], str]] = {
    "results-table": lambda d: results_table(load_rows(d)),
    "ml-1m-seed-windows": lambda d: seed_windows_table(load_rows(d)),
    "ml-1m-history": lambda d: history_table(load_rows(d)),
    "ml-1m-speed": lambda d: speed_table(load_rows(d)),
    "finetune-example": lambda d: finetune_table(_read_json(d, "finetune_example.json")),
    "datasets-table": lambda d: datasets_table(load_rows(d)),
}

_MARKER = re.compile(r"(<!-- ([a-z0-9-]+):start -->\n)(.*?)(<!-- \2:end -->)", re.DOTALL)


def render_markers(text: str, results_dir: str | Path | None = None) -> str:
    """``text`` with every marked table replaced by its freshly rendered version.

    Raises:
        ValueError: a marker names no known table (see :data:`TABLES`), or a start marker has no end.
    """
    folder = Path(results_dir) if results_dir is not None else default_results_dir()
    cache: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise ValueError(f"unknown table marker {name!r}; known tables: {sorted(TABLES)}")
        if name not in cache:
            cache[name] = TABLES[name](folder)
        return f"{match.group(1)}{cache[name]}\n{match.group(4)}"

    rendered = _MARKER.sub(replace, text)
    starts = re.findall(r"<!-- ([a-z0-9-]+):start -->", text)
    ends = set(re.findall(r"<!-- ([a-z0-9-]+):end -->", text))
    missing = [name for name in starts if name not in ends]
    if missing:
        raise ValueError(f"table marker(s) {missing} have no matching '<!-- NAME:end -->'")
    return rendered
