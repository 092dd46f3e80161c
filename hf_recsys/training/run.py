"""The whole training job and the evaluation of a saved model, through `transformers.Trainer`.

`run_training(model_args, data_args, training_args)` is what `hf-recsys train` runs: load the data through the
builder, build (or load, to fine-tune) the model, train with validation NDCG@10 choosing the best epoch,
evaluate the test split once, score the popularity baseline with the same code, and write a complete run folder
(weights, code, vocabularies, results.json, training curve, model card). With `--push_to_hub` the finished
folder goes to the Hub in one commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets.utils import logging as datasets_logging
from transformers import EarlyStoppingCallback, set_seed
from transformers.trainer_callback import PrinterCallback
from transformers.utils import SAFE_WEIGHTS_NAME, logging

from ..baselines import evaluate_popularity, item_counts
from ..benchmark_tables import PUBLISHED_ML1M
from ..data.feature_fields import save_feature_fields
from ..data.interaction_tables import fields_file
from ..metrics import KS
from ..modeling import RecTransformerForNextItemPrediction
from ..modeling.pipeline_rec_transformer import save_pipeline_files
from ..modeling.vocab import save_vocabs
from ..run_layout import CURVE_FILE, RESULTS_FILE
from .arguments import DataArguments, ModelArguments, RecTrainingArguments, model_option_names
from .callbacks import EpochReportCallback, SpeedCallback
from .recipe import DataStatistics, apply_recipe, recipe_record
from .trainer import (
    all_windows,
    build_model,
    epoch_history,
    evaluate_split,
    make_trainer,
    sorted_for_eval,
    with_lengths,
)

logger = logging.get_logger(__name__)


def _git_commit() -> str:
    """The short commit of the hf-recsys source tree this code runs from, "unknown" for an installed wheel (never
    the commit of whatever repository the user happens to run in)."""
    source_root = Path(__file__).resolve().parents[2]
    if not (source_root / ".git").exists():
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=source_root
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_output_dir(output_dir: str, resume: bool, overwrite: bool) -> None:
    """Refuse to silently overwrite a folder that holds a different, finished run."""
    path = Path(output_dir)
    if resume or overwrite or not path.exists():
        return
    if (path / RESULTS_FILE).exists() or (path / SAFE_WEIGHTS_NAME).exists():
        raise FileExistsError(
            f"{path} already holds a trained run ({RESULTS_FILE} / {SAFE_WEIGHTS_NAME}). Pass --overwrite_output_dir "
            "to replace it, --resume_from_checkpoint to continue it, or choose another --output_dir."
        )


def write_results(output_dir: str | Path, results: dict[str, Any]) -> Path:
    """Atomically write results.json into the run folder."""
    path = Path(output_dir) / RESULTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False))
    os.replace(tmp, path)
    return path


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_training(
    model_args: ModelArguments, data_args: DataArguments, training_args: RecTrainingArguments
) -> dict[str, Any]:
    """Train, select the best epoch on validation NDCG@10, test once, write the run folder; return results.

    With `disable_tqdm`, progress is one line per epoch (loss, validation NDCG@10/HR@10, time) instead of the
    Trainer's raw log dictionaries and progress bars. With `push_to_hub`, the Trainer pushes nothing on its own
    (it would upload checkpoints before the vocabularies and the card exist): the finished run folder goes to
    `hub_model_id` in one commit (`hf_recsys.hub.push_to_hub`), and the repository id and token are checked
    before training starts.
    """
    ks = (1, 3, 5, 10, 20) if data_args.protocol == "seed-windows" else KS  # the notebook reported NDCG@3
    resume = training_args.checkpoint_to_resume()
    check_output_dir(training_args.output_dir, resume is not None, training_args.overwrite_output_dir)
    push_repo = _planned_push(training_args)
    bars = logging.is_progress_bar_enabled(), datasets_logging.is_progress_bar_enabled()
    if training_args.disable_tqdm:  # e.g. the "Writing model shards" bar of every checkpoint, the split builds
        logging.disable_progress_bar()
        datasets_logging.disable_progress_bar()
    try:
        results = _train(model_args, data_args, training_args, ks, resume)
    finally:
        training_args.push_to_hub = push_repo is not None  # as the caller set it (the Trainer's own push was off)
        if bars[0]:
            logging.enable_progress_bar()
        if bars[1]:
            datasets_logging.enable_progress_bar()
    if push_repo is not None and training_args.should_save:
        from ..hub import push_to_hub

        info = push_to_hub(
            training_args.output_dir,
            push_repo,
            private=training_args.hub_private_repo,
            revision=training_args.hub_revision,
            token=training_args.hub_token,
        )
        results["hub_commit_url"] = info.pr_url or info.commit_url
        logger.info("pushed %s to %s", training_args.output_dir, results["hub_commit_url"])
    return results


def _compares_with_published(data_args: DataArguments, about: dict[str, Any]) -> bool:
    """The published ML-1M figures were measured on the SASRec-format file under leave-one-out: only a run on that
    file and protocol may print them beside its own."""
    return (
        data_args.dataset == "ml-1m"
        and data_args.protocol == "leave-one-out"
        and about.get("variant") == "sasrec-benchmark"
    )


def _shape(config: Any) -> str:
    """One line on the model's size, for the log."""
    return (
        f"{config.num_hidden_layers} blocks x {config.hidden_size} wide, {config.num_attention_heads} head(s), "
        f"reads the last {config.max_position_embeddings} items"
    )


