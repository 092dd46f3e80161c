"""The recipe's data-derived settings: what the data's statistics decide when an option does not.

The config's defaults are the recipe for dense data with long histories (ML-1M: 289 interactions per item, a
median history of 93 items). Sparse logs (Amazon Toys, LastFM: 11-14 interactions per item, a median history of
3-16) need more regularisation and carry few positions per history, so `derive_recipe` sets, from statistics
of the training split only (`DataStatistics`):

- ``max_length``: the histories' 99th percentile rounded up to a multiple of 8, at most the config's window
  (200). Reading further back pays nothing when almost no history is that long.
- ``hidden_dropout_prob``: log-linear in the interactions per item, from the config's 0.2 at
  `DENSE_INTERACTIONS_PER_ITEM` (and above) to `SPARSE_DROPOUT` at `SPARSE_INTERACTIONS_PER_ITEM` (and below).
  Few interactions per item embedding memorise fast: on LastFM the 4-block model reached its best validation at
  epoch 10 of 60 with dropout 0.2.
- ``item_dropout_prob``: on the same log-linear scale, from 0 (the config's) at `DENSE_INTERACTIONS_PER_ITEM` to
  `SPARSE_ITEM_DROPOUT` at `SPARSE_INTERACTIONS_PER_ITEM`. Hiding whole items of a history makes each target
  predicted from a random part of its past, so a sparse log memorises later and uses more of its time budget.
- ``learning_rate``: on the same log-linear scale, from `LEARNING_RATE` (tuned on ML-1M) at
  `DENSE_INTERACTIONS_PER_ITEM` to `SPARSE_LEARNING_RATE` at `SPARSE_INTERACTIONS_PER_ITEM`. A sparse log reaches
  its best validation while the rate is at its peak and memorises after it; at half the rate LastFM trained
  longer before it did, to a better validation.
- ``per_device_train_batch_size``: the largest power of two whose batch carries at most `POSITIONS_PER_BATCH`
  next-item targets on average, clamped to [`MIN_BATCH`, `MAX_BATCH`] and to an eighth of the users. Histories
  of ~40 targets and more (ML-1M, ML-100K, LastFM) keep the tuned 32 (`MIN_BATCH`); 32 Toys histories of 5 targets are a
  170-target step that pays its fixed per-step cost many times over, and 256 of them trained to a better
  validation in the same time (512 did worse again: fewer updates per epoch, no faster epochs).
- ``loss_type``: full softmax while scoring the whole catalogue costs at most `FULL_SOFTMAX_MAX_RATIO` times the
  backbone per position (25-30k items for the default model, by history length), sampled softmax with logQ correction above.

The validation interval of a time budget is measured, not estimated (`TimeBudgetCallback`). Depth and width are
not derived: no measured rule gained (benchmarks/recipe.md). Every derived value is logged with its reason and
recorded in results.json (`"recipe"`). An option set on the command line, in Python or by a preset wins.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset

from ..modeling import RecTransformerConfig

#: Interactions per item at and above which the config's dropout (0.2, tuned on ML-1M's 289) applies.
DENSE_INTERACTIONS_PER_ITEM = 250.0
#: Interactions per item at and below which `SPARSE_DROPOUT` applies (S3-Rec's Toys: 11, LastFM: 14).
SPARSE_INTERACTIONS_PER_ITEM = 15.0
SPARSE_DROPOUT = 0.5
SPARSE_ITEM_DROPOUT = 0.2
#: The peak learning rate on dense data (tuned on ML-1M: 1e-3 and 2e-3 both scored lower), and on sparse data.
LEARNING_RATE = 1.5e-3
SPARSE_LEARNING_RATE = 7.5e-4
#: Most next-item targets per training batch that the batch size grows to (ML-1M's 32 histories carry ~3,400).
POSITIONS_PER_BATCH = 2048
MIN_BATCH, MAX_BATCH = 32, 512
#: Most scoring cost per position, as a multiple of the backbone's, that full softmax is kept for.
FULL_SOFTMAX_MAX_RATIO = 8.0
HISTORY_PERCENTILE = 99.0


@dataclass(frozen=True)
class DataStatistics:
    """What the recipe reads from the training split: its size and the shape of its histories."""

    num_users: int
    num_items: int
    num_interactions: int
    history_lengths: tuple[int, ...]

    @classmethod
    def from_train_split(cls, train: Dataset, num_items: int, num_users: int) -> DataStatistics:
        """Statistics of `train` (rows of ``input_ids`` + ``target``: a history and its next item)."""
        histories = train.with_format("arrow")["input_ids"]  # Arrow list lengths: no Python lists of every item
        lengths = tuple((pc.list_value_length(histories).to_numpy(zero_copy_only=False) + 1).tolist())
        return cls(num_users, num_items, int(sum(lengths)), lengths)

    @property
    def interactions_per_item(self) -> float:
        return self.num_interactions / max(self.num_items, 1)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.history_lengths, q)) if self.history_lengths else 0.0

    def mean_positions(self, max_length: int) -> float:
        """Mean next-item targets a training history carries when the model reads `max_length` items."""
        if not self.history_lengths:
            return 1.0
        return float(np.mean(np.minimum(np.asarray(self.history_lengths) - 1, max_length)).clip(min=1.0))

    def summary(self) -> dict[str, Any]:
        return {
            "users": self.num_users,
            "items": self.num_items,
            "interactions": self.num_interactions,
            "interactions_per_item": round(self.interactions_per_item, 1),
            "history_p50": self.percentile(50),
            "history_p99": self.percentile(HISTORY_PERCENTILE),
        }


@dataclass(frozen=True)
class DerivedSetting:
    """One setting the data decided, and why."""

    name: str
    value: Any
    reason: str


def derive_max_length(stats: DataStatistics, cap: int = RecTransformerConfig.max_position_embeddings) -> DerivedSetting:
    """The rule's ``max_length``: the histories' 99th percentile, rounded up to a multiple of 8, at most `cap`."""
    p = stats.percentile(HISTORY_PERCENTILE)
    value = int(min(cap, max(8, 8 * math.ceil(p / 8))))
    return DerivedSetting(
        "max_length", value, f"{HISTORY_PERCENTILE:g}% of histories hold <= {p:.0f} items (cap {cap})"
    )


def _sparse_setting(stats: DataStatistics, name: str, dense: float, sparse: float, digits: int = 2) -> DerivedSetting:
    """`dense` at `DENSE_INTERACTIONS_PER_ITEM` and above, `sparse` at `SPARSE_INTERACTIONS_PER_ITEM` and below,
    log-linear in the interactions per item between (rounded to `digits` decimals)."""
    ipi = stats.interactions_per_item
    span = math.log(DENSE_INTERACTIONS_PER_ITEM / SPARSE_INTERACTIONS_PER_ITEM)
    share = min(max(math.log(DENSE_INTERACTIONS_PER_ITEM / max(ipi, 1e-9)) / span, 0.0), 1.0)  # 0 dense, 1 sparse
    return DerivedSetting(
        name,
        round(dense + share * (sparse - dense), digits),
        f"{ipi:.1f} interactions per item ({dense} at >= {DENSE_INTERACTIONS_PER_ITEM:g}, "
        f"{sparse} at <= {SPARSE_INTERACTIONS_PER_ITEM:g}, log-linear between)",
    )


def derive_dropout(stats: DataStatistics, dense: float = RecTransformerConfig.hidden_dropout_prob) -> DerivedSetting:
    """The rule's ``hidden_dropout_prob``: `dense` (the config's) on dense data, `SPARSE_DROPOUT` on sparse data."""
    return _sparse_setting(stats, "hidden_dropout_prob", dense, SPARSE_DROPOUT)


def derive_item_dropout(stats: DataStatistics, dense: float = RecTransformerConfig.item_dropout_prob) -> DerivedSetting:
    """The rule's ``item_dropout_prob``: `dense` (the config's) on dense data, `SPARSE_ITEM_DROPOUT` on sparse data."""
    return _sparse_setting(stats, "item_dropout_prob", dense, SPARSE_ITEM_DROPOUT)


def derive_learning_rate(stats: DataStatistics) -> DerivedSetting:
    """The rule's peak ``learning_rate``: `LEARNING_RATE` on dense data, `SPARSE_LEARNING_RATE` on sparse data."""
    return _sparse_setting(stats, "learning_rate", LEARNING_RATE, SPARSE_LEARNING_RATE, digits=5)


