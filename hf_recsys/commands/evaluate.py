"""`hf-recsys evaluate`: full-ranking metrics of a saved run folder or Hub model on one split (seen items excluded).

hf-recsys evaluate --model runs/demo --dataset ml-1m --split test
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..training import DataArguments, evaluate_pretrained

PROG = "hf-recsys evaluate"


@dataclass
class EvaluateArguments:
    """Which model, which split."""

    model: str = field(metadata={"help": "Run folder or Hub repo id."})
    split: str = field(default="test", metadata={"help": "train | validation | test"})
    batch_size: int = field(default=256, metadata={"help": "Histories per forward pass."})
    seed: int = field(default=42, metadata={"help": "Seed of the data split (seed-windows protocol)."})


def parser() -> HfArgumentParser:
    """The options of `hf-recsys evaluate`: the model and split, and the data options of training."""
    return HfArgumentParser((EvaluateArguments, DataArguments), prog=PROG)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, evaluate, print the metrics as JSON."""
    args, data_args = parser().parse_args_into_dataclasses(args=argv)
    metrics = evaluate_pretrained(args.model, data_args, split=args.split, batch_size=args.batch_size, seed=args.seed)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=2))
    return 0
