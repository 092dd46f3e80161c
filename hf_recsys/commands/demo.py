"""`hf-recsys demo`, the main job (`make demo`): ML-1M -> train -> evaluate against baselines -> recommend, in under 15 minutes.

Prepares ML-1M through the builder (the official archive, or offline the SASRec-format copy with titles from
movies.dat), trains the default recipe for a fixed wall-clock budget with validation NDCG@10 picking the best
epoch, prints test NDCG@10/HR@10 next to the popularity baseline and the published numbers, shows one user's
recent history next to what the model recommends, and leaves a complete run folder (weights, vocabularies,
results.json, training curve, model card) in --output_dir, ready for `hf-recsys push` and `hf-recsys app`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..inference import Recommender
from ..training import DataArguments, ModelArguments, RecTrainingArguments, run_training

PROG = "hf-recsys demo"


@dataclass
class DemoArguments:
    output_dir: str = field(default="runs/demo", metadata={"help": "Run folder (replaced if it exists)."})
    train_minutes: float = field(default=11.0, metadata={"help": "Wall-clock training budget."})
    user_id: int = field(default=1, metadata={"help": "Original MovieLens user id to show recommendations for."})
    seed: int = field(default=42, metadata={"help": "Seed of initialisation and data order."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Local MovieLens folder (default $HF_RECSYS_DATA_DIR)."}
    )


def parser() -> HfArgumentParser:
    """The options of `hf-recsys demo`."""
    return HfArgumentParser(DemoArguments, prog=PROG)


def run_arguments(args: DemoArguments) -> tuple[ModelArguments, DataArguments, RecTrainingArguments]:
    """What the demo trains: the default recipe (`ModelArguments()` = `RecTransformerConfig()`'s defaults) on
    ML-1M, for the demo's wall-clock budget."""
    training_args = RecTrainingArguments(
        output_dir=args.output_dir,
        overwrite_output_dir=True,
        max_train_minutes=args.train_minutes,
        seed=args.seed,
        disable_tqdm=True,  # one line per epoch instead of a progress bar over a step count that a time budget cuts
    )
    return ModelArguments(), DataArguments(dataset="ml-1m", data_dir=args.data_dir), training_args


def main(argv: list[str] | None = None) -> int:
    """Train, compare with the baselines, show one user's recommendations."""
    (args,) = parser().parse_args_into_dataclasses(args=argv)
    start = time.monotonic()
    model_args, data_args, training_args = run_arguments(args)
    print(f"Training the default recipe on ML-1M for up to {args.train_minutes:.0f} minutes ...", flush=True)
    results = run_training(model_args, data_args, training_args)

    test, pop = results["metrics"]["test"], results["baselines"]["popularity"]["test"]
    about = results.get("data", {})
    print(
        f"\n{about.get('title', 'ML-1M')}, {about.get('source_file', 'ml-1m')} ({about.get('num_items', 0):,} "
        f"items, {about.get('num_users', 0):,} users): leave-one-out, full ranking, seen items excluded"
    )
    print(f"{'model':<34}{'NDCG@10':>9}{'HR@10':>9}")
    print(f"{'this run (rec-transformer)':<34}{test['ndcg@10']:>9.4f}{test['hr@10']:>9.4f}")
    print(f"{'popularity baseline':<34}{pop['ndcg@10']:>9.4f}{pop['hr@10']:>9.4f}")
    for name, ref in results["published"].items():
        print(f"{'published ' + name:<34}{ref['ndcg@10']:>9.4f}{ref['hr@10']:>9.4f}")

    recommender = Recommender.from_pretrained(args.output_dir)
    data = data_args.load(training_args.seed)  # the splits training prepared (a cached reload)
    test_rows = data.dataset["test"]
    index = test_rows["user_id"].index(args.user_id) if args.user_id in test_rows["user_id"] else 0
    row = test_rows[index]
    history = data.items.decode_many(row["input_ids"]).tolist()  # Python ints (or str for string ids)
    print(f"\nUser {row['user_id']}: last 10 of {len(history)} movies watched")
    for movie_id in history[-10:]:
        print(f"  {recommender.title(movie_id)}")
    print("Recommended next:")
    for rec in recommender.recommend(user_id=row["user_id"], history=history, k=10):
        print(f"  {rec['rank']:>2}. {rec['title']}  (score {rec['score']:.2f})")
    held_out = data.items.decode(row["target"])
    print(f"(actually watched next: {recommender.title(held_out)})")
    print(
        f"\nRun folder: {args.output_dir} (model, vocabularies, results.json, model card). "
        f"Total {time.monotonic() - start:.0f} s."
    )
    return 0
