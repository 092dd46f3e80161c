"""Data-parallel training and evaluation: `accelerate launch --multi_gpu --num_processes 2` on CPU (gloo)
through the package's Trainer wiring, checked against a single-process evaluation of the same saved model.

What can go wrong under data parallelism, and what each assertion catches:

- the evaluation sampler pads the last, uneven batch with repeated rows so that every process gets a batch; if
  those repeats reach `compute_metrics` some users count twice (the row count and the row multiset catch it);
- each process evaluates a different shard; metrics computed per shard instead of on the gathered rows differ
  from a single-process evaluation (the metric comparison catches it);
- every process writing `results.json`, the vocabularies or the weights (the write log catches it: one writer,
  rank 0, once per file);
- a launch that silently starts one process (`accelerate launch --cpu --num_processes 2` does: accelerate runs
  several CPU processes only through mpirun) would test nothing (the world-size check catches it).

The data is a synthetic `ratings.csv` in the official ML-20M format with an odd number of users (101), so
the validation/test splits (one row per user) end on an uneven batch: with 2 processes and 8 rows per device
batch, 101 = 6 x 16 + 5, so the second process gets a batch made only of repeated rows.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_USERS = 101  # odd, and not a multiple of processes x eval batch: the last batch is uneven
NUM_ITEMS = 150
EVAL_BATCH = 8
MAX_LENGTH = 50

# The driver runs in every launched process. It trains through `hf_recsys.training.run_training` (the code behind
# `hf-recsys train`) unchanged, and only wraps a few functions to log what happens on which rank:
#   - the rows each `compute_metrics` call receives after the Trainer's gather (target + history per row),
#   - every write of results.json, of the vocabularies and of model weights (`save_pretrained`).
DRIVER = textwrap.dedent(
    '''
    """Run `run_training` from command-line arguments, logging gathered evaluation rows and file writes per rank."""
    import json
    import os
    import sys
    from pathlib import Path

    import numpy as np
    from transformers import HfArgumentParser, PreTrainedModel

    import hf_recsys.training as training
    import hf_recsys.training.run as training_run
    import hf_recsys.training.trainer as training_trainer

    LOG = Path(os.environ["HF_RECSYS_DIST_LOG"])
    RANK = int(os.environ.get("RANK", "0"))
    WORLD = int(os.environ.get("WORLD_SIZE", "1"))


    def log_event(kind, **fields):
        with open(LOG / f"events-rank{RANK}.jsonl", "a") as f:
            f.write(json.dumps({"rank": RANK, "world": WORLD, "kind": kind, **fields}) + "\\n")


    make_compute_metrics = training_trainer.make_compute_metrics


    def logged_make_compute_metrics(*args, **kwargs):
        inner = make_compute_metrics(*args, **kwargs)
        state = {"evaluations": 0, "rows": [], "gathered": 0}

        def compute_metrics(eval_pred, compute_result=None):
            # all batches at once (default), or batch by batch with --batch_eval_metrics (CPU tensors then)
            targets = np.asarray(eval_pred.label_ids[0])
            histories = np.asarray(eval_pred.label_ids[1])
            keep = targets != -100
            state["rows"] += [[int(t), *(int(x) for x in h if x > 0)] for t, h in zip(targets[keep], histories[keep])]
            state["gathered"] += int(len(targets))
            metrics = inner(eval_pred) if compute_result is None else inner(eval_pred, compute_result)
            if compute_result is None or compute_result:  # the end of one evaluation
                state["evaluations"] += 1
                n = state["evaluations"]
                (LOG / f"eval-rank{RANK}-{n}.json").write_text(json.dumps(state["rows"]))
                log_event("evaluation", evaluation=n, rows=len(state["rows"]), gathered=state["gathered"],
                          batch_mode=compute_result is not None, metrics=metrics)
                state["rows"], state["gathered"] = [], 0
            return metrics

        return compute_metrics


    training_trainer.make_compute_metrics = logged_make_compute_metrics

    write_results = training_run.write_results


    def logged_write_results(output_dir, results):
        log_event("write_results", path=str(output_dir))
        return write_results(output_dir, results)


    training_run.write_results = logged_write_results

    save_vocabs = training_run.save_vocabs


    def logged_save_vocabs(folder, *args, **kwargs):
        log_event("save_vocabs", path=str(folder))
        return save_vocabs(folder, *args, **kwargs)


    training_run.save_vocabs = logged_save_vocabs

    save_pretrained = PreTrainedModel.save_pretrained


    def logged_save_pretrained(self, save_directory, *args, **kwargs):
        log_event("save_pretrained", path=str(save_directory))
        return save_pretrained(self, save_directory, *args, **kwargs)


    PreTrainedModel.save_pretrained = logged_save_pretrained

    parser = HfArgumentParser((training.ModelArguments, training.DataArguments, training.RecTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=sys.argv[1:])
    results = training.run_training(model_args, data_args, training_args)
    log_event("done", world_size=training_args.world_size, test=results["metrics"]["test"])
    '''
)


def write_ratings(folder: Path, seed: int = 0) -> Path:
    """A small `ratings.csv` in the official ML-20M format (header, userId,movieId,rating,timestamp).

    Users rate 10-40 distinct movies drawn with a power-law popularity, so the model has something to learn and
    histories have different lengths (uneven evaluation batches after sorting by length).
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, NUM_ITEMS + 1) ** 0.8
    popularity /= popularity.sum()
    lines = ["userId,movieId,rating,timestamp"]
    for user in range(1, NUM_USERS + 1):
        n = int(rng.integers(10, 41))
        movies = rng.choice(np.arange(1, NUM_ITEMS + 1), size=n, replace=False, p=popularity)
        stamps = 1_000_000_000 + np.sort(rng.choice(10**6, size=n, replace=False))
        ratings = rng.integers(1, 11, size=n) / 2
        lines += [f"{user},{m},{r:.1f},{t}" for m, r, t in zip(movies, ratings, stamps)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    return folder


def _events(log_dir: Path) -> list[dict]:
    out = []
    for path in sorted(log_dir.glob("events-rank*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line]
    return out


def _row_key(row: list[int]) -> tuple[int, ...]:
    """(target, history...) with the history cut to what the model reads."""
    return (row[0], *row[1:][-MAX_LENGTH:])


@pytest.mark.slow
@pytest.mark.parametrize("batch_eval_metrics", [False, True], ids=["gathered-at-end", "batch-eval-metrics"])
def test_two_process_training_evaluates_each_user_once_and_matches_single_process(
    tmp_path: Path, batch_eval_metrics: bool
) -> None:
    """Train 1 epoch in 2 processes; every evaluation sees each user once; metrics equal a 1-process evaluation.

    Both evaluation modes of the Trainer are covered: predictions gathered batch by batch and scored once at the
    end (default), and `--batch_eval_metrics` (scored batch by batch, no accumulation: the mode for big data,
    run with `--ddp_find_unused_parameters False` as docs/scaling.md recommends).
    """
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if accelerate is None:
        pytest.skip("the `accelerate` command is not installed")
    data_root = tmp_path / "data"
    write_ratings(data_root / "ml-20m")
    cache_dir = tmp_path / "cache"
    out_dir = tmp_path / "run"
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)

    env = {
        **os.environ,
        "HF_RECSYS_DIST_LOG": str(log_dir),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),
        "OMP_NUM_THREADS": "1",  # two processes on a small machine: no thread oversubscription
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_DISABLED": "true",
    }
    env.pop("HF_RECSYS_DATA_DIR", None)  # only the synthetic folder below may be used
    args = [
        "--dataset", "ml-20m", "--data_dir", str(data_root), "--cache_dir", str(cache_dir),
        "--output_dir", str(out_dir), "--max_length", str(MAX_LENGTH),
        "--hidden_size", "16", "--num_hidden_layers", "1", "--intermediate_size", "32",
        "--num_train_epochs", "1", "--per_device_train_batch_size", "16",
        "--per_device_eval_batch_size", str(EVAL_BATCH), "--compile_loss", "False",
        "--use_cpu", "True", "--report_to", "none", "--disable_tqdm", "True", "--seed", "7",
        "--dataloader_num_workers", "0", "--batch_eval_metrics", str(batch_eval_metrics),
        # the histories travel with the targets so that the log tells which rows each evaluation saw
        "--label_names", "labels", "input_ids",
        # the big-data variant also runs DDP without the unused-parameter search (docs/scaling.md)
        "--ddp_find_unused_parameters", str(not batch_eval_metrics),
    ]  # fmt: skip
    launch = [
        # `--multi_gpu` selects accelerate's torch.distributed launcher; without GPUs (and with the Trainer's
        # --use_cpu) the processes join a gloo group. `--cpu --num_processes 2` would start ONE process
        # (accelerate 1.x runs several CPU processes only through mpirun with --mpirun_hostfile).
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(driver), *args,
    ]  # fmt: skip
    proc = subprocess.run(launch, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"accelerate launch failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"

    events = _events(log_dir)
    done = [e for e in events if e["kind"] == "done"]
    assert sorted(e["rank"] for e in done) == [0, 1], "both processes must finish"
    assert all(e["world_size"] == 2 for e in done), "the Trainer did not see 2 processes"

    # (a) every evaluation saw each user exactly once, after the gather, on every rank
    from hf_recsys.data import load_movielens

    data = load_movielens("ml-20m", data_dir=data_root, cache_dir=cache_dir, seed=7)
    assert data.users.num_users == NUM_USERS
    expected = {
        split: collections.Counter(
            _row_key([row["target"], *row["input_ids"]])
            for row in data.dataset[split].select_columns(["target", "input_ids"])
        )
        for split in ("validation", "test")
    }
    assert all(sum(c.values()) == NUM_USERS for c in expected.values())
    evaluations = [e for e in events if e["kind"] == "evaluation"]
    # per rank: one validation per epoch (1 epoch), then run_training's final validation and test evaluations
    assert collections.Counter(e["rank"] for e in evaluations) == {0: 3, 1: 3}
    for event in evaluations:
        where = f"rank {event['rank']}, evaluation {event['evaluation']}"
        assert event["batch_mode"] == batch_eval_metrics
        assert event["rows"] == NUM_USERS, f"{where}: {event['rows']} rows evaluated for {NUM_USERS} users"
        assert event["gathered"] == NUM_USERS, f"{where}: padding rows reached compute_metrics"
        rows = json.loads((log_dir / f"eval-rank{event['rank']}-{event['evaluation']}.json").read_text())
        split = "test" if event["evaluation"] == 3 else "validation"
        got = collections.Counter(_row_key(r) for r in rows)
        assert got == expected[split], f"{where}: the gathered rows are not the {split} split's rows"
    # every process computed the same numbers from the same gathered rows
    by_rank = {r: [e["metrics"] for e in evaluations if e["rank"] == r] for r in (0, 1)}
    assert by_rank[0] == by_rank[1]

    # (b) results, vocabularies and the final model are written once, by the main process
    writes = [e for e in events if e["kind"] in ("write_results", "save_vocabs", "save_pretrained")]
    assert writes, "no write was logged"
    assert {e["rank"] for e in writes} == {0}, f"non-main processes wrote files: {writes}"
    final = [(e["kind"], e["path"]) for e in writes if Path(e["path"]) == out_dir]
    assert collections.Counter(final) == {
        ("write_results", str(out_dir)): 1,
        ("save_vocabs", str(out_dir)): 1,
        ("save_pretrained", str(out_dir)): 1,
    }
    assert (out_dir / "results.json").is_file() and (out_dir / "model.safetensors").is_file()
    results = json.loads((out_dir / "results.json").read_text())

    # the 2-process metrics equal a single-process evaluation of the same saved model
    for split in ("validation", "test"):
        single = single_process_metrics(out_dir, data.dataset[split], batch_size=EVAL_BATCH)
        distributed = results["metrics"][split]
        for name in ("ndcg@10", "hr@10", "mrr@10", "ndcg@20", "hr@1", "coverage@10"):
            assert distributed[name] == pytest.approx(single[name], abs=1e-6), (split, name, distributed, single)
    assert 0 < results["metrics"]["test"]["hr@20"] <= 1


def single_process_metrics(run_dir: Path, dataset, batch_size: int) -> dict[str, float]:
    """Metrics of the saved model on one split, in this (single) process, through the same `make_trainer` wiring
    as training (what `evaluate_pretrained` does, on the split already loaded here)."""
    from hf_recsys.modeling import RecTransformerForNextItemPrediction
    from hf_recsys.training import RecTrainingArguments, evaluate_split, make_trainer, sorted_for_eval

    model = RecTransformerForNextItemPrediction.from_pretrained(run_dir).eval()
    args = RecTrainingArguments(
        output_dir=str(run_dir / "single-eval"),
        per_device_eval_batch_size=batch_size,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        compile_loss=False,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    ordered = sorted_for_eval(dataset)
    trainer = make_trainer(model, args, ordered, None, model.config.max_position_embeddings)
    assert trainer.args.world_size == 1
    return evaluate_split(trainer, ordered, "single")


def _free_port() -> int:
    """A TCP port nobody listens on now (accelerate's default 29500 may be taken by another run)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