def _planned_push(training_args: RecTrainingArguments) -> str | None:
    """With `push_to_hub`: the checked repository id, and the Trainer's own push switched off (see
    `run_training`, which switches it back on afterwards). Fails before any training when the id or the token is
    missing."""
    if not training_args.push_to_hub:
        return None
    from ..hub import _check_repo_id, _resolve_token

    if not training_args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id namespace/name (the repository to push the run to)")
    repo_id = _check_repo_id(training_args.hub_model_id)
    _resolve_token(training_args.hub_token)
    training_args.push_to_hub = False
    return repo_id


FIELDS_FILES = {side: fields_file(side) for side in ("item", "user")}


def _features(data: Any, table: str) -> Any:
    """The data's item or user table as feature fields (`EncodedFeatures`), None without one."""
    return getattr(data, f"{table}_features", None)


def _train(model_args, data_args, training_args, ks, resume) -> dict[str, Any]:
    """The body of `run_training`, once the output folder, the resume point and the push are settled."""
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="data preparation"):  # one prepares, the others reload
        data = data_args.load(training_args.seed)
    data_args.exclude_seen = data_args.resolve_exclude_seen(data)  # recorded as it ran, in results and the config
    splits = data.dataset
    items, users = data.items, data.users
    stats = DataStatistics.from_train_split(splits["train"], items.num_items, users.num_users)
    recipe = apply_recipe(stats, model_args, data_args, training_args, fine_tuning=bool(model_args.model_name_or_path))

    if model_args.model_name_or_path:
        # Fine-tuning: express the data in the pretrained tokens (vocabularies extended for unseen movies and
        # users), grow the model to match, optionally freeze all but the embeddings (hf_recsys/finetuning.py).
        from ..finetuning import (
            align_to_pretrained,
            feature_rows,
            item_token_map,
            load_pretrained_vocabs,
            prepare_model_for_finetuning,
            pretrained_feature_fields,
            user_index_map,
        )

        model = RecTransformerForNextItemPrediction.from_pretrained(model_args.model_name_or_path)
        pretrained_items, pretrained_users = load_pretrained_vocabs(model_args.model_name_or_path, model)
        item_fields, user_fields = pretrained_feature_fields(model_args.model_name_or_path)
        source = data
        data, items, users, alignment = align_to_pretrained(data, pretrained_items, pretrained_users)
        splits = data.dataset
        logger.info("fine-tuning %s:\n%s", model_args.model_name_or_path, alignment.summary())
        # the new data's features, re-encoded with the model's own fields, in the extended vocabularies' rows
        item_values = feature_rows(
            _features(source, "item"), item_fields, item_token_map(source.items, items), len(items)
        )
        user_values = feature_rows(
            _features(source, "user"), user_fields, user_index_map(source.users, users), len(users)
        )
        prepare_model_for_finetuning(
            model, items, users, model_args.freeze_transformer, item_features=item_values, user_features=user_values
        )
        model.config.exclude_seen = data_args.exclude_seen  # the data decides, as for a new model
        fields = {"item": item_fields, "user": user_fields}
    else:
        if model_args.freeze_transformer:
            raise ValueError("--freeze_transformer needs --model_name_or_path (a trained model to fine-tune)")
        model = build_model(
            model_args,
            items.num_items,
            users.num_users,
            data_args.max_length,
            exclude_seen=data_args.exclude_seen,
            item_features=_features(data, "item"),
            user_features=_features(data, "user"),
        )
        fields = {table: _features(data, table) for table in ("item", "user")}
        fields = {table: None if f is None else list(f.fields.values()) for table, f in fields.items()}
    about = data.describe()
    description = str(about.get("description") or about.get("name")).rstrip(".")
    if "users" not in description:  # the MovieLens descriptions name the file, not its size
        description += f" ({users.num_users:,} users, {items.num_items:,} items)"
    logger.info("data: %s; protocol %s", description, data_args.protocol)
    logger.info("model: %s parameters, %s", f"{model.num_parameters():,}", _shape(model.config))
    counts = item_counts(splits["train"], items.num_items + 1, include_targets=True)
    model.set_item_popularity(torch.as_tensor(counts, dtype=torch.float32))

    max_length = model.config.max_position_embeddings
    train_ds = splits["train"]
    if data_args.all_windows:
        train_ds = all_windows(train_ds, max_length)
        if len(train_ds) > len(splits["train"]):
            logger.info(
                "training windows: %s histories -> %s rows, those longer than %d items cut into windows that "
                "train every interaction (--all_windows false: the most recent window only)",
                f"{len(splits['train']):,}",
                f"{len(train_ds):,}",
                max_length + 1,
            )
    train_ds = with_lengths(train_ds, max_length)
    valid_ds = sorted_for_eval(splits["validation"])
    test_ds = sorted_for_eval(splits["test"])
    trainer = make_trainer(
        model, training_args, train_ds, valid_ds, max_length, data_args.random_crop, data_args.exclude_seen, ks=ks
    )

    speed = SpeedCallback()
    trainer.add_callback(speed)
    if training_args.disable_tqdm and trainer.is_world_process_zero():
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(EpochReportCallback(training_args.max_train_minutes))
    start = time.monotonic()
    train_output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.monotonic() - start
    # The final evaluations are not epochs: early stopping would look for eval_ndcg@10 there and warn.
    trainer.remove_callback(EarlyStoppingCallback)
    valid_metrics = evaluate_split(trainer, valid_ds, "valid")
    test_metrics = evaluate_split(trainer, test_ds, "test")
    popularity = {
        split: evaluate_popularity(splits[split], items.num_items, exclude_seen=data_args.exclude_seen, ks=ks)
        for split in ("validation", "test")
    }

    results: dict[str, Any] = {
        "model": "rec-transformer",
        "dataset": data_args.dataset_name,
        "protocol": data_args.protocol,
        "data": about,
        "metrics": {"validation": valid_metrics, "test": test_metrics},
        "baselines": {"popularity": popularity},
        "published": PUBLISHED_ML1M if _compares_with_published(data_args, about) else {},
        "history": epoch_history(trainer),
        # the settings the data decided (hf_recsys/training/recipe.py), with the statistics they came from
        "recipe": recipe_record(stats, recipe),
        # the feature fields the model reads, per table: {name: {"kind", "size", "max_values"}}
        "feature_fields": {
            table: {f.name: {"kind": f.kind, "size": f.size, "max_values": f.max_values} for f in fields[table] or []}
            for table, used in (("item", model.config.item_feature_fields), ("user", model.config.user_feature_fields))
            if used
        },
        "training": {
            **asdict(model_args),
            # as the model was built: the config stores settings that did not apply as off
            **{k: getattr(model.config, k) for k in model_option_names()},
            **{k: v for k, v in asdict(data_args).items() if k not in ("data_dir", "cache_dir")},
            "max_length": model.config.max_position_embeddings,
            "learning_rate": training_args.learning_rate,
            "weight_decay": training_args.weight_decay,
            "per_device_train_batch_size": training_args.per_device_train_batch_size,
            "num_train_epochs": training_args.num_train_epochs,
            "epochs_run": float(trainer.state.epoch or 0),
            "best_epoch_metric": trainer.state.best_metric,
            "seed": training_args.seed,
            "max_train_minutes": training_args.max_train_minutes,
            "weight_average_epochs": training_args.weight_average_epochs,
        },
        "train_seconds": round(train_seconds, 1),
        "speed": speed.summary(len(train_ds), int(sum(n - 1 for n in train_ds["length"]))),
        "train_samples_per_second": train_output.metrics.get("train_samples_per_second"),
        "peak_mem_mb": round(peak_memory_mb(), 1),
        "git_commit": _git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = Path(training_args.output_dir)
    # FSDP / DeepSpeed shard the weights: gathering them is a collective call that every process must make
    sharded = trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled
    state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped) if sharded else None
    if trainer.is_world_process_zero():
        to_save = trainer.accelerator.unwrap_model(trainer.model)
        to_save.save_pretrained(out, state_dict=state_dict)  # safetensors + code; no pickled training_args.bin
        save_vocabs(out, items, users)
        for name, used in (("item", to_save.config.item_feature_fields), ("user", to_save.config.user_feature_fields)):
            if (
                used and fields[name]
            ):  # what encodes new items and users (fine-tuning, serving) with the model's own fields
                save_feature_fields(out / FIELDS_FILES[name], fields[name])
        save_pipeline_files(out, to_save)  # pipeline("next-item-recommendation", model=out) works
        write_results(out, results)
        try:
            from ..hub import plot_training_curve, write_model_card

            plot_training_curve(results["history"], out / CURVE_FILE)
            write_model_card(out)
        except ImportError as exc:  # the Hub module is optional for training
            logger.warning("model card not written: %s", exc)
    return results


