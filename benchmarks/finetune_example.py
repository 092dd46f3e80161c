"""Train up to a date, fine-tune on the following period, evaluate on the period after (ML-100K, `temporal`).

Usage::

    HF_RECSYS_DATA_DIR=../shared/data .venv/bin/python benchmarks/finetune_example.py [--hidden_size 64]

The `temporal` protocol cuts ML-100K's interactions at two dates (80% / 10% / 10% of the ratings):

* train period (before the validation cut), validation period (between the cuts), test period (after).

Models, all scored on every test-period row (full ranking over the same 1,682-movie catalogue, movies already in
the history excluded), with the same code (`make_trainer` + `hf_recsys.metrics`):

* **popularity**: most-rated movies of the train + validation periods.
* **A, not fine-tuned**: trained from scratch on the train period only (its vocabularies hold only the movies and
  users seen before the validation cut; epochs chosen by early stopping on the validation-period rows it can read),
  then grown to the full catalogue with `prepare_model_for_finetuning` (new movies at the mean embedding) and used
  as it is.
* **A fine-tuned**: A + `align_to_pretrained` + `prepare_model_for_finetuning`, trained for a FIXED number of epochs
  on the validation period (one row per user: the whole history up to the user's last validation-period rating,
  so the pre-cut part is replayed too). The epoch budget cannot be chosen on validation (it is the training data)
  and must not be chosen on test: several budgets are reported, the headline one (`--ft_epochs`) was fixed up
  front. `--freeze` variant: only the embedding tables train.
* **from scratch on train + validation**: a new model on the train + validation periods, trained for A's best epoch
  count (the usual "refit with the selected hyperparameters").

Prints a Markdown table and writes `benchmarks/results/finetune_example.json`. Each row also reports NDCG@10 on two
slices of the test rows: targets that are movies A never saw, and users A never saw; the last column is a paired
bootstrap over test users (95% interval of the NDCG@10 difference to "A, not fine-tuned").
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets
import numpy as np
import torch
from transformers import set_seed

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from hf_recsys.baselines import evaluate_popularity, item_counts  # noqa: E402
from hf_recsys.data import ItemVocab, UserVocab, load_movielens  # noqa: E402
from hf_recsys.finetuning import align_to_pretrained, prepare_model_for_finetuning, remap_dataset  # noqa: E402
from hf_recsys.metrics import per_user_metrics  # noqa: E402
from hf_recsys.training import (  # noqa: E402
    ModelArguments,
    RecTrainingArguments,
    build_model,
    make_trainer,
    sorted_for_eval,
    with_lengths,
)

logger = logging.getLogger("finetune_example")


def subset_vocabs(items: ItemVocab, users: UserVocab, movie_ids: np.ndarray, user_ids: np.ndarray):
    """The vocabularies a model trained on the train period would have: only the movies and users seen in it."""
    meta = items.to_dict()
    pos = items.encode_many(movie_ids) - ItemVocab.NUM_SPECIAL
    sub_items = ItemVocab(
        movie_ids,
        titles=None if meta["titles"] is None else [meta["titles"][i] for i in pos],
        years=None if meta["years"] is None else [meta["years"][i] for i in pos],
        genres=None if meta["genres"] is None else [meta["genres"][i] for i in pos],
        genre_names=meta["genre_names"],
    )
    feats = users.to_dict()["features"]
    upos = users.encode_many(user_ids) - UserVocab.NUM_SPECIAL
    sub_users = UserVocab(user_ids, **{n: [v[i] for i in upos] for n, v in feats.items()})
    return sub_items, sub_users


def partial_item_map(source: ItemVocab, target: ItemVocab) -> np.ndarray:
    """``map[source_token] = target_token``, 0 for movies the target vocabulary does not have."""
    ids = source.item_ids
    known = np.isin(ids, target.item_ids)
    lut = np.zeros(len(source), dtype=np.int32)
    lut[ItemVocab.NUM_SPECIAL :][known] = target.encode_many(ids[known])
    return lut


def readable_rows(dataset: datasets.Dataset) -> datasets.Dataset:
    """Rows whose history and target are all known tokens (no 0 left by a partial map)."""
    return dataset.filter(
        lambda batch: [t != 0 and 0 not in h for h, t in zip(batch["input_ids"], batch["target"])], batched=True
    )


def last_row_per_user(dataset: datasets.Dataset) -> np.ndarray:
    """Index of each user's longest row (its whole history up to its last target in the split)."""
    users = np.asarray(dataset["user_id"])
    lengths = np.fromiter((len(h) for h in dataset["input_ids"]), dtype=np.int64, count=len(dataset))
    order = np.lexsort((lengths, users))
    last = np.r_[users[order][1:] != users[order][:-1], True]
    return np.sort(order[last])


