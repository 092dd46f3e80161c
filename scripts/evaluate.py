"""Evaluate a saved run folder or a Hub model on a MovieLens split (full ranking, seen items excluded).

python scripts/evaluate.py --model runs/demo --dataset ml-1m --split test
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_recsys.training import DataArguments, evaluate_pretrained


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "Run folder or Hub repo id."})
    split: str = field(default="test", metadata={"help": "train | validation | test"})
    batch_size: int = field(default=256, metadata={"help": "Histories per forward pass."})
    seed: int = field(default=42, metadata={"help": "Seed of the data split (seed-windows protocol)."})


def main(argv: list[str] | None = None) -> dict[str, float]:
    args, data_args = HfArgumentParser((EvaluateArguments, DataArguments)).parse_args_into_dataclasses(args=argv)
    metrics = evaluate_pretrained(args.model, data_args, split=args.split, batch_size=args.batch_size, seed=args.seed)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=2))
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
