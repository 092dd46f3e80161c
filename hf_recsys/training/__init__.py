"""Training through `transformers.Trainer`: arguments (generated from the config), callbacks, the next-item
Trainer, and the whole job behind `hf-recsys train` (`run_training`) and `hf-recsys evaluate`
(`evaluate_pretrained`)."""

from ..metrics import make_compute_metrics
from .arguments import (
    DATA_DERIVED_FIELDS,
    DERIVED_MODEL_OPTIONS,
    DataArguments,
    ModelArguments,
    RecTrainingArguments,
    model_option_names,
)
from .callbacks import EpochReportCallback, SpeedCallback, TimeBudgetCallback, WeightAverageCallback
from .run import (
    PUBLISHED_ML1M,
    _git_commit,  # noqa: F401 - used by the benchmark
    check_output_dir,
    evaluate_pretrained,
    peak_memory_mb,
    run_training,
    write_results,
)
from .trainer import (
    NextItemTrainer,
    all_windows,
    build_model,
    epoch_history,
    evaluate_split,
    make_trainer,
    sorted_for_eval,
    with_lengths,
)

__all__ = [
    "DATA_DERIVED_FIELDS",
    "DERIVED_MODEL_OPTIONS",
    "PUBLISHED_ML1M",
    "DataArguments",
    "EpochReportCallback",
    "ModelArguments",
    "NextItemTrainer",
    "RecTrainingArguments",
    "SpeedCallback",
    "TimeBudgetCallback",
    "WeightAverageCallback",
    "all_windows",
    "build_model",
    "check_output_dir",
    "epoch_history",
    "evaluate_pretrained",
    "evaluate_split",
    "make_compute_metrics",
    "make_trainer",
    "model_option_names",
    "peak_memory_mb",
    "run_training",
    "sorted_for_eval",
    "with_lengths",
    "write_results",
]
