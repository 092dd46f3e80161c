"""Record the runs behind the data-derived recipe's rule (benchmarks/recipe.md) in
``benchmarks/results/recipe_ablation.json``, from their run folders' results.json.

Each run is named by an experiment (runs trained side by side, each on one of the two threads, so their budgets
compare with each other and not with a whole-CPU run) and the settings that differ from the config's defaults::

    python benchmarks/record_recipe_runs.py EXPERIMENT RUN_FOLDER[=LABEL] [RUN_FOLDER[=LABEL] ...] --note "..."

A run is named by its LABEL, else by its folder's name.

Rows of an experiment already recorded are replaced; the file is written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "results" / "recipe_ablation.json"
SETTINGS = (
    "hidden_dropout_prob",
    "item_dropout_prob",
    "learning_rate",
    "per_device_train_batch_size",
    "max_length",
    "loss_type",
    "num_hidden_layers",
)


def run_row(folder: Path, label: str | None = None) -> dict:
    """One run's settings, budget, epochs and metrics."""
    results = json.loads((folder / "results.json").read_text())
    training = results["training"]
    return {
        "run": label or folder.name,
        "dataset": results["dataset"],
        "settings": {name: training.get(name) for name in SETTINGS},
        "minutes": training.get("max_train_minutes"),
        "epochs": round(float(training["epochs_run"]), 1),
        "epoch_seconds": results.get("speed", {}).get("epoch_seconds"),
        "valid_ndcg@10": round(results["metrics"]["validation"]["ndcg@10"], 4),
        "test_ndcg@10": round(results["metrics"]["test"]["ndcg@10"], 4),
        "test_hr@10": round(results["metrics"]["test"]["hr@10"], 4),
        "git_commit": results.get("git_commit"),
        "date": results.get("date"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment")
    parser.add_argument("runs", nargs="+", help="run folders, each optionally FOLDER=LABEL")
    parser.add_argument("--note", default="", help="How the runs shared the machine, the command.")
    args = parser.parse_args(argv)
    record = json.loads(OUTPUT.read_text()) if OUTPUT.exists() else {"experiments": {}}
    record["experiments"][args.experiment] = {
        "note": args.note,
        "runs": [run_row(Path(r.split("=")[0]), *r.split("=")[1:2]) for r in args.runs],
    }
    tmp = OUTPUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, OUTPUT)
    print(f"{args.experiment}: {len(args.runs)} runs recorded in {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