def evaluate_pretrained(
    model_name_or_path: str,
    data_args: DataArguments,
    split: str = "test",
    batch_size: int = 256,
    seed: int = 42,
    ks: tuple[int, ...] = KS,
) -> dict[str, float]:
    """Full-ranking metrics of a saved run folder or Hub model on one split of a dataset.

    The dataset is expressed in the model's own tokens (its `item_vocab.json`/`user_vocab.json`): the same
    movie always scores as the same row, whatever tokens the dataset's builder gave it. Data the model never saw
    (another release, a fine-tuned model's extra movies) is aligned honestly: an unknown movie in a history
    enters as the mean item embedding, an unknown movie is never recommended (so a target among them is a miss),
    and an unknown user is served as the unknown user. The returned metrics then also hold
    `unknown_target_share` and `unknown_history_share`: how much of the split the model could not know.
    """
    from ..finetuning import align_to_pretrained, load_pretrained_vocabs, prepare_model_for_finetuning

    model = RecTransformerForNextItemPrediction.from_pretrained(model_name_or_path).eval()
    data = data_args.load(seed)
    if split not in data.dataset:
        raise ValueError(f"unknown split {split!r}; the dataset has {list(data.dataset)}")
    known_items = model.config.num_items
    extra: dict[str, float] = {}
    rankable_items = None
    try:
        pretrained_items, pretrained_users = load_pretrained_vocabs(model_name_or_path, model)
    except FileNotFoundError:
        pretrained_items = None  # a bare model: its tokens are taken to be the dataset's (checked below)
        if data.items.num_items != known_items:
            raise ValueError(
                f"{model_name_or_path} has no item_vocab.json and scores {known_items} movies, but "
                f"{data_args.dataset_name!r} has {data.items.num_items}: cannot tell which row is which movie"
            ) from None
    if pretrained_items is not None and not (
        np.array_equal(pretrained_items.item_ids, data.items.item_ids)
        and np.array_equal(pretrained_users.user_ids, data.users.user_ids)
    ):
        data, items, users, report = align_to_pretrained(data, pretrained_items, pretrained_users)
        logger.warning("evaluating %s on data it was not trained on:\n%s", model_name_or_path, report.summary())
        prepare_model_for_finetuning(model, items, users)  # unknown movies/users get rows, never recommended
        rankable_items = known_items
        histories = data.dataset[split].with_format("numpy", columns=["input_ids"])["input_ids"]
        histories = np.concatenate(list(histories) or [np.zeros(0, np.int64)])
        extra = {
            "unknown_target_share": report.rows_new_target[split] / max(report.rows[split], 1),
            "unknown_history_share": float(np.mean(histories > known_items)) if histories.size else 0.0,
        }
    args = RecTrainingArguments(
        output_dir=str(Path(model_name_or_path) / "eval") if Path(model_name_or_path).is_dir() else "runs/eval",
        per_device_eval_batch_size=batch_size,
        compile_loss=False,
        disable_tqdm=True,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    max_length = model.config.max_position_embeddings
    dataset = sorted_for_eval(data.dataset[split])
    trainer = make_trainer(
        model,
        args,
        dataset,
        None,
        max_length,
        exclude_seen=model.config.exclude_seen if data_args.exclude_seen is None else data_args.exclude_seen,
        ks=ks,
        rankable_items=rankable_items,
    )
    return {**evaluate_split(trainer, dataset, split), **extra}
