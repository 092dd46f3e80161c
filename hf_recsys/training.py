"""Training and evaluation through `transformers.Trainer`.

`run_training(model_args, data_args, training_args)` is the whole job behind `scripts/train.py`: load the data
through the builder, build (or load, to fine-tune) the model, train with validation NDCG@10 choosing the best
epoch, evaluate the test split once, score the popularity baseline with the same code, and write a complete
run folder (weights, code, vocabularies, results.json, training curve, model card).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType

from .baselines import evaluate_popularity, item_counts
from .data.collator import NextItemCollator
from .metrics import KS, exclude_items, make_compute_metrics, make_preprocess_logits_for_metrics
from .modeling import RecTransformerConfig, RecTransformerForNextItemPrediction
from .modeling.losses import compile_cross_entropy
from .modeling.pipeline_rec_transformer import save_pipeline_files

logger = logging.getLogger(__name__)

# Published ML-1M figures under the same protocol (leave-one-out, full ranking, max length 200).
PUBLISHED_ML1M = {
    "SASRec (BCE)": {"ndcg@10": 0.134, "hr@10": 0.250},
    "BERT4Rec": {"ndcg@10": 0.154, "hr@10": 0.284},
    "SASRec (full CE)": {"ndcg@10": 0.182, "hr@10": 0.315},
    "gSASRec": {"ndcg@10": 0.173, "hr@10": 0.300},
}


@dataclass
class ModelArguments:
    """The model to train: a new one from these hyperparameters, or `model_name_or_path` to fine-tune.

    Defaults are the package's default recipe for ML-1M (see README, "Benchmarks").
    """

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Run folder or Hub id of a trained model to fine-tune; None trains anew."}
    )
    hidden_size: int = field(default=64, metadata={"help": "Embedding and transformer width."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Transformer blocks (4: see benchmarks/tuning.md)."})
    num_attention_heads: int = field(default=1, metadata={"help": "Attention heads per block."})
    intermediate_size: int = field(default=256, metadata={"help": "Feed-forward width."})
    hidden_act: str = field(default="gelu", metadata={"help": "Feed-forward activation: gelu | relu | swiglu"})
    residual_gating: bool = field(
        default=False, metadata={"help": "Sigmoid-gated residual updates in every block (LiGR, eSASRec)."}
    )
    relative_attention_bias: bool = field(
        default=True,
        metadata={"help": "Learnt attention bias per query-key distance (T5, HSTU; see benchmarks/tuning.md)."},
    )
    hidden_dropout_prob: float = field(default=0.2, metadata={"help": "Dropout on embeddings and block outputs."})
    attention_probs_dropout_prob: float = field(default=0.0, metadata={"help": "Dropout on attention weights."})
    position_embedding_type: str = field(default="learned", metadata={"help": "learned | sinusoidal | none"})
    user_conditioning: str = field(default="none", metadata={"help": "none | add | prepend | concat"})
    user_dropout_prob: float = field(
        default=0.1, metadata={"help": "Share of training rows seen as the unknown user (trains that row)."}
    )
    use_user_features: bool = field(default=False, metadata={"help": "Feed gender/age/occupation embeddings."})
    use_item_features: bool | None = field(
        default=None,
        metadata={
            "help": "Add genre and release-decade embeddings to each movie's embedding. Default: on when the data "
            "has movie genres or years (MovieLens: movies.dat / u.item), off for a bare 'user item' file."
        },
    )
    item_features_in_output: bool = field(
        default=True,
        metadata={"help": "With item features: score each movie with its genre and decade embeddings too."},
    )
    output_item_bias: bool = field(
        default=False, metadata={"help": "Add a learnt per-movie bias to every score (BERT4Rec's output layer)."}
    )
    tie_word_embeddings: bool = field(
        default=True, metadata={"help": "Score movies with the input embedding table; False learns a separate one."}
    )
    loss_type: str = field(default="ce", metadata={"help": "ce | sampled_softmax | bce | gbce"})
    num_negatives: int = field(default=256, metadata={"help": "Negatives of sampled_softmax / gbce."})
    negative_sampling: str = field(default="uniform", metadata={"help": "uniform | popularity"})
    gbce_t: float = field(default=0.75, metadata={"help": "gSASRec calibration t."})
    label_smoothing: float = field(default=0.0, metadata={"help": "Label smoothing of the full cross-entropy."})
    future_window: int = field(
        default=1, metadata={"help": "Full CE: train each position on the next N items (1 = next item only)."}
    )
    future_decay: float = field(default=0.5, metadata={"help": "Weight ratio between consecutive future items."})
    recency_half_life: float = field(
        default=0.0,
        metadata={"help": "Full CE: a target's weight halves every N targets back from its history's end (0 = off)."},
    )
    exclude_seen_in_loss: bool | None = field(
        default=None,
        metadata={
            "help": "Full CE: leave the items a position has read out of its softmax. Default: on when the loss is "
            "ce and evaluation excludes seen items (--exclude_seen), so training ranks what is scored."
        },
    )
    freeze_transformer: bool = field(
        default=False, metadata={"help": "Fine-tuning: train only item/user embeddings, keep the blocks frozen."}
    )


@dataclass
class DataArguments:
    """Which data, which protocol and how histories are cut."""

    dataset: str = field(default="ml-1m", metadata={"help": "Builder config: ml-1m, ml-100k, ..., sequences."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with the official files; default $HF_RECSYS_DATA_DIR or download."}
    )
    protocol: str = field(default="leave-one-out", metadata={"help": "leave-one-out | seed-windows | temporal"})
    sequences_path: str | None = field(
        default=None, metadata={"help": "With --dataset sequences: a SASRec-format 'user item' file (path or URL)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})
    max_length: int = field(
        default=200, metadata={"help": "Most recent items the model reads (max_position_embeddings)."}
    )
    random_crop: bool = field(
        default=False,
        metadata={
            "help": "Train long histories on a random window instead of their most recent one (more data, but "
            "older behaviour: on ML-1M the most recent window tests better, see benchmarks/tuning.md)."
        },
    )
    exclude_seen: bool = field(default=True, metadata={"help": "Never rank items already in the history."})

    def builder_options(self) -> dict[str, Any]:
        """Extra builder config values (only those that are set)."""
        return {"sequences_path": self.sequences_path} if self.sequences_path else {}


@dataclass
class RecTrainingArguments(TrainingArguments):
    """`TrainingArguments` with this task's defaults, plus early stopping and a wall-clock budget."""

    output_dir: str = field(default="runs/rec-transformer", metadata={"help": "The run folder."})
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 256
    learning_rate: float = 1.5e-3
    warmup_steps: float = 100
    weight_decay: float = 0.0
    adam_beta2: float = 0.98
    num_train_epochs: float = 200.0
    lr_scheduler_type: SchedulerType | str = "constant"
    eval_strategy: IntervalStrategy | str = "epoch"
    save_strategy: SaveStrategy | str = "epoch"
    save_total_limit: int | None = 1
    load_best_model_at_end: bool = True
    metric_for_best_model: str = "ndcg@10"
    greater_is_better: bool = True
    logging_strategy: IntervalStrategy | str = "epoch"
    remove_unused_columns: bool = False
    label_names: list[str] | None = field(default_factory=lambda: ["labels"])
    train_sampling_strategy: str = "group_by_length"
    dataloader_num_workers: int = 0
    dataloader_pin_memory: bool = field(
        default_factory=torch.cuda.is_available,
        metadata={"help": "Pin batches in page-locked memory (only helps copies to a GPU; off without one)."},
    )
    early_stopping_patience: int = field(default=10, metadata={"help": "Evaluations without improvement."})
    max_train_minutes: float | None = field(default=None, metadata={"help": "Stop training after this long."})
    budget_decay_fraction: float = field(
        default=0.5,
        metadata={"help": "With max_train_minutes: decay the learning rate linearly to 0 over this last share of it."},
    )
    budget_eval_interval: int = field(
        default=5,
        metadata={
            "help": "With max_train_minutes and budget_decay_fraction > 0: until the learning rate has decayed to "
            "half its peak, validate only every N epochs; every epoch after that, where the best epoch lies "
            "(checkpoints: every epoch). A full-ranking validation of ML-1M costs ~7 s, a sixth of a 30-minute "
            "budget if run every epoch."
        },
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Allow replacing a different run."})
    compile_loss: bool = field(
        default=True, metadata={"help": "torch.compile the full cross-entropy chunks (2-3x faster on CPU)."}
    )


class TimeBudgetCallback(TrainerCallback):
    """Trains for a wall-clock budget: stops once `minutes` have passed (checked after every step; the best
    epoch is still kept) and, with `decay_fraction` > 0, decays the learning rate linearly to 0 over the last
    `decay_fraction` of the budget. Ending a budgeted run on a decayed learning rate is worth more than any
    fixed schedule that does not know where training will stop (Li et al., "Budgeted Training", ICLR 2020).

    With a decay phase, `eval_interval` > 1 skips the per-epoch evaluation of the epochs that end before the
    learning rate has decayed to half its peak (the first half of the decay phase), except every
    `eval_interval`-th: while the learning rate is high the model is still far from its best, and each skipped
    full-ranking validation is training time won. In every 30-minute ML-1M run logged so far the best epoch
    came later than that (benchmarks/tuning.md). Every later epoch, and the last epoch or step, is evaluated
    as usual. Checkpoints are still written every epoch (a resumed run loses at most one epoch); an
    unvalidated one is never taken for the best.

    Under data parallelism the main process's clock decides and is broadcast: processes that stop after
    different steps would wait forever for each other, and different learning rates would split the replicas.
    """

    def __init__(self, minutes: float, decay_fraction: float = 0.0, eval_interval: int = 1):
        if not 0.0 <= decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction}")
        if eval_interval < 1:
            raise ValueError(f"eval_interval must be >= 1, got {eval_interval}")
        self.seconds = minutes * 60
        self.decay_fraction = decay_fraction
        self.eval_interval = eval_interval
        self.start = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def _elapsed(self, args) -> float:
        elapsed = time.monotonic() - self.start
        if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            shared = torch.tensor([elapsed], dtype=torch.float64, device=args.device)
            torch.distributed.broadcast(shared, src=0)
            elapsed = float(shared.item())
        return elapsed

    def on_epoch_end(self, args, state, control, **kwargs):
        last = control.should_training_stop or state.global_step >= state.max_steps
        if self.eval_interval == 1 or self.decay_fraction == 0 or last:
            return control
        high_rate = self._elapsed(args) < self.seconds * (1.0 - self.decay_fraction / 2)
        if high_rate and round(state.epoch) % self.eval_interval != 0:
            control.should_evaluate = False
        return control

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        elapsed = self._elapsed(args)
        over = elapsed > self.seconds
        left = 1.0 - elapsed / self.seconds
        if self.decay_fraction > 0 and optimizer is not None and left < self.decay_fraction:
            factor = max(left, 0.0) / self.decay_fraction
            for group in optimizer.param_groups:  # applies to the next step; the scheduler's value is the base
                group["lr"] = group["lr"] * factor
        if over:
            control.should_training_stop = True
            control.should_evaluate = args.eval_strategy != "no"
            control.should_save = True
        return control


