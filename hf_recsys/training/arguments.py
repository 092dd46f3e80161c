"""Command-line arguments of training: the model, the data and the Trainer.

The model options are generated from `RecTransformerConfig`'s own fields: same names, same defaults (the
config's defaults ARE the recipe), help text taken from the config's docstring. Nothing here keeps a second list
of hyperparameters; a new config field is a new command-line option by itself. Only the config fields that the
data decides (catalogue size, users, feature tables, the history window) are not options.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType
from transformers.utils import logging

from ..data.interaction_options import default_dataset_name
from ..data.sources import FORMATS, TIME_UNITS
from ..modeling import RecTransformerConfig
from ..modeling.configuration_rec_transformer import (
    HIDDEN_ACTIVATIONS,
    LOSS_TYPES,
    NEGATIVE_SAMPLERS,
    POSITION_EMBEDDING_TYPES,
    USER_CONDITIONING_MODES,
)
from .recipe import LEARNING_RATE, SPARSE_LEARNING_RATE
from .table_arguments import TableArguments

logger = logging.get_logger(__name__)

#: Config fields set from the data (vocabularies, feature tables, `DataArguments.max_length`) or only used when
#: serving: they are not model options on the command line.
DATA_DERIVED_FIELDS = (
    "num_items",
    "num_users",
    "item_feature_fields",
    "user_feature_fields",
    "max_position_embeddings",
    "exclude_seen",
    "truncate_long_inputs",
    "pad_token_id",
)
#: Model options that, when unset, the data's statistics decide (`hf_recsys.training.recipe`).
DERIVED_MODEL_OPTIONS = ("hidden_dropout_prob", "item_dropout_prob", "loss_type")
_CHOICES = {
    "hidden_act": HIDDEN_ACTIVATIONS,
    "loss_type": LOSS_TYPES,
    "negative_sampling": NEGATIVE_SAMPLERS,
    "position_embedding_type": POSITION_EMBEDDING_TYPES,
    "user_conditioning": USER_CONDITIONING_MODES,
}
_ARG_LINE = re.compile(r"^(\s+)(\w+) \(`[^`]*`\): (.*)$")


def config_field_docs(config_class: type = RecTransformerConfig) -> dict[str, str]:
    """Each field's description in the config docstring's ``Args:`` section, joined on one line: the one source of
    the command line's help text."""
    docs: dict[str, str] = {}
    name, indent = None, 0
    for line in (config_class.__doc__ or "").splitlines():
        match = _ARG_LINE.match(line)
        if match:
            indent, name = len(match.group(1)), match.group(2)
            docs[name] = match.group(3).strip()
        elif name and line.strip() and len(line) - len(line.lstrip()) > indent:
            docs[name] += " " + line.strip()
        else:
            name = None
    return docs


def model_option_names(config_class: type = RecTransformerConfig) -> list[str]:
    """The config's own fields (not `PreTrainedConfig`'s) that are command-line model options, in config order."""
    own = config_class.__annotations__
    return [f.name for f in dataclasses.fields(config_class) if f.name in own and f.name not in DATA_DERIVED_FIELDS]


@dataclass
class _ModelChoices:
    """The model options that are choices of the training run, not config fields."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Run folder or Hub id of a trained model to fine-tune; None trains anew."}
    )
    use_user_features: bool | None = field(
        default=None,
        metadata={
            "help": "Add the user table's feature fields (MovieLens: gender, age, occupation) to the user "
            "embedding. Default: on when the data has a user table and the model reads the user "
            "(--user_conditioning other than none)."
        },
    )
    use_item_features: bool | None = field(
        default=None,
        metadata={
            "help": "Add the item table's feature fields (MovieLens: genres, release decade; S3-Rec: the "
            "attributes) to each item embedding. Default: on when the data has an item table."
        },
    )
    freeze_transformer: bool = field(
        default=False, metadata={"help": "Fine-tuning: train only item/user embeddings, keep the blocks frozen."}
    )

    def config_kwargs(self) -> dict[str, Any]:
        """The config fields these arguments set (every model option but the run choices above); a data-derived
        option still unset (None) is left to the config's default."""
        values = {name: getattr(self, name) for name in model_option_names()}
        return {k: v for k, v in values.items() if v is not None or k not in DERIVED_MODEL_OPTIONS}


