"""The tables of the other benchmark datasets (``benchmarks/datasets.md``), the figures published on them, and
the every-dataset × seed suite of issue 23 (``hf-recsys bench --suite all-datasets``): :data:`SUITE`,
:func:`suite_table`, :func:`suite_seeds_table`.

Pure Python, like the whole package: no torch, transformers, datasets or numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .format import _commit, _epochs, _header, _line, _mean, _mean_spread, _minutes, _model_key, _num
from .ml1m import PUBLISHED_ML1M
from .rows import DEFAULT_VARIANT, data_variant

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


@dataclass(frozen=True)
class SuiteDataset:
    """One dataset of the every-dataset benchmark (issue 23).

    ``anchors``: reference figures by name, ``{"ndcg@10": x, "hr@10": y}`` (HR where known), published or measured
    elsewhere. ``variant``: the data variant counted rows must have (``None``: any). ``fallback_minutes``: for a seed
    with no rec-transformer row carrying a ``"recipe"``, its latest row trained at least this long stands in
    (``None``: none does).
    """

    dataset: str
    minutes: float  # CPU training budget of each rec-transformer run
    target_ndcg: float  # test NDCG@10 the mean over seeds should reach
    anchors: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    variant: str | None = None
    fallback_minutes: float | None = None


#: The suite's datasets, in table order, by preset name. Every figure is declared once: the published ones come from
#: PUBLISHED_S3REC and PUBLISHED_ML1M.
SUITE: dict[str, SuiteDataset] = {
    entry.dataset: entry
    for entry in (
        SuiteDataset("ml-100k", 5, 0.10, {"RecBole SASRec, 10 min on this CPU": {"ndcg@10": 0.053}}),
        SuiteDataset(
            "lastfm",
            10,
            0.050,
            {f"{name} (S3-Rec paper)": PUBLISHED_S3REC["lastfm"][name] for name in ("SASRec", "S3-Rec")},
        ),
        SuiteDataset("amazon-toys", 20, 0.060, {"SASRec (S3-Rec paper)": PUBLISHED_S3REC["amazon-toys"]["SASRec"]}),
        SuiteDataset(
            "ml-1m",
            30,
            0.200,
            {
                "LRURec (converged, GPU)": {"ndcg@10": 0.193},
                "SASRec (full CE), published": PUBLISHED_ML1M["SASRec (full CE)"],
            },
            variant=DEFAULT_VARIANT,
            fallback_minutes=25,
        ),
    )
}

# Rows recorded before rows carried their seed came from scripts/benchmark.py, whose `--seed` defaulted to 42;
# they count as that seed.
LEGACY_SEED = 42

SUITE_MODEL = "rec-transformer"


def _seed(row: Mapping[str, Any]) -> int:
    seed = row.get("seed")
    return LEGACY_SEED if seed is None else int(seed)


def _latest_per_seed(rows: Iterable[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """{seed: the last row of that seed}, by seed."""
    latest: dict[int, Mapping[str, Any]] = {}
    for row in rows:
        latest[_seed(row)] = row
    return dict(sorted(latest.items()))


def _of(rows: Iterable[Mapping[str, Any]], entry: SuiteDataset, model: str) -> list[Mapping[str, Any]]:
    return [
        row
        for row in rows
        if row.get("model") == model
        and row.get("dataset") == entry.dataset
        and row.get("protocol") == "leave-one-out"
        and (entry.variant is None or data_variant(row) == entry.variant)
    ]


def suite_rows(rows: Iterable[Mapping[str, Any]], dataset: str) -> dict[int, Mapping[str, Any]]:
    """{seed: row} of the rec-transformer rows the suite counts for ``dataset`` (a key of :data:`SUITE`).

    Leave-one-out rows of model ``rec-transformer`` (of the entry's data variant, if it names one) that carry a
    ``"recipe"`` key, i.e. were trained with the data-derived recipe; the latest such row of each seed (last in
    file order). For a seed with no such row, when the entry has ``fallback_minutes`` (ML-1M: 25), the latest row
    of that seed trained at least that long counts instead (``train_seconds``), so the 30-minute runs of the
    default recipe recorded before rows carried a recipe stand in (the rule leaves ML-1M's recipe as it was). A
    row without a seed counts as seed 42.
    """
    entry = SUITE[dataset]
    candidates = _of(rows, entry, SUITE_MODEL)
    chosen = _latest_per_seed(row for row in candidates if "recipe" in row)
    if entry.fallback_minutes is not None:
        trained = (row for row in candidates if (row.get("train_seconds") or 0) >= entry.fallback_minutes * 60)
        chosen = {**_latest_per_seed(trained), **chosen}
    return dict(sorted(chosen.items()))


def _metric(rows: Iterable[Mapping[str, Any]], key: str) -> list[float]:
    return [row[key] for row in rows if row.get(key) is not None]


def _best_anchor(entry: SuiteDataset) -> str:
    if not entry.anchors:
        return ""
    name, values = max(entry.anchors.items(), key=lambda item: item[1]["ndcg@10"])
    return f"{name}: {values['ndcg@10']:g}"


def suite_table(rows: Iterable[Mapping[str, Any]], datasets: Iterable[str] = tuple(SUITE)) -> str:
    """The every-dataset × seed benchmark (issue 23), one line per dataset of :data:`SUITE`.

    Test NDCG@10 and HR@10 of rec-transformer are the mean ± sample standard deviation over seeds of the rows
    :func:`suite_rows` counts (the latest row of each seed trained with the data-derived recipe; on ML-1M a seed
    without one keeps its long run of the default recipe). Then the number of seeds, popularity's test NDCG@10
    (mean over its seeds), the best anchor figure and the target with whether the mean reaches it. A dataset
    without rows keeps its line, with the measured cells blank.
    """
    names = ["dataset", "CPU budget", "test NDCG@10", "test HR@10", "seeds", "popularity NDCG@10"]
    names += ["best published / anchor NDCG@10", "target NDCG@10", "target met"]
    lines = _header(names, [False, True, True, True, True, True, False, True, False])
    rows = list(rows)
    for dataset in datasets:
        entry = SUITE[dataset]
        counted = list(suite_rows(rows, dataset).values())
        ndcg = _metric(counted, "test_ndcg@10")
        mean = _mean(ndcg)
        popularity = _mean(_metric(_latest_per_seed(_of(rows, entry, "popularity")).values(), "test_ndcg@10"))
        spread = _mean_spread(ndcg)
        lines.append(
            _line(
                [
                    dataset,
                    f"{entry.minutes:g} min",
                    f"**{spread}**" if spread else "",
                    _mean_spread(_metric(counted, "test_hr@10")),
                    str(len(counted)),
                    _num(popularity),
                    _best_anchor(entry),
                    _num(entry.target_ndcg, 3),
                    "" if mean is None else ("yes" if mean >= entry.target_ndcg else "no"),
                ]
            )
        )
    return "\n".join(lines)


def _value(value: Any) -> str:
    """A setting as a table cell: a number in its shortest form (``:g``), None blank."""
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _setting(row: Mapping[str, Any], key: str) -> str:
    """``key`` of the row's ``"recipe"``, else of the row itself, else of its model ``"config"``; blank if none."""
    for source in (row.get("recipe"), row, row.get("config")):
        if isinstance(source, Mapping) and source.get(key) is not None:
            return _value(source[key])
    return ""


def _windows(row: Mapping[str, Any]) -> str:
    """Which windows of a history longer than the model's window a row trained: "all" (``--all_windows``, the
    default since it was added) or "most recent". Rows recorded before they carried ``all_windows`` predate the
    option, when the suite's recipe trained the most recent window only."""
    return "all" if row.get("all_windows") else "most recent"


def suite_seeds_table(rows: Iterable[Mapping[str, Any]], datasets: Iterable[str] = tuple(SUITE)) -> str:
    """Every row :func:`suite_table` counts, one line per dataset and seed: the test and validation metrics,
    popularity's test NDCG@10 on the same seed (blank if not run), epochs, minutes, the recipe's batch size,
    dropout, item dropout, learning rate and max length, and which windows of long histories it trained."""
    names = ["dataset", "seed", "test NDCG@10", "test HR@10", "valid NDCG@10", "popularity NDCG@10", "epochs"]
    names += ["training", "batch size", "dropout", "item dropout", "learning rate", "max length", "windows"]
    names += ["commit"]
    lines = _header(names, [False] + [True] * 12 + [False, False])
    rows = list(rows)
    for dataset in datasets:
        popularity = _latest_per_seed(_of(rows, SUITE[dataset], "popularity"))
        for seed, row in suite_rows(rows, dataset).items():
            lines.append(
                _line(
                    [
                        dataset,
                        str(seed),
                        _num(row.get("test_ndcg@10")),
                        _num(row.get("test_hr@10")),
                        _num(row.get("valid_ndcg@10")),
                        _num(popularity[seed].get("test_ndcg@10")) if seed in popularity else "",
                        _epochs(row),
                        _minutes(row),
                        _setting(row, "per_device_train_batch_size"),
                        _setting(row, "hidden_dropout_prob"),
                        _setting(row, "item_dropout_prob"),
                        _setting(row, "learning_rate"),
                        _setting(row, "max_length"),
                        _windows(row),
                        _commit(row),
                    ]
                )
            )
    return "\n".join(lines)


#: The settings columns of `recipe_ablation_table`, in order (the run records' ``"settings"`` keys).
_ABLATION_SETTINGS = (
    "num_hidden_layers",
    "hidden_dropout_prob",
    "item_dropout_prob",
    "learning_rate",
    "per_device_train_batch_size",
    "max_length",
)


def recipe_ablation_table(record: Mapping[str, Any]) -> str:
    """The runs behind the data-derived recipe (``benchmarks/results/recipe_ablation.json``, written by
    ``benchmarks/record_recipe_runs.py``): per experiment, each run's settings, epochs and metrics, then how the
    runs shared the machine (runs of one experiment compare with each other only)."""
    names = ["experiment", "run", "dataset", "blocks", "dropout", "item dropout", "learning rate", "batch"]
    names += ["max length", "budget", "epochs", "s / epoch", "valid NDCG@10", "test NDCG@10", "test HR@10"]
    lines = _header(names, [False, False, False] + [True] * 12)
    notes = []
    for experiment, entry in record.get("experiments", {}).items():
        for run in entry["runs"]:
            settings = run["settings"]
            minutes = f"{run['minutes']:g} min" if run.get("minutes") else ""
            cells = [experiment, run["run"], run["dataset"]]
            cells += [_value(settings.get(name)) for name in _ABLATION_SETTINGS]
            cells += [minutes, f"{run['epochs']:g}", _num(run.get("epoch_seconds"), 1)]
            cells += [_num(run["valid_ndcg@10"]), _num(run["test_ndcg@10"]), _num(run["test_hr@10"])]
            lines.append(_line(cells))
        if entry.get("note"):
            notes.append(f"- `{experiment}`: {entry['note']}")
    return "\n".join(lines + (["", *notes] if notes else []))
