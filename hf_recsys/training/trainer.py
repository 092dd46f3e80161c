"""The Trainer of next-item prediction: building a new model from the recipe, the collators, the evaluation that
never ranks what the user has already seen, and the helpers that shape the splits for it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..data.collator import NextItemCollator
from ..data.features import EncodedFeatures
from ..metrics import KS, exclude_items, make_compute_metrics, make_preprocess_logits_for_metrics
from ..modeling import RecTransformerConfig, RecTransformerForNextItemPrediction
from ..modeling.losses import compile_cross_entropy
from .arguments import ModelArguments, RecTrainingArguments
from .callbacks import TimeBudgetCallback, WeightAverageCallback
from .recipe import DataStatistics, derive_batch_size, derive_learning_rate


def all_windows(dataset: Dataset, max_length: int) -> Dataset:
    """Training rows that train on every interaction: a history longer than the window (`max_length + 1` items
    with its target) becomes consecutive windows cut from its end, each predicting its own items.

    The most recent window is the row as the collator would cut it; the one before it ends where that window's
    targets begin, and so on back to the first item (the oldest window may be short). No target is trained twice
    and none is left out. Each window keeps its row's other columns (the user; the target's timestamp, which
    training does not read). Rows that fit are unchanged.
    """

    def cut(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {column: [] for column in batch}
        for i, history in enumerate(batch["input_ids"]):
            sequence = [*history, batch["target"][i]]
            for end in range(len(sequence), 1, -max_length):
                window = sequence[max(0, end - max_length - 1) : end]
                for column, values in batch.items():
                    out[column].append(values[i])
                out["input_ids"][-1], out["target"][-1] = window[:-1], window[-1]
        return out

    return dataset.map(cut, batched=True, desc="training windows")


def with_lengths(dataset: Dataset, max_length: int) -> Dataset:
    """Add the `length` column the length-grouped sampler reads (training positions per row)."""
    return dataset.map(
        lambda batch: {"length": [min(len(h) + 1, max_length + 1) for h in batch["input_ids"]]},
        batched=True,
        desc="lengths",
    )


def sorted_for_eval(dataset: Dataset) -> Dataset:
    """Evaluation rows sorted by history length: batches need almost no padding, neither in what the model reads
    (the last `max_length` items) nor in the whole histories whose items are excluded; metrics are per-row means."""
    lengths = np.fromiter((len(h) for h in dataset["input_ids"]), dtype=np.int64, count=len(dataset))
    return dataset.select(np.argsort(lengths, kind="stable"))


def _fields(features: EncodedFeatures) -> list[dict[str, Any]]:
    """The config's form of a table's feature fields."""
    return [{"name": n, "size": f.size, "max_values": f.max_values} for n, f in features.fields.items()]


def _use(wanted: bool | None, features: EncodedFeatures | None, option: str, what: str) -> bool:
    """Whether to feed a table's features: `wanted` (None: whenever the data has them)."""
    available = features is not None and bool(features.fields)
    if wanted and not available:
        raise ValueError(f"--{option}: this dataset has no {what} table with feature columns (pass --{what}_table)")
    return available if wanted is None else wanted


def build_model(
    model_args: ModelArguments,
    num_items: int,
    num_users: int,
    max_length: int | None = None,
    exclude_seen: bool = True,
    item_features: EncodedFeatures | None = None,
    user_features: EncodedFeatures | None = None,
) -> RecTransformerForNextItemPrediction:
    """A new model from the hyperparameters (the catalogue and user counts come from the vocabularies).

    Every config field that `model_args` carries is passed through unchanged; the data decides the rest:
    `max_length` (None: the config's default window) and the feature fields. `item_features` are the item
    table's fields and their matrices in token order (`data.item_features`), `user_features` the user table's
    by user index; with `use_item_features` / `use_user_features` (by default: whenever the data has them, and
    for users only when the model reads the user) the model stores the matrices as buffers, so a saved model
    carries them. `exclude_seen` is the evaluation's choice (`DataArguments.exclude_seen`): where evaluation may
    rank seen items, training does not leave them out of its softmax either.
    """
    use_items = _use(model_args.use_item_features, item_features, "use_item_features", "item")
    use_users = _use(model_args.use_user_features, user_features, "use_user_features", "user")
    use_users = use_users and model_args.user_conditioning != "none"
    if model_args.use_user_features and not use_users:
        raise ValueError("--use_user_features needs --user_conditioning add, prepend or concat")
    options = model_args.config_kwargs()
    options["exclude_seen_in_loss"] = options["exclude_seen_in_loss"] and exclude_seen
    config = RecTransformerConfig(
        **options,
        num_items=num_items,
        num_users=num_users,
        max_position_embeddings=max_length or RecTransformerConfig.max_position_embeddings,
        exclude_seen=exclude_seen,
        item_feature_fields=_fields(item_features) if use_items else [],
        user_feature_fields=_fields(user_features) if use_users else [],
    )
    model = RecTransformerForNextItemPrediction(config)
    if use_items:
        model.set_item_features(item_features.matrices)
    if use_users:
        model.set_user_features(user_features.matrices)
    return model


