"""Train (or fine-tune) a next-item recommender with the Trainer and write a complete run folder.

    python scripts/train.py --dataset ml-1m --output_dir runs/ml-1m
    python scripts/train.py --model_name_or_path runs/ml-1m --dataset ml-100k --output_dir runs/ft

Every `TrainingArguments` option works (`--num_train_epochs`, `--learning_rate`, `--resume_from_checkpoint`,
...); `--help` lists them all. Run under `accelerate launch` for several GPUs/processes.
"""

from __future__ import annotations

import json
import sys

from transformers import HfArgumentParser

from hf_recsys.training import DataArguments, ModelArguments, RecTrainingArguments, run_training


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataArguments, RecTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    results = run_training(model_args, data_args, training_args)
    summary = {f"{split}_{k}": v for split in ("validation", "test") for k, v in results["metrics"][split].items()}
    print(json.dumps({k: round(v, 4) for k, v in summary.items() if "@10" in k}, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
