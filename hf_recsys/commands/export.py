"""`hf-recsys export`: batch recommendations of every user (or a list) to Parquet, and/or the item embeddings.

    hf-recsys export --model runs/demo --dataset ml-1m --k 100 --output recs.parquet
    hf-recsys export --model runs/demo --dataset ml-1m --users users.txt --output recs.parquet --overwrite
    hf-recsys export --model runs/demo --embeddings items.parquet      # or items.safetensors; no data needed

The data options are those of `hf-recsys evaluate` (the same data the model was trained on, or newer data of
the same kind); each user is scored after their longest known history (docs/export.md), seen items excluded
unless `--exclude_seen false`. Users of `--users` with no history in the data are an error naming them, or are
skipped and counted with `--on_unknown skip`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..training import DataArguments

PROG = "hf-recsys export"


@dataclass
class ExportArguments:
    """Which model, which users, where to write."""

    model: str = field(metadata={"help": "Run folder or Hub repo id."})
    output: str | None = field(default=None, metadata={"help": "The recommendations file (.parquet)."})
    users: str = field(
        default="all",
        metadata={"help": "all, a file with one user id per line, or comma-separated ids (e.g. 1,5,42)."},
    )
    k: int = field(default=100, metadata={"help": "Recommendations per user."})
    batch_size: int = field(default=256, metadata={"help": "Histories per forward pass."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})
    on_unknown: str = field(
        default="error",
        metadata={
            "help": "Listed users with no history in the data: fail, or skip them.",
            "choices": ["error", "skip"],
        },
    )
    embeddings: str | None = field(
        default=None, metadata={"help": "Also (or only) write the item embeddings: a .parquet or .safetensors file."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of the data split (seed-windows protocol)."})
    revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


def parser() -> HfArgumentParser:
    """The options of `hf-recsys export`: model, users and files, and the data options of training."""
    return HfArgumentParser((ExportArguments, DataArguments), prog=PROG)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, export, print a JSON summary."""
    args, data_args = parser().parse_args_into_dataclasses(args=argv)
    if args.output is None and args.embeddings is None:
        raise ValueError("nothing to export: give --output recs.parquet and/or --embeddings items.parquet")
    from ..export import export_recommendations, item_embeddings, save_item_embeddings
    from ..export.recommendations import check_output

    report: dict = {}
    if args.embeddings:
        check_output(args.embeddings, args.overwrite)
    if args.output:
        summary = export_recommendations(
            args.model,
            data_args,
            args.output,
            users=args.users,
            k=args.k,
            exclude_seen=data_args.exclude_seen,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            seed=args.seed,
            on_unknown=args.on_unknown,
            progress=args.progress,
            revision=args.revision,
        )
        report = summary.to_dict()
        unknown = report.pop("unknown_users")
        report["skipped_users"] = len(unknown)
        if unknown:
            report["skipped_user_ids"] = unknown[:20]
        report["seconds"] = round(report["seconds"], 2)
    if args.embeddings:
        ids, matrix = item_embeddings(args.model, revision=args.revision)
        path = save_item_embeddings(args.embeddings, ids, matrix, overwrite=args.overwrite)
        report["embeddings"] = {"output": str(path), "items": int(matrix.shape[0]), "dim": int(matrix.shape[1])}
    print(json.dumps(report, indent=2, default=str))
    return 0
