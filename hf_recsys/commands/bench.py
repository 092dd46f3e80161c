"""`hf-recsys bench`: train and score models under the standard protocol and append one row per model and seed
to benchmarks/results/<dataset>.json.

`--dataset ml-1m` (`make bench`, `make bench-all`): the SASRec-format ML-1M (6,040 users, 3,416 items),
leave-one-out, full ranking over the whole catalogue, items already in the history excluded, max length 200. The
`seed-windows` rows repeat the original notebook's protocol (windows of 4 movies, random 85/15 split) so the old
and new models meet on its ground.

`--dataset PRESET` (`make bench-toys`, `make bench-lastfm`; any preset of `hf_recsys/presets`): the same protocol
on that data: popularity, the default recipe untouched, and, where the data has an item table, the default recipe
reading item ids only (`rec-transformer-ids-only`), so what the item features add is measured.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from transformers import HfArgumentParser

from ..baselines import NOTEBOOK_RECIPE, evaluate_popularity
from ..benchmark_tables import data_variant, datasets_table, results_table
from ..training import (
    DataArguments,
    ModelArguments,
    RecTrainingArguments,
    _git_commit,
    peak_memory_mb,
    run_training,
)

# the notebook's model read movie and user ids only
NOTEBOOK = ModelArguments(**NOTEBOOK_RECIPE, use_item_features=False, use_user_features=False)
SEED_WINDOWS_MODEL = ModelArguments(user_conditioning="add", use_user_features=True)
PROG = "hf-recsys bench"


#: `--suite all-datasets`: each dataset and its CPU budget in minutes, the budgets issue 23's targets are set at.
SUITE_MINUTES = {"ml-100k": 5.0, "lastfm": 10.0, "amazon-toys": 20.0, "ml-1m": 30.0}


@dataclass
class BenchmarkArguments:
    suite: str = field(
        default="default",
        metadata={
            "help": "default | all (ML-1M: adds loss and user ablations) | all-datasets (popularity and the "
            "default recipe on ml-100k, lastfm, amazon-toys and ml-1m, each at its budget: "
            + ", ".join(f"{name} {minutes:g} min" for name, minutes in SUITE_MINUTES.items())
            + "; --datasets picks some)"
        },
    )
    datasets: str = field(
        default=",".join(SUITE_MINUTES), metadata={"help": "With --suite all-datasets: comma-separated datasets."}
    )
    dataset: str = field(
        default="ml-1m", metadata={"help": "ml-1m (the SASRec-format file), or a preset such as amazon-toys, lastfm."}
    )
    minutes: float = field(default=30.0, metadata={"help": "Training budget of the default model."})
    baseline_minutes: float = field(default=4.0, metadata={"help": "Training budget of each other model."})
    output: str | None = field(
        default=None, metadata={"help": "Rows are appended here (default benchmarks/results/<dataset>.json)."}
    )
    runs_dir: str = field(default="runs/bench", metadata={"help": "Run folders of the trained models."})
    data_dir: str | None = field(default=None, metadata={"help": "Local MovieLens folder."})
    seeds: str = field(default="42", metadata={"help": "Comma-separated seeds: every row is run once per seed."})
    only: str | None = field(default=None, metadata={"help": "Comma-separated row names to run (default: all)."})
    protocols: str = field(default="leave-one-out,seed-windows", metadata={"help": "Comma-separated protocols to run."})


def _append(path: Path, row: dict) -> None:
    rows = json.loads(path.read_text()) if path.exists() else []
    rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=2))
    tmp.replace(path)


@functools.cache
def _code_commit() -> str:
    """The commit of the code this process runs: read once, at its first row (a suite runs for hours, and commits
    made meanwhile do not change the code it imported)."""
    return _git_commit()


def _row(dataset: str, name: str, protocol: str, metrics: dict, extra: dict) -> dict:
    row = {"model": name, "dataset": dataset, "protocol": protocol}
    for split, values in metrics.items():
        prefix = "valid" if split == "validation" else split
        row.update({f"{prefix}_{k}": round(v, 5) for k, v in values.items() if "@" in k})
    row.update(extra)
    row.update({"git_commit": _code_commit(), "date": datetime.now(UTC).isoformat(timespec="seconds")})
    return row


def _data_args(bench: BenchmarkArguments, protocol: str, **options) -> DataArguments:
    """The data of a row: the MovieLens builder for ml-1m, else the preset through the generic path."""
    if bench.dataset == "ml-1m":
        return DataArguments(dataset="ml-1m", data_dir=bench.data_dir, protocol=protocol, **options)
    return DataArguments(spec=bench.dataset, data_dir=bench.data_dir, protocol=protocol, **options)


def _train(
    bench: BenchmarkArguments,
    seed: int,
    name: str,
    protocol: str,
    model_args: ModelArguments,
    minutes: float,
    max_length: int | None = None,
    batch_size: int | None = None,
    random_crop: bool = False,
) -> dict:
    data_args = _data_args(bench, protocol, max_length=max_length, random_crop=random_crop)
    training_args = RecTrainingArguments(
        output_dir=f"{bench.runs_dir}/{bench.dataset}/{name}-{protocol}-seed{seed}",
        overwrite_output_dir=True,
        max_train_minutes=minutes,
        seed=seed,
        disable_tqdm=True,
        per_device_train_batch_size=batch_size,
    )
    results = run_training(model_args, data_args, training_args)
    extra = {
        "train_seconds": results["train_seconds"],
        "epochs": results["training"]["epochs_run"],
        "peak_mem_mb": results["peak_mem_mb"],
        "data_variant": results.get("data", {}).get("variant"),
        "seed": seed,
        "feature_fields": results.get("feature_fields", {}),
        "train_samples_per_second": results["train_samples_per_second"],
        **results["speed"],
        # the settings the data decided for this run (hf_recsys/training/recipe.py)
        "recipe": {d["name"]: d["value"] for d in results.get("recipe", {}).get("derived", [])},
        "per_device_train_batch_size": results["training"].get("per_device_train_batch_size"),
        "learning_rate": results["training"].get("learning_rate"),
        "max_length": results["training"].get("max_length"),
        # which windows of a long history were trained: all of them, or the most recent (or a random) one
        "all_windows": results["training"].get("all_windows"),
        # as trained: `exclude_seen_in_loss` resolved from the evaluation's choice, not the unset argument
        "config": {k: results["training"][k] for k in vars(model_args) if k != "model_name_or_path"},
    }
    return _row(bench.dataset, name, protocol, results["metrics"], extra)


def parser() -> HfArgumentParser:
    """The options of `hf-recsys bench`."""
    return HfArgumentParser(BenchmarkArguments, prog=PROG)


def jobs(bench: BenchmarkArguments) -> list[tuple[str, str, tuple | None]]:
    """The rows of a suite: (model name, protocol, None for the popularity baseline or the `_train` arguments
    (model arguments, minutes, max length, batch size, random crop)). The rec-transformer row is the default
    recipe, `ModelArguments()`."""
    default = ModelArguments()
    if bench.suite == "all-datasets":
        return [("popularity", "leave-one-out", None), ("rec-transformer", "leave-one-out", (default, bench.minutes))]
    if bench.dataset != "ml-1m":
        ids_only = replace(default, use_item_features=False)
        return [
            ("popularity", "leave-one-out", None),
            ("rec-transformer", "leave-one-out", (default, bench.minutes, None)),
            ("rec-transformer-ids-only", "leave-one-out", (ids_only, bench.minutes, None)),
        ]
    jobs: list[tuple[str, str, tuple | None]] = [
        ("popularity", "leave-one-out", None),
        ("rec-transformer", "leave-one-out", (default, bench.minutes, None)),
        # the notebook trained on every 4-movie window of each history; reading 3 movies, the most recent window
        # alone would leave each user 3 targets, so it trains on a random window of each history per epoch
        ("notebook-recipe", "leave-one-out", (NOTEBOOK, bench.baseline_minutes, 3, 32, True)),
        ("popularity", "seed-windows", None),
        # windows hold at most 4 movies: 1,024 of them per step carry as many positions as the default batch
        ("notebook-recipe", "seed-windows", (NOTEBOOK, bench.baseline_minutes, 3, 1024)),
        # the notebook's protocol shares each user's windows between train and test: knowing who the user is
        # pays there, so the model reads the user (id + gender/age/occupation), as the notebook's model did
        ("rec-transformer", "seed-windows", (SEED_WINDOWS_MODEL, bench.baseline_minutes, None, 1024)),
    ]
    if bench.suite == "all":
        for loss in ("sampled_softmax", "bce", "gbce"):
            jobs.append(
                (f"rec-transformer-{loss}", "leave-one-out", (replace(default, loss_type=loss), bench.minutes, None))
            )
        for mode in ("add", "prepend", "concat"):
            model_args = replace(default, user_conditioning=mode, user_dropout_prob=0.1)
            jobs.append((f"rec-transformer-user-{mode}", "leave-one-out", (model_args, bench.minutes, None)))
    return jobs


def _popularity(bench: BenchmarkArguments, seed: int, protocol: str) -> dict:
    data = _data_args(bench, protocol).load(seed)
    ks = (1, 3, 5, 10, 20) if protocol == "seed-windows" else (1, 5, 10, 20)
    metrics = {s: evaluate_popularity(data.dataset[s], data.items.num_items, ks=ks) for s in ("validation", "test")}
    extra = {"train_seconds": 0.0, "epochs": 0, "peak_mem_mb": round(peak_memory_mb(), 1), "seed": seed}
    return _row(
        bench.dataset, "popularity", protocol, metrics, {**extra, "data_variant": data.describe().get("variant")}
    )


def main(argv: list[str] | None = None) -> int:
    """Run the suite's rows for every seed, append each to `--output`, print the table of this run. The
    all-datasets suite runs the datasets one after the other, each at its `SUITE_MINUTES` budget."""
    (bench,) = parser().parse_args_into_dataclasses(args=argv)
    _code_commit()  # the commit at start is the one every row records
    if bench.suite != "all-datasets":
        return _run(bench)
    names = [name for name in bench.datasets.split(",") if name]
    unknown = [name for name in names if name not in SUITE_MINUTES]
    if unknown:
        raise SystemExit(f"{PROG}: --datasets {','.join(unknown)} not in the suite ({', '.join(SUITE_MINUTES)})")
    for name in names:
        _run(replace(bench, dataset=name, minutes=SUITE_MINUTES[name], protocols="leave-one-out"))
    return 0


def _run(bench: BenchmarkArguments) -> int:
    """One dataset's rows (see `main`)."""
    output = Path(bench.output or f"benchmarks/results/{bench.dataset}.json")
    wanted = set(bench.only.split(",")) if bench.only else None
    with_items = bench.dataset != "ml-1m" and bool(getattr(_data_args(bench, "leave-one-out"), "item_table", None))
    rows = []
    for seed in (int(s) for s in bench.seeds.split(",")):
        for name, protocol, spec in jobs(bench):
            if (wanted and name not in wanted) or protocol not in bench.protocols.split(","):
                continue
            if name == "rec-transformer-ids-only" and not with_items and not wanted:
                continue  # the data has no item table: the default row already reads ids only
            print(f"== {bench.dataset}: {name} ({protocol}), seed {seed}", flush=True)
            start = time.monotonic()
            row = _popularity(bench, seed, protocol) if spec is None else _train(bench, seed, name, protocol, *spec)
            row["wall_seconds"] = round(time.monotonic() - start, 1)
            _append(output, row)
            rows.append(row)
            print(
                json.dumps({k: v for k, v in row.items() if k.startswith("test_") and ("@10" in k or "@3" in k)}),
                flush=True,
            )
    if bench.dataset == "ml-1m":
        for protocol in dict.fromkeys(row["protocol"] for row in rows):  # this run's rows, one table per protocol
            variant = data_variant(next(row for row in rows if row["protocol"] == protocol))
            print(f"\n{protocol}:\n" + results_table(rows, protocol=protocol, variant=variant))
    else:
        print("\n" + datasets_table(rows, datasets=(bench.dataset,)))
    print(f"Rows appended to {output}; `python benchmarks/render_tables.py` updates the README tables.")
    return 0