def _own_field_types(config_class: type) -> dict[str, Any]:
    """The config's own annotations as types (the base config's hints name torch types this need not resolve)."""
    namespace = vars(sys.modules[config_class.__module__])
    return {
        name: eval(hint, namespace) if isinstance(hint, str) else hint
        for name, hint in config_class.__annotations__.items()
    }


def _generated_fields() -> list[tuple[str, Any, Any]]:
    docs, hints = config_field_docs(), _own_field_types(RecTransformerConfig)
    by_name = {f.name: f for f in dataclasses.fields(RecTransformerConfig)}
    out = []
    for name in model_option_names():
        metadata: dict[str, Any] = {"help": docs.get(name, "")}
        if name in _CHOICES:
            metadata["choices"] = list(_CHOICES[name])
        if name in DERIVED_MODEL_OPTIONS:
            default = by_name[name].default
            metadata["help"] += f" Default: from the data (hf_recsys/training/recipe.py; {default!r} on ML-1M)."
            out.append((name, hints[name] | None, field(default=None, metadata=metadata)))
            continue
        out.append((name, hints[name], field(default=by_name[name].default, metadata=metadata)))
    return out


ModelArguments = dataclasses.make_dataclass("ModelArguments", _generated_fields(), bases=(_ModelChoices,))
ModelArguments.__module__ = __name__
ModelArguments.__doc__ = (
    "The model to train: a new one (every `RecTransformerConfig` field that the data does not decide, with the "
    "config's defaults, which are the recipe), or `model_name_or_path` to fine-tune."
)


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` folder of `output_dir` that was written to the end, or None.

    The Trainer writes ``trainer_state.json`` last, after the weights, the optimizer and the random states, so a
    folder without a readable one is a checkpoint cut short (a ``kill -9`` mid-save): resuming from it would fail,
    and the one before it is skipped to instead. transformers' `get_last_checkpoint` only looks at the names.
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    numbered = [(int(p.name.split("-")[1]), p) for p in folder.glob("checkpoint-*") if p.name.split("-")[1].isdigit()]
    for _, path in sorted(numbered, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            logger.warning("skipping the incomplete checkpoint %s (no readable trainer_state.json)", path)
            continue
        return str(path)
    return None


@dataclass
class DataArguments(TableArguments):
    """Which data (with its item and user tables: `TableArguments`), which protocol and how histories are cut."""

    spec: str | None = field(
        default=None,
        metadata={
            "help": "A dataset spec: a preset (ml-1m, ml-100k, sasrec-ml-1m, amazon-toys, lastfm, ...) or a JSON/YAML "
            "file of these data options. It fills the options left at their defaults."
        },
    )
    dataset: str = field(
        default="ml-1m", metadata={"help": "MovieLens release (ml-1m, ml-100k, ...) or sequences; --data replaces it."}
    )
    data: str | None = field(
        default=None,
        metadata={
            "help": "Your own interaction log instead of a MovieLens release: a CSV, TSV, Parquet or JSON Lines "
            "file (a path, glob or URL), a Hub dataset id, or a SASRec/S3-Rec text file (with --data_format)."
        },
    )
    user_column: str = field(default="user_id", metadata={"help": "With --data: the column of user ids."})
    item_column: str = field(default="item_id", metadata={"help": "With --data: the column of item ids."})
    time_column: str | None = field(
        default=None, metadata={"help": "With --data: the time column; without one, file order is chronological."}
    )
    time_unit: str = field(
        default="auto",
        metadata={"help": "With --time_column: its unit (auto: detected and reported).", "choices": list(TIME_UNITS)},
    )
    data_format: str | None = field(
        default=None,
        metadata={"help": "With --data: the file format (default: from the extension).", "choices": list(FORMATS)},
    )
    min_rating: float | None = field(
        default=None, metadata={"help": "With --data: keep interactions rated at least this (--rating_column)."}
    )
    rating_column: str = field(default="rating", metadata={"help": "With --min_rating: the column of ratings."})
    keep_events: list[str] | None = field(
        default=None,
        metadata={
            "help": "With --data: keep only rows whose --event_column is one of these (e.g. purchase).",
            "nargs": "+",
        },
    )
    event_column: str = field(default="event", metadata={"help": "With --keep_events: the column of event types."})
    drop_consecutive_duplicates: bool = field(
        default=False, metadata={"help": "With --data: drop an item repeated right after itself by the same user."}
    )
    k_core: int | None = field(
        default=None, metadata={"help": "With --data: keep users and items with at least this many interactions."}
    )
    min_history: int = field(
        default=3,
        metadata={"help": "With --data: users with fewer interactions train only (leave-one-out needs 3 to evaluate)."},
    )
    dataset_license: str | None = field(
        default=None, metadata={"help": "With --data: the data's licence, shown in results.json and the model card."}
    )
    data_name: str | None = field(
        default=None, metadata={"help": "With --data: the dataset's name in results and the card (default: file stem)."}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with the official files; default $HF_RECSYS_DATA_DIR or download."}
    )
    protocol: str = field(default="leave-one-out", metadata={"help": "leave-one-out | seed-windows | temporal"})
    sequences_path: str | None = field(
        default=None, metadata={"help": "With --dataset sequences: a SASRec-format 'user item' file (path or URL)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Most recent items the model reads (the config's max_position_embeddings). Default: from the "
            f"data, the histories' 99th percentile, at most {RecTransformerConfig.max_position_embeddings} "
            "(hf_recsys/training/recipe.py)."
        },
    )
    random_crop: bool = field(
        default=False,
        metadata={
            "help": "Train a long history on one random window per epoch instead of on all its windows (turns "
            "--all_windows off; on ML-1M it tests worse than either the most recent window or all of them, see "
            "benchmarks/tuning.md and benchmarks/recipe.md)."
        },
    )
    all_windows: bool | None = field(
        default=None,
        metadata={
            "help": "Train every interaction: a history longer than the window becomes consecutive windows of "
            "max_length + 1 items cut from its end, not only its most recent one (false: the most recent one "
            "only). Default: on, unless --random_crop. Epochs grow with the share of interactions beyond the "
            "window; where histories fit, nothing changes. What it gained: benchmarks/recipe.md."
        },
    )
    exclude_seen: bool | None = field(
        default=None,
        metadata={
            "help": "Never rank items already in the history. Default: from the data, on unless people come back "
            "to items (a repeat share of at least 0.01, see log_pipeline.REPEAT_SHARE); stored in the model's config for serving."
        },
    )

    def resolve_exclude_seen(self, data: Any) -> bool:
        """`--exclude_seen`, else the data's own rule: leave seen items out unless the log repeats
        (`describe()["repeat_consumption"]["repeats"]`, recorded when the data was prepared)."""
        if self.exclude_seen is not None:
            return bool(self.exclude_seen)
        return not bool((data.describe().get("repeat_consumption") or {}).get("repeats", False))

    def __post_init__(self) -> None:
        if self.spec:
            self.apply_spec(self.spec)
        if self.all_windows is None:  # the default: every window, unless a random one per epoch is asked for
            self.all_windows = not self.random_crop
        elif self.all_windows and self.random_crop:
            raise ValueError("--all_windows and --random_crop both choose the training windows: pass one of them")

    def apply_spec(self, name_or_path: str) -> None:
        """Fill the options still at their defaults from a spec file or preset (`hf_recsys.data.spec`); an option
        the spec does not know is an error naming it."""
        from ..data.spec import DatasetSpecError, read_spec

        defaults = {f.name: f for f in dataclasses.fields(self) if f.name != "spec"}
        for name, value in read_spec(name_or_path, data_dir=self.data_dir).items():
            if name not in defaults:
                raise DatasetSpecError(
                    f"dataset spec {name_or_path}: unknown option {name!r} (data options: {', '.join(defaults)})"
                )
            default = defaults[name].default
            if getattr(self, name) == (default if default is not dataclasses.MISSING else None):
                setattr(self, name, value)

    def builder_options(self) -> dict[str, Any]:
        """Extra builder config values (only those that are set)."""
        return {"sequences_path": self.sequences_path} if self.sequences_path else {}

    def load(self, seed: int) -> Any:
        """The prepared splits and vocabularies these arguments name: `--data` through `load_interactions`, else the
        MovieLens release through `load_movielens` (both cached by the datasets builder)."""
        if self.data:
            from ..data.interactions import load_interactions

            return load_interactions(
                self.data,
                user_column=self.user_column,
                item_column=self.item_column,
                time_column=self.time_column,
                time_unit=self.time_unit,
                format=self.data_format,
                protocol=self.protocol,
                seed=seed,
                cache_dir=self.cache_dir,
                name=self.data_name,
                filters=self.filter_spec(),
                min_history=self.min_history,
                license=self.dataset_license,
                **self.table_kwargs(),
            )
        self.check_no_tables()
        from ..data import load_movielens

        return load_movielens(
            self.dataset,
            data_dir=self.data_dir,
            protocol=self.protocol,
            cache_dir=self.cache_dir,
            seed=seed,
            **self.builder_options(),
        )

    def filter_spec(self) -> list[dict[str, Any]]:
        """The `--data` filters as `hf_recsys.data.filters.apply_filters` entries, in the order they run: the row
        filters first, then duplicates, then the k-core."""
        spec: list[dict[str, Any]] = []
        if self.min_rating is not None:
            spec.append({"name": "min_rating", "column": self.rating_column, "threshold": self.min_rating})
        if self.keep_events:
            spec.append({"name": "keep_events", "column": self.event_column, "values": list(self.keep_events)})
        if self.drop_consecutive_duplicates:
            spec.append({"name": "drop_consecutive_duplicates"})
        if self.k_core:
            spec.append({"name": "k_core", "user_k": self.k_core, "item_k": self.k_core})
        return spec

    @property
    def dataset_name(self) -> str:
        """The name results and cards give the data: --data_name, the --data file's stem, or the MovieLens release."""
        if not self.data:
            return self.dataset
        return self.data_name or default_dataset_name(self.data)  # the name load_interactions gives the data


@dataclass
class RecTrainingArguments(TrainingArguments):
    """`TrainingArguments` with this task's defaults, plus early stopping and a wall-clock budget."""

    output_dir: str = field(default="runs/rec-transformer", metadata={"help": "The run folder."})
    per_device_train_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Histories per training batch. Default: from the data, at most ~2,048 next-item targets per batch "
            "(32 on ML-1M, 256 on Amazon Toys; hf_recsys/training/recipe.py)."
        },
    )
    per_device_eval_batch_size: int = 256
    learning_rate: float | None = field(
        default=None,
        metadata={
            "help": f"Peak learning rate. Default: from the data's interactions per item ({LEARNING_RATE:g} on dense "
            f"data such as ML-1M, {SPARSE_LEARNING_RATE:g} on sparse logs such as Amazon Toys and LastFM; "
            "hf_recsys/training/recipe.py)."
        },
    )
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
    # A GPU run trains under bf16 autocast (the loss and the scores stay float32, see the model's `_loss`) with
    # TF32 matmuls, with no option to set; a CPU run stays float32 (bf16 matmuls are slower on CPUs without AMX).
    bf16: bool = field(
        default_factory=lambda: torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        metadata={"help": "bf16 autocast. Default: on where a CUDA GPU supports it, off on CPU."},
    )
    tf32: bool | None = field(
        default_factory=lambda: True if torch.cuda.is_available() else None,
        metadata={"help": "TF32 matmuls on Ampere and newer GPUs. Default: on with a GPU."},
    )
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
    budget_eval_interval: int | None = field(
        default=None,
        metadata={
            "help": "With max_train_minutes and budget_decay_fraction > 0: until the learning rate has decayed to "
            "half its peak, validate only every N epochs; every epoch after that, where the best epoch lies "
            "(checkpoints: every epoch). Default: measured, validations take ~5%% of the time while the rate is "
            "high and ~25%% after (TimeBudgetCallback); a full-ranking validation of ML-1M costs ~7 s."
        },
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Allow replacing a different run."})
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "A checkpoint folder to resume from; with no value, the last checkpoint in --output_dir.",
            "nargs": "?",
            "const": "last",
        },
    )
    weight_average_epochs: float | None = field(
        default=None,
        metadata={
            "help": "Validate, select and save an exponential moving average of the weights over about this many "
            "epochs (WeightAverageCallback). Default: off."
        },
    )
    compile_loss: bool = field(
        default=True, metadata={"help": "torch.compile the full cross-entropy chunks (2-3x faster on CPU)."}
    )

    def checkpoint_to_resume(self) -> str | None:
        """The checkpoint folder `--resume_from_checkpoint` names: its value, or with no value (or True) the last
        complete ``checkpoint-*`` folder in `output_dir` (see `last_complete_checkpoint`)."""
        value = self.resume_from_checkpoint
        if value is None or value is False or str(value).lower() == "false":
            return None
        if value is True or str(value).lower() in ("last", "true"):
            last = last_complete_checkpoint(self.output_dir)
            if last is None:
                raise FileNotFoundError(
                    f"--resume_from_checkpoint: no complete checkpoint-* folder in {self.output_dir} to resume from"
                )
            return last
        if not Path(value).is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint: checkpoint folder {value} not found")
        return str(value)
