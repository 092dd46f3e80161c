"""Where a training step's time goes: the default ML-1M model, one batch, forward + backward + AdamW.

    python benchmarks/bench_step.py                     # default recipe (ModelArguments' sizes, 3,416 items)
    python benchmarks/bench_step.py --num_hidden_layers 2 --steps 20

Prints a markdown table of milliseconds per training step:
* `full`: the whole model with the default loss (full softmax over the catalogue, seen items masked);
* `backbone`: the transformer alone (a dummy loss on its output), i.e. the step without the item softmax;
each with the package's `ByteDropout` and with `torch.nn.Dropout` swapped in, so the dropout's cost shows.

The batch is synthetic: `--batch_size` histories with lengths drawn uniformly from `--min_length` to
`--max_length`, right-padded as the collator pads them (the mask-free causal attention kernel). Timings
are medians over `--steps` steps after 3 warm-up steps (which include the `torch.compile` of the
cross-entropy chunks, as in training).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
# this checkout's package, not whichever one the environment has installed (an editable install of another worktree)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import cpu_name


def _batch(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, args.num_items + 1, (args.batch_size, args.max_length), generator=g)
    lengths = torch.randint(args.min_length, args.max_length + 1, (args.batch_size,), generator=g)
    for row, n in enumerate(lengths.tolist()):
        ids[row, n:] = 0
    targets = torch.randint(1, args.num_items + 1, ids.shape, generator=g)
    labels = torch.where(ids > 0, targets, -100)  # a next item at every real position
    return ids, labels


def time_steps(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, full: bool, steps: int) -> float:
    """Median milliseconds of one forward + backward + AdamW step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        out = model(ids, labels=labels) if full else model.rec_transformer(ids)
        loss = out.loss if full else out.last_hidden_state.square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    from hf_recsys.training import ModelArguments, build_model

    recipe = ModelArguments()  # the model's sizes default to the default recipe's
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_items", type=int, default=3416)
    parser.add_argument("--hidden_size", type=int, default=recipe.hidden_size)
    parser.add_argument("--num_hidden_layers", type=int, default=recipe.num_hidden_layers)
    parser.add_argument("--hidden_dropout_prob", type=float, default=recipe.hidden_dropout_prob)
    parser.add_argument("--label_smoothing", type=float, default=recipe.label_smoothing)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--min_length", type=int, default=120)
    parser.add_argument("--max_length", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no_compile", action="store_true", help="Eager cross-entropy chunks (no torch.compile).")
    args = parser.parse_args(argv)

    from hf_recsys.modeling.layers import ByteDropout
    from hf_recsys.modeling.losses import compile_cross_entropy

    compile_cross_entropy(not args.no_compile)
    ids, labels = _batch(args)
    rows = []
    for dropout in ("ByteDropout", "torch.nn.Dropout"):
        torch.manual_seed(0)
        sizes = replace(
            recipe,
            hidden_size=args.hidden_size,
            num_hidden_layers=args.num_hidden_layers,
            hidden_dropout_prob=args.hidden_dropout_prob,
            label_smoothing=args.label_smoothing,
        )
        # the recipe's model as training builds it (seen items masked in the softmax), no users
        model = build_model(sizes, args.num_items, 0, args.max_length, exclude_seen=True).train()
        if dropout == "torch.nn.Dropout":
            for module in list(model.modules()):
                for name, child in module.named_children():
                    if isinstance(child, ByteDropout):
                        setattr(module, name, torch.nn.Dropout(child.p))
        for part, full in (("full", True), ("backbone", False)):
            ms = time_steps(model, ids, labels, full, args.steps)
            rows.append({"step": part, "dropout": dropout, "ms": ms})

    positions = int((labels != -100).sum())
    print(
        f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; batch {args.batch_size} x "
        f"{args.max_length} ({positions} target positions), hidden {args.hidden_size}, "
        f"{args.num_hidden_layers} blocks, {args.num_items} items, dropout {args.hidden_dropout_prob}, "
        f"label smoothing {args.label_smoothing}"
    )
    print("\n| step | dropout | ms / step |\n|---|---|---:|")
    for row in rows:
        print(f"| {row['step']} | {row['dropout']} | {row['ms']:.1f} |")
    return rows


if __name__ == "__main__":
    main()