def make_trainer(
    model: RecTransformerForNextItemPrediction,
    training_args: RecTrainingArguments,
    train_dataset: Dataset,
    eval_dataset: Dataset | None,
    max_length: int,
    random_crop: bool = False,
    exclude_seen: bool = True,
    ks: tuple[int, ...] = KS,
    rankable_items: int | None = None,
) -> Trainer:
    """A `Trainer` wired for next-item prediction: training collator with per-position labels, evaluation
    collator with one target per history, top-k ids kept per batch, full-ranking metrics. With `exclude_seen`,
    evaluation never ranks an item of the user's whole history, also one older than the `max_length` items the
    model reads (the evaluation batches carry the histories as `seen_ids`, see `NextItemTrainer`).
    `rankable_items` limits what evaluation may recommend to tokens 1..rankable_items (see
    `make_preprocess_logits_for_metrics`)."""
    if training_args.per_device_train_batch_size is None or training_args.learning_rate is None:
        # not set and not derived by `run_training`: the recipe's rule
        stats = DataStatistics.from_train_split(train_dataset, model.config.num_items, model.config.num_users)
        if training_args.per_device_train_batch_size is None:
            training_args.per_device_train_batch_size = derive_batch_size(stats, max_length).value
        if training_args.learning_rate is None:
            training_args.learning_rate = derive_learning_rate(stats).value
    use_users = model.config.user_conditioning != "none"
    train_collator = NextItemCollator(max_length, True, random_crop, use_users)
    eval_collator = NextItemCollator(max_length, False, False, use_users, seen_history=exclude_seen)
    compile_cross_entropy(training_args.compile_loss)
    callbacks: list[TrainerCallback] = []
    if training_args.load_best_model_at_end and training_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(training_args.early_stopping_patience))
    if training_args.max_train_minutes:
        callbacks.append(
            TimeBudgetCallback(
                training_args.max_train_minutes,
                training_args.budget_decay_fraction,
                training_args.budget_eval_interval,
            )
        )
    if training_args.weight_average_epochs:
        callbacks.append(WeightAverageCallback(training_args.weight_average_epochs))
    return NextItemTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=train_collator,
        eval_data_collator=eval_collator,
        compute_metrics=make_compute_metrics(model.config.num_items, ks=ks),
        # seen items are already out of the scores (NextItemTrainer.prediction_step)
        preprocess_logits_for_metrics=make_preprocess_logits_for_metrics(
            k=max(ks), exclude_seen=False, rankable_items=rankable_items
        ),
        callbacks=callbacks,
    )


class NextItemTrainer(Trainer):
    """`Trainer` whose evaluation/test batches come from a separate collator: training rows become
    per-position next-item sequences, evaluation rows stay "history -> one target". An evaluation batch's
    `seen_ids` (each user's whole history) is not a model input: `prediction_step` takes it out of the batch and
    gives its items a score of -inf, so they are never ranked."""

    def __init__(self, *args: Any, eval_data_collator: NextItemCollator, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator

    def _with_eval_collator(self, make_loader, *args):
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return make_loader(*args)
        finally:
            self.data_collator = train_collator

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        column = self.args.length_column_name
        if self.args.train_sampling_strategy != "group_by_length" or column not in getattr(dataset, "column_names", ()):
            return super()._get_train_sampler(train_dataset)
        # datasets >= 4 returns a lazy Column whose every element access is an Arrow lookup, which the sampler
        # makes once per row (minutes for 400k rows): hand it the lengths as a list.
        return LengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=dataset[column][:]
        )

    def _get_eval_sampler(self, eval_dataset):
        # Evaluation rows arrive sorted by history length (`sorted_for_eval`), so sequential batches need almost
        # no padding. transformers 5 would otherwise apply the training's length grouping here too, re-reading
        # every history at each evaluation.
        return None if eval_dataset is None else torch.utils.data.SequentialSampler(eval_dataset)

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        seen = inputs.pop("seen_ids", None)
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if seen is not None and isinstance(logits, torch.Tensor):
            logits = exclude_items(logits, seen)
        return loss, logits, labels

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)


def evaluate_split(trainer: Trainer, dataset: Dataset, prefix: str) -> dict[str, float]:
    """Full-ranking metrics of the trainer's model on one split, keys without the prefix."""
    out = trainer.evaluate(dataset, metric_key_prefix=prefix)
    return {k[len(prefix) + 1 :]: float(v) for k, v in out.items() if k.startswith(prefix + "_")}


def epoch_history(trainer: Trainer) -> list[dict[str, float]]:
    """Per-epoch training loss and validation NDCG@10 from the Trainer's log."""
    rows: dict[float, dict[str, float]] = {}
    for entry in trainer.state.log_history:
        epoch = entry.get("epoch")
        if epoch is None:
            continue
        row = rows.setdefault(round(epoch, 3), {"epoch": round(epoch, 3)})
        if "loss" in entry:
            row["loss"] = float(entry["loss"])
        if "eval_ndcg@10" in entry:
            row["valid_ndcg@10"] = float(entry["eval_ndcg@10"])
            row["valid_hr@10"] = float(entry.get("eval_hr@10", math.nan))
    return [rows[k] for k in sorted(rows)]
