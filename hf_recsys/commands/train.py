"""`hf-recsys train`: train (or fine-tune) a next-item recommender with the Trainer and write a complete run folder.

    hf-recsys train --dataset ml-1m --output_dir runs/ml-1m --max_train_minutes 30
    hf-recsys train --model_name_or_path runs/ml-1m --dataset ml-100k --output_dir runs/ft
    hf-recsys train --output_dir runs/ml-1m --resume_from_checkpoint        # the last checkpoint there

Every `TrainingArguments` option works (`--num_train_epochs`, `--learning_rate`, `--push_to_hub`, ...) and every
field of `RecTransformerConfig` is a model option with the config's default (`--num_hidden_layers 4`, ...);
`--help` lists them all. Run under `accelerate launch` for several GPUs/processes.
"""

from __future__ import annotations

import json

from transformers import HfArgumentParser

from ..training import DataArguments, ModelArguments, RecTrainingArguments, run_training

PROG = "hf-recsys train"


def parser() -> HfArgumentParser:
    """The options of `hf-recsys train`: the model, the data and the Trainer."""
    return HfArgumentParser((ModelArguments, DataArguments, RecTrainingArguments), prog=PROG)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, train, print the validation and test metrics at 10."""
    model_args, data_args, training_args = parser().parse_args_into_dataclasses(args=argv)
    results = run_training(model_args, data_args, training_args)
    summary = {f"{split}_{k}": v for split in ("validation", "test") for k, v in results["metrics"][split].items()}
    print(json.dumps({k: round(v, 4) for k, v in summary.items() if "@10" in k}, indent=2))
    return 0