def training_args(
    out: Path,
    seed: int,
    epochs: float,
    lr: float,
    select: bool,
    patience: int,
    minutes: float | None,
    batch_size: int = 32,
) -> RecTrainingArguments:
    """Trainer options; `select` = evaluate each epoch and keep the best (only A has a validation set). The
    wall-clock cap is for A only: TimeBudgetCallback asks for an evaluation, which needs an eval set."""
    return RecTrainingArguments(
        output_dir=str(out),
        num_train_epochs=epochs,
        learning_rate=lr,
        # pinned: the measured table used a constant rate without warmup (package defaults may change)
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta2=0.98,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=512,
        eval_strategy="epoch" if select else "no",
        save_strategy="epoch" if select else "no",
        load_best_model_at_end=select,
        early_stopping_patience=patience if select else 0,
        max_train_minutes=minutes if select else None,
        logging_strategy="no",
        compile_loss=False,  # torch.compile's warm-up (~60 s) is longer than these trainings
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
    )


def evaluate_rows(model, dataset: datasets.Dataset, max_length: int, out: Path, seed: int) -> dict[str, np.ndarray]:
    """Per-row NDCG@10 / HR@10 of `model` on `dataset` (full ranking, seen excluded), in dataset order.

    The evaluation sampler must be sequential here: with train_sampling_strategy="group_by_length" the Trainer
    also groups evaluation batches by length (shuffled), and rows must stay identifiable for the slices.
    """
    ordered = sorted_for_eval(dataset)
    args = training_args(out, seed, 1, 1e-3, select=False, patience=0, minutes=0)
    args.train_sampling_strategy = "sequential"
    trainer = make_trainer(model, args, ordered, None, max_length)
    pred = trainer.predict(ordered, metric_key_prefix="test")
    top = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    targets = np.asarray(pred.label_ids[0] if isinstance(pred.label_ids, tuple) else pred.label_ids)
    if not np.array_equal(targets, np.asarray(ordered["target"])):
        raise RuntimeError("predictions are not in dataset order")
    rows = per_user_metrics(top, targets, ks=(10,))
    assert abs(rows["ndcg@10"].mean() - pred.metrics["test_ndcg@10"]) < 1e-6  # same numbers as trainer.evaluate
    # back to the dataset's row order (sorted_for_eval selected by length)
    lengths = np.fromiter((min(len(h), max_length) for h in dataset["input_ids"]), np.int64, count=len(dataset))
    back = np.empty(len(dataset), dtype=np.int64)
    back[np.argsort(lengths, kind="stable")] = np.arange(len(dataset))
    return {k: v[back] for k, v in rows.items()}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, users: np.ndarray, seed: int, n: int = 2000) -> tuple[float, float]:
    """95% interval of mean(a) - mean(b) when resampling test USERS (rows of a user move together)."""
    uniq, inv = np.unique(users, return_inverse=True)
    diff_sum = np.bincount(inv, weights=a - b, minlength=uniq.size)
    count = np.bincount(inv, minlength=uniq.size).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, uniq.size, size=(n, uniq.size))
    stats = diff_sum[draws].sum(1) / count[draws].sum(1)
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data_dir", default=os.environ.get("HF_RECSYS_DATA_DIR"))
    parser.add_argument("--hidden_size", type=int, default=32)
    parser.add_argument("--num_hidden_layers", type=int, default=2)
    parser.add_argument("--max_length", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=30, help="Most epochs for A (early stopping picks fewer).")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--valid_rows", type=int, default=2000, help="Validation rows A is selected on (sample).")
    parser.add_argument("--ft_lr", type=float, default=1e-3)
    parser.add_argument("--ft_epochs", type=int, default=5, help="Headline fine-tuning budget (fixed up front).")
    parser.add_argument("--ft_sweep", default="1,5,20", help="Fine-tuning budgets reported (epochs).")
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="Optional wall-clock cap of A's training (off by default: a cap makes results depend on machine load).",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" / "finetune_example.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    datasets.disable_progress_bars()
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="finetune_example_"))

    data = load_movielens(args.dataset, data_dir=args.data_dir, protocol="temporal", seed=args.seed)
    train, valid = data.dataset["train"], data.dataset["validation"]

    # -- model A: what a model trained at the validation cut knows --------------------------------------------
    train_tokens = np.unique(np.concatenate([np.concatenate(train["input_ids"]), np.asarray(train["target"])]))
    items_a, users_a = subset_vocabs(
        data.items, data.users, data.items.decode_many(train_tokens), np.unique(np.asarray(train["user_id"]))
    )
    item_map_a = partial_item_map(data.items, items_a)
    user_map_a = np.zeros(len(data.users), dtype=np.int32)
    user_map_a[1:] = users_a.encode_many(data.users.user_ids)
    train_a = remap_dataset(train, item_map_a, user_map_a)
    valid_a = readable_rows(remap_dataset(valid, item_map_a, user_map_a))
    if 0 < args.valid_rows < len(valid_a):  # evaluating ~10k rows every epoch would cost more than training
        pick = np.sort(np.random.default_rng(args.seed).choice(len(valid_a), args.valid_rows, replace=False))
        valid_a = valid_a.select(pick)
    logger.info(
        "A knows %d/%d movies, %d/%d users; validates on %d/%d validation rows",
        items_a.num_items, data.items.num_items, users_a.num_users, data.users.num_users, len(valid_a), len(valid),
    )  # fmt: skip

    model_args = ModelArguments(
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        intermediate_size=4 * args.hidden_size,
    )
    max_length = args.max_length
    set_seed(args.seed)
    model_a = build_model(model_args, items_a.num_items, users_a.num_users, max_length)
    model_a.set_item_popularity(torch.as_tensor(item_counts(train_a, len(items_a), include_targets=True)).float())
    t0 = time.monotonic()
    trainer = make_trainer(
        model_a,
        training_args(work / "A", args.seed, args.epochs, args.lr, True, args.patience, args.minutes, args.batch_size),
        with_lengths(train_a, max_length),
        sorted_for_eval(valid_a),
        max_length,
    )
    trainer.train()
    a_seconds = time.monotonic() - t0
    best_step = trainer.state.best_global_step or trainer.state.global_step
    steps_per_epoch = max(1, trainer.state.global_step / max(trainer.state.epoch or 1, 1e-9))
    a_best_epochs = max(1, round(best_step / steps_per_epoch))
    logger.info("A: best epoch %d (valid ndcg@10 %.4f), %.0f s", a_best_epochs, trainer.state.best_metric, a_seconds)

    # -- everything in the extended token space ---------------------------------------------------------------
    aligned, items, users, report = align_to_pretrained(data, items_a, users_a)
    logger.info("alignment:\n%s", report.summary())
    test = aligned.dataset["test"]
    valid_x = aligned.dataset["validation"]
    ft_rows = valid_x.select(last_row_per_user(valid_x))
    valid_users = set(np.asarray(ft_rows["user_id"]).tolist())
    train_x = aligned.dataset["train"]
    keep_train = [i for i, u in enumerate(train_x["user_id"]) if u not in valid_users]
    trainval = datasets.concatenate_datasets([train_x.select(keep_train), ft_rows])
    logger.info("fine-tuning rows: %d users; train+validation rows: %d users", len(ft_rows), len(trainval))

    test_targets = np.asarray(test["target"])
    test_users = np.asarray(test["user_id"])
    new_target = test_targets > items_a.num_items
    new_user = np.asarray(test["user_index"]) > users_a.num_users

    results: list[dict] = []
    per_row: dict[str, np.ndarray] = {}

    def record(name: str, model, seconds: float, epochs: float | None, notes: str = "") -> None:
        rows = evaluate_rows(model.eval(), test, max_length, work / "eval", args.seed)
        per_row[name] = rows["ndcg@10"]
        results.append(
            {
                "model": name,
                "ndcg@10": float(rows["ndcg@10"].mean()),
                "hr@10": float(rows["hr@10"].mean()),
                "ndcg@10_new_movie_targets": float(rows["ndcg@10"][new_target].mean()) if new_target.any() else None,
                "ndcg@10_users_new_to_A": float(rows["ndcg@10"][new_user].mean()) if new_user.any() else None,
                "train_seconds": round(seconds, 1),
                "epochs": epochs,
                "notes": notes,
            }
        )
        logger.info("%s: ndcg@10 %.4f hr@10 %.4f", name, results[-1]["ndcg@10"], results[-1]["hr@10"])

    counts = item_counts(trainval, len(items), include_targets=True)
    pop = evaluate_popularity(test, items.num_items, counts=counts, ks=(10,))
    results.append({"model": "popularity (train+validation counts)", "ndcg@10": pop["ndcg@10"], "hr@10": pop["hr@10"]})

    grown = prepare_model_for_finetuning(copy.deepcopy(model_a), items, users, freeze_transformer=False)
    record("A (train period), not fine-tuned", grown, a_seconds, a_best_epochs, "grown: new movies at the mean")

    sweep = sorted({int(e) for e in args.ft_sweep.split(",")} | {args.ft_epochs})
    variants = [(e, False) for e in sweep] + [(args.ft_epochs, True)]
    for epochs, freeze in variants:
        model = prepare_model_for_finetuning(copy.deepcopy(model_a), items, users, freeze_transformer=freeze)
        model.set_item_popularity(torch.as_tensor(counts).float())
        set_seed(args.seed)
        t0 = time.monotonic()
        name = f"A fine-tuned on validation period, {epochs} ep" + (", embeddings only" if freeze else "")
        trainer = make_trainer(
            model,
            training_args(
                work / name.replace(" ", "_"), args.seed, epochs, args.ft_lr, False, 0, None, args.batch_size
            ),
            with_lengths(ft_rows, max_length),
            None,
            max_length,
        )
        trainer.train()
        headline = " (headline budget)" if epochs == args.ft_epochs and not freeze else ""
        record(name, model, time.monotonic() - t0, epochs, headline.strip(" ()"))

    set_seed(args.seed)
    scratch = build_model(model_args, items.num_items, users.num_users, max_length)
    scratch.set_item_popularity(torch.as_tensor(counts).float())
    t0 = time.monotonic()
    trainer = make_trainer(
        scratch,
        training_args(work / "scratch", args.seed, a_best_epochs, args.lr, False, 0, None, args.batch_size),
        with_lengths(trainval, max_length),
        None,
        max_length,
    )
    trainer.train()
    record("from scratch on train + validation", scratch, time.monotonic() - t0, a_best_epochs, "A's best epochs")

    base = per_row["A (train period), not fine-tuned"]
    for row in results:
        if row["model"] in per_row and row["model"] != "A (train period), not fine-tuned":
            lo, hi = paired_bootstrap(per_row[row["model"]], base, test_users, args.seed)
            row["delta_vs_A_ci95"] = [round(lo, 4), round(hi, 4)]

    summary = {
        "command": "python benchmarks/finetune_example.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{os.cpu_count()}-core {platform.processor() or platform.machine()} CPU, shared",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": args.dataset,
        "protocol": "temporal",
        "cuts": {k: data.info.get(k) for k in ("validation_cut", "test_cut")},
        "model": {
            "hidden_size": args.hidden_size,
            "num_hidden_layers": args.num_hidden_layers,
            "max_length": max_length,
        },
        "training": {
            k: getattr(args, k) for k in ("lr", "ft_lr", "batch_size", "epochs", "patience", "valid_rows", "seed")
        },
        "a_best_epochs": a_best_epochs,
        "alignment": {k: v for k, v in report.to_dict().items() if k not in ("new_item_ids", "new_user_ids")},
        "test_rows": len(test),
        "test_users": int(np.unique(test_users).size),
        "test_rows_new_movie_target": int(new_target.sum()),
        "test_rows_users_new_to_A": int(new_user.sum()),
        "finetune_rows": len(ft_rows),
        "results": results,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(summary, indent=2))

    def fmt(x) -> str:
        return "" if x is None else f"{x:.4f}"

    print(f"\n{args.dataset}, temporal protocol: {len(test)} test rows from {summary['test_users']} users")
    print("| model | NDCG@10 | HR@10 | NDCG@10, new-movie targets | NDCG@10, users new to A | ΔNDCG@10 vs A, 95% CI |"
          " train s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ci = r.get("delta_vs_A_ci95")
        print(
            f"| {r['model']} | {fmt(r['ndcg@10'])} | {fmt(r['hr@10'])} | {fmt(r.get('ndcg@10_new_movie_targets'))} "
            f"| {fmt(r.get('ndcg@10_users_new_to_A'))} | {'' if ci is None else f'[{ci[0]:+.4f}, {ci[1]:+.4f}]'} "
            f"| {r.get('train_seconds', '')} |"
        )
    print(f"\ntotal {summary['total_seconds']} s; results in {args.output}")
    return summary


if __name__ == "__main__":
    main()