class SpeedCallback(TrainerCallback):
    """Wall time of each training epoch (evaluation excluded) and of each evaluation, for results.json."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.eval_seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.monotonic()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epoch_seconds.append(time.monotonic() - self._start)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        runtime = next((v for k, v in (metrics or {}).items() if k.endswith("_runtime")), None)
        if runtime is not None:
            self.eval_seconds.append(float(runtime))

    def summary(self, train_rows: int, train_positions: int) -> dict[str, float]:
        """Median epoch/evaluation time and training throughput (the first epoch, with compilation, excluded
        when there are others)."""
        epochs = self.epoch_seconds[1:] or self.epoch_seconds
        if not epochs:
            return {}
        epoch = float(np.median(epochs))
        out = {
            "epoch_seconds": round(epoch, 2),
            "first_epoch_seconds": round(self.epoch_seconds[0], 2),
            "sequences_per_second": round(train_rows / epoch, 1),
            "positions_per_second": round(train_positions / epoch, 1),
        }
        if self.eval_seconds:
            out["eval_seconds"] = round(float(np.median(self.eval_seconds)), 2)
        return out


class EpochReportCallback(TrainerCallback):
    """One readable progress line per epoch: epoch, training loss, validation NDCG@10/HR@10 (when the epoch is
    validated), time used."""

    def __init__(self, budget_minutes: float | None = None) -> None:
        self.budget = f" of {budget_minutes:.0f}:00" if budget_minutes else ""
        self.start = time.monotonic()
        self.loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def _clock(self) -> str:
        minutes, seconds = divmod(int(time.monotonic() - self.start), 60)
        return f"[{minutes}:{seconds:02d}{self.budget}]"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            if not control.should_evaluate and args.eval_strategy != "no":  # an epoch the time budget does not validate
                print(f"epoch {state.epoch:5.1f}  loss {self.loss:.3f}  (not validated)  {self._clock()}", flush=True)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        if "eval_ndcg@10" not in metrics:
            return
        loss = f"loss {self.loss:.3f}  " if self.loss is not None else ""
        print(
            f"epoch {state.epoch:5.1f}  {loss}valid NDCG@10 {metrics['eval_ndcg@10']:.4f}  "
            f"HR@10 {metrics.get('eval_hr@10', float('nan')):.4f}  {self._clock()}",
            flush=True,
        )


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


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_output_dir(output_dir: str, resume: bool, overwrite: bool) -> None:
    """Refuse to silently overwrite a folder that holds a different, finished run."""
    path = Path(output_dir)
    if resume or overwrite or not path.exists():
        return
    if (path / "results.json").exists() or (path / "model.safetensors").exists():
        raise FileExistsError(
            f"{path} already holds a trained run (results.json / model.safetensors). Pass --overwrite_output_dir "
            "to replace it, --resume_from_checkpoint to continue it, or choose another --output_dir."
        )


def build_model(
    model_args: ModelArguments,
    num_items: int,
    num_users: int,
    user_feature_sizes: list[int],
    max_length: int = 200,
    exclude_seen: bool = True,
    item_genres: np.ndarray | None = None,
    item_year_buckets: np.ndarray | None = None,
) -> RecTransformerForNextItemPrediction:
    """A new model from the hyperparameters (the catalogue and user counts come from the vocabularies).

    `exclude_seen` is the evaluation's choice (`DataArguments.exclude_seen`); an unset
    `model_args.exclude_seen_in_loss` follows it when the loss is the full cross-entropy.
    `item_genres` (multi-hot, `(num_items + 1, genres)`) and `item_year_buckets` (`(num_items + 1,)`, 0 = unknown)
    come from `ItemVocab.genre_matrix()` and `ItemVocab.year_buckets()`; with `model_args.use_item_features` (by
    default: when they hold any genre or year) the model stores them as buffers, so a saved model carries them.
    """
    if item_genres is not None and item_genres.shape != (num_items + 1, item_genres.shape[1]):
        raise ValueError(f"item_genres must have {num_items + 1} rows, got shape {item_genres.shape}")
    if item_year_buckets is not None and item_year_buckets.shape != (num_items + 1,):
        raise ValueError(f"item_year_buckets must have shape ({num_items + 1},), got {item_year_buckets.shape}")
    num_genres = 0 if item_genres is None else int(item_genres.shape[1])
    num_year_buckets = 0 if item_year_buckets is None else int(item_year_buckets.max(initial=0))
    available = bool(num_genres or num_year_buckets)
    use_item_features = available if model_args.use_item_features is None else model_args.use_item_features
    if use_item_features and not available:
        raise ValueError(
            "--use_item_features: this dataset's item vocabulary has no genres or years (MovieLens builds read "
            "them from movies.dat / u.item; a bare 'user item' sequence file has none)"
        )
    if not use_item_features:
        num_genres = num_year_buckets = 0
    exclude_seen_in_loss = model_args.exclude_seen_in_loss
    if exclude_seen_in_loss is None:
        exclude_seen_in_loss = exclude_seen and model_args.loss_type == "ce"
    config = RecTransformerConfig(
        num_items=num_items,
        num_users=num_users,
        max_position_embeddings=max_length,
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=model_args.num_attention_heads,
        intermediate_size=model_args.intermediate_size,
        hidden_act=model_args.hidden_act,
        residual_gating=model_args.residual_gating,
        relative_attention_bias=model_args.relative_attention_bias,
        hidden_dropout_prob=model_args.hidden_dropout_prob,
        attention_probs_dropout_prob=model_args.attention_probs_dropout_prob,
        position_embedding_type=model_args.position_embedding_type,
        user_conditioning=model_args.user_conditioning,
        user_dropout_prob=model_args.user_dropout_prob,
        user_feature_sizes=user_feature_sizes if model_args.use_user_features else [],
        loss_type=model_args.loss_type,
        num_negatives=model_args.num_negatives,
        negative_sampling=model_args.negative_sampling,
        gbce_t=model_args.gbce_t,
        label_smoothing=model_args.label_smoothing,
        future_window=model_args.future_window,
        future_decay=model_args.future_decay,
        recency_half_life=model_args.recency_half_life,
        exclude_seen_in_loss=exclude_seen_in_loss,
        num_item_genres=num_genres,
        num_item_year_buckets=num_year_buckets,
        item_features_in_output=model_args.item_features_in_output and use_item_features,
        output_item_bias=model_args.output_item_bias,
        tie_word_embeddings=model_args.tie_word_embeddings,
    )
    model = RecTransformerForNextItemPrediction(config)
    if use_item_features:
        model.set_item_features(
            torch.as_tensor(item_genres) if num_genres else None,
            torch.as_tensor(item_year_buckets) if num_year_buckets else None,
        )
    return model


def make_trainer(
    model: RecTransformerForNextItemPrediction,
    training_args: RecTrainingArguments,
    train_dataset: Dataset,
    eval_dataset: Dataset | None,
    max_length: int,
    random_crop: bool = False,
    exclude_seen: bool = True,
    user_features: np.ndarray | None = None,
    ks: tuple[int, ...] = KS,
    rankable_items: int | None = None,
) -> Trainer:
    """A `Trainer` wired for next-item prediction: training collator with per-position labels, evaluation
    collator with one target per history, top-k ids kept per batch, full-ranking metrics. With `exclude_seen`,
    evaluation never ranks an item of the user's whole history, also one older than the `max_length` items the
    model reads (the evaluation batches carry the histories as `seen_ids`, see `NextItemTrainer`).
    `rankable_items` limits what evaluation may recommend to tokens 1..rankable_items (see
    `make_preprocess_logits_for_metrics`)."""
    use_users = model.config.user_conditioning != "none"
    features = user_features if (use_users and model.config.user_feature_sizes) else None
    train_collator = NextItemCollator(max_length, True, random_crop, features, use_users)
    eval_collator = NextItemCollator(max_length, False, False, features, use_users, seen_history=exclude_seen)
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


def write_results(output_dir: str | Path, results: dict[str, Any]) -> Path:
    """Atomically write results.json into the run folder."""
    path = Path(output_dir) / "results.json"
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
    Trainer's raw log dictionaries.
    """
    from .data import load_movielens, save_vocabs  # the builder is heavy; import only when training

    ks = (1, 3, 5, 10, 20) if data_args.protocol == "seed-windows" else KS  # the notebook reported NDCG@3
    check_output_dir(
        training_args.output_dir, bool(training_args.resume_from_checkpoint), training_args.overwrite_output_dir
    )
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="MovieLens preparation"):  # one prepares, the others reload
        data = load_movielens(
            data_args.dataset,
            data_dir=data_args.data_dir,
            protocol=data_args.protocol,
            cache_dir=data_args.cache_dir,
            seed=training_args.seed,
            **data_args.builder_options(),
        )
    splits = data.dataset
    items, users = data.items, data.users

    if model_args.model_name_or_path:
        # Fine-tuning: express the data in the pretrained tokens (vocabularies extended for unseen movies and
        # users), grow the model to match, optionally freeze all but the embeddings (hf_recsys/finetuning.py).
        from .finetuning import align_to_pretrained, load_pretrained_vocabs, prepare_model_for_finetuning

        model = RecTransformerForNextItemPrediction.from_pretrained(model_args.model_name_or_path)
        pretrained_items, pretrained_users = load_pretrained_vocabs(model_args.model_name_or_path, model)
        data, items, users, alignment = align_to_pretrained(data, pretrained_items, pretrained_users)
        splits = data.dataset
        logger.info("fine-tuning %s:\n%s", model_args.model_name_or_path, alignment.summary())
        prepare_model_for_finetuning(model, items, users, freeze_transformer=model_args.freeze_transformer)
    else:
        if model_args.freeze_transformer:
            raise ValueError("--freeze_transformer needs --model_name_or_path (a trained model to fine-tune)")
        model = build_model(
            model_args,
            items.num_items,
            users.num_users,
            list(users.feature_sizes),
            data_args.max_length,
            exclude_seen=data_args.exclude_seen,
            item_genres=items.genre_matrix(),  # (V, 0) without genres
            item_year_buckets=items.year_buckets(),
        )
    counts = item_counts(splits["train"], items.num_items + 1, include_targets=True)
    model.set_item_popularity(torch.as_tensor(counts, dtype=torch.float32))

    max_length = model.config.max_position_embeddings
    train_ds = with_lengths(splits["train"], max_length)
    valid_ds = sorted_for_eval(splits["validation"])
    test_ds = sorted_for_eval(splits["test"])
    user_features = users.feature_matrix() if len(users.feature_names) else None
    trainer = make_trainer(
        model,
        training_args,
        train_ds,
        valid_ds,
        max_length,
        data_args.random_crop,
        data_args.exclude_seen,
        user_features,
        ks=ks,
    )

    speed = SpeedCallback()
    trainer.add_callback(speed)
    if training_args.disable_tqdm and trainer.is_world_process_zero():
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(EpochReportCallback(training_args.max_train_minutes))
    start = time.monotonic()
    train_output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
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
        "dataset": data_args.dataset,
        "protocol": data_args.protocol,
        "metrics": {"validation": valid_metrics, "test": test_metrics},
        "baselines": {"popularity": popularity},
        "published": PUBLISHED_ML1M if data_args.dataset == "ml-1m" and data_args.protocol == "leave-one-out" else {},
        "history": epoch_history(trainer),
        "training": {
            **{k: v for k, v in asdict(model_args).items()},
            "exclude_seen_in_loss": model.config.exclude_seen_in_loss,  # resolved (None follows exclude_seen)
            **{k: v for k, v in asdict(data_args).items() if k not in ("data_dir", "cache_dir")},
            "learning_rate": training_args.learning_rate,
            "per_device_train_batch_size": training_args.per_device_train_batch_size,
            "num_train_epochs": training_args.num_train_epochs,
            "epochs_run": float(trainer.state.epoch or 0),
            "best_epoch_metric": trainer.state.best_metric,
            "seed": training_args.seed,
            "max_train_minutes": training_args.max_train_minutes,
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
        save_pipeline_files(out, to_save)  # pipeline("next-item-recommendation", model=out) works
        write_results(out, results)
        try:
            from .hub import plot_training_curve, write_model_card

            plot_training_curve(results["history"], out / "training_curve.png")
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
    from .data import load_movielens
    from .finetuning import align_to_pretrained, load_pretrained_vocabs, prepare_model_for_finetuning

    model = RecTransformerForNextItemPrediction.from_pretrained(model_name_or_path).eval()
    data = load_movielens(
        data_args.dataset,
        data_dir=data_args.data_dir,
        protocol=data_args.protocol,
        cache_dir=data_args.cache_dir,
        seed=seed,
        **data_args.builder_options(),
    )
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
                f"{data_args.dataset!r} has {data.items.num_items}: cannot tell which row is which movie"
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
    user_features = data.users.feature_matrix() if len(data.users.feature_names) else None
    trainer = make_trainer(
        model,
        args,
        dataset,
        None,
        max_length,
        exclude_seen=data_args.exclude_seen,
        user_features=user_features,
        ks=ks,
        rankable_items=rankable_items,
    )
    return {**evaluate_split(trainer, dataset, split), **extra}