def derive_batch_size(stats: DataStatistics, max_length: int) -> DerivedSetting:
    """The rule's ``per_device_train_batch_size`` from the mean targets per history within `max_length`."""
    positions = stats.mean_positions(max_length)
    value = 2 ** math.floor(math.log2(POSITIONS_PER_BATCH / positions))
    value = int(
        min(max(value, MIN_BATCH), MAX_BATCH, max(MIN_BATCH, 2 ** int(math.log2(max(stats.num_users // 8, 1)))))
    )
    return DerivedSetting(
        "per_device_train_batch_size",
        value,
        f"histories carry {positions:.1f} targets on average: at most ~{POSITIONS_PER_BATCH} per batch "
        f"(power of two in [{MIN_BATCH}, {MAX_BATCH}], at most an eighth of the {stats.num_users:,} users)",
    )


def scoring_to_backbone_ratio(stats: DataStatistics, config: RecTransformerConfig, max_length: int) -> float:
    """Multiply-adds per position of scoring the catalogue, over the backbone's (projections, feed-forward and
    attention over the mean history): the share full softmax adds to a step."""
    hidden, window = config.hidden_size, min(stats.mean_positions(max_length), max_length)
    per_block = 4 * hidden * hidden + 2 * hidden * config.intermediate_size + 2 * hidden * window
    return hidden * stats.num_items / (config.num_hidden_layers * per_block)


def derive_loss(stats: DataStatistics, config: RecTransformerConfig, max_length: int) -> DerivedSetting:
    ratio = scoring_to_backbone_ratio(stats, config, max_length)
    value = "ce" if ratio <= FULL_SOFTMAX_MAX_RATIO else "sampled_softmax"
    how = "<=" if value == "ce" else ">"
    return DerivedSetting(
        "loss_type",
        value,
        f"scoring {stats.num_items:,} items costs {ratio:.1f}x the backbone per position "
        f"({how} {FULL_SOFTMAX_MAX_RATIO:g}: {'full softmax' if value == 'ce' else 'sampled softmax with logQ'})",
    )


def derive_recipe(
    stats: DataStatistics, config: RecTransformerConfig | None = None, max_length: int | None = None
) -> dict[str, DerivedSetting]:
    """Every data-derived setting, by option name. `config` gives the model's shape (default: the config's
    defaults) and `max_length` a window already chosen (None: derived)."""
    config = config or RecTransformerConfig()
    window = derive_max_length(stats)
    if max_length is not None:
        window = DerivedSetting("max_length", max_length, "set")
    derived = [
        window,
        derive_dropout(stats),
        derive_item_dropout(stats),
        derive_learning_rate(stats),
        derive_batch_size(stats, window.value),
        derive_loss(stats, config, window.value),
    ]
    return {d.name: d for d in derived}


def recipe_record(stats: DataStatistics, applied: list[DerivedSetting]) -> dict[str, Any]:
    """What results.json records: the statistics and each setting the data decided, with its reason."""
    return {"statistics": stats.summary(), "derived": [asdict(d) for d in applied]}


def apply_recipe(
    stats: DataStatistics, model_args: Any, data_args: Any, training_args: Any, fine_tuning: bool = False
) -> list[DerivedSetting]:
    """Set every recipe option still unset (None) on the arguments from `derive_recipe`, log each with its reason
    and return those applied. Fine-tuning keeps the pretrained model's shape, window and loss: only the batch
    size and the learning rate follow the new data."""
    from transformers.utils import logging

    logger = logging.get_logger(__name__)
    config = RecTransformerConfig(**model_args.config_kwargs())
    derived = derive_recipe(stats, config, data_args.max_length)
    owners = {"max_length": data_args, "per_device_train_batch_size": training_args, "learning_rate": training_args}
    applied = []
    for name, setting in derived.items():
        owner = owners.get(name, model_args)
        if getattr(owner, name) is not None or (fine_tuning and owner is not training_args):
            continue
        setattr(owner, name, setting.value)
        applied.append(setting)
        logger.info("recipe: %s = %s, since %s", name, setting.value, setting.reason)
    return applied
