"""Where one training step of the default recipe goes, part by part (the breakdown in `benchmarks/profile.md`).

    python benchmarks/profile_step.py            # default recipe, batch 32 x 200 (lengths 120-200), 3,416 items
    python benchmarks/profile_step.py --trace    # also print torch.profiler's top operators of one full step

Each part is timed on its own, forward + backward, on the shapes the default recipe's step gives it (medians
over `--steps` repeats after warm-up): the attention sub-layer with its relative bias table, the feed-forward
sub-layer, the layer norms and dropouts, the seen-item table, the fused cross-entropy (compiled, as in
training), AdamW, and the collation of one real-sized batch. The whole step is timed as `bench_step.py` does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
# this checkout's package, not whichever one the environment has installed (an editable install of another worktree)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import cpu_name
from bench_step import _batch


def _median_ms(fn, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _fwd_bwd(module_fn, x: torch.Tensor):
    def run() -> None:
        x.grad = None
        module_fn(x).square().mean().backward()

    return run


def _category(op: str, shapes: str, num_items: int) -> str:
    """Which part of the step a profiled operator belongs to, from its name and input shapes."""
    if str(num_items) in shapes or "CompiledFxGraph" in op or "Torch-Compiled" in op or "Chunked" in op:
        return "softmax + loss (chunked CE: its matmuls and compiled softmax passes)"
    if "Optimizer" in op or "_foreach" in op or "adam" in op.lower():
        return "AdamW"
    if "layer_norm" in op:
        return "layer norms"
    if op in ("aten::random_", "aten::randint", "aten::ge") or (op == "aten::mul" and ", 64]" in shapes):
        return "dropout (random bytes, keep mask, scaling)"
    if "256" in shapes or "gelu" in op:
        return "feed-forward matmuls + GELU"
    if "192" in shapes or op in ("aten::bmm", "aten::_softmax", "aten::_softmax_backward_data"):
        return "attention: qkv projection, scores, softmax, weighted values"
    if "201" in shapes or op in ("aten::index", "aten::_index_put_impl_", "aten::clamp", "aten::masked_fill"):
        return "attention: relative bias table + mask"
    if op in ("aten::where", "aten::isneginf", "aten::all", "aten::any"):
        return "attention: SDPA math path's masked-row checks"
    if "[64, 64]" in shapes or "[64]" in shapes:
        return "attention output projection / biases"
    if "embedding" in op:
        return "embeddings"
    return "other (copies, views, adds, autograd)"


def main(argv: list[str] | None = None) -> list[tuple[str, float]]:
    from hf_recsys.data.collator import NextItemCollator
    from hf_recsys.modeling.layers import _additive
    from hf_recsys.modeling.losses import SeenItems, compile_cross_entropy, full_cross_entropy
    from hf_recsys.training import ModelArguments, build_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_items", type=int, default=3416)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--min_length", type=int, default=120)
    parser.add_argument("--max_length", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--trace", action="store_true", help="Print torch.profiler's operator table of one step.")
    args = parser.parse_args(argv)

    compile_cross_entropy(True)
    torch.manual_seed(0)
    ids, labels = _batch(args)
    model = build_model(ModelArguments(), args.num_items, 0, args.max_length, exclude_seen=True).train()
    config = model.config
    backbone = model.rec_transformer
    block = backbone.layers[0]
    b, length = ids.shape
    selected = labels != -100
    n_layers = config.num_hidden_layers
    rows: list[tuple[str, float]] = []

    x = torch.randn(b, length, config.hidden_size, requires_grad=True)
    index = torch.arange(length)
    distance = index[:, None] - index

    index, additive = distance.clamp(0, config.max_position_embeddings), _additive(distance >= 0, x.dtype)

    def bias_table(h):  # what each layer does with the bias table: look its biases up, add the 0 / -inf mask
        return h + (block.attention.relative_bias[:, index] + additive).sum() * 0

    def attention(h):
        return block.attention(block.attention_norm(h), additive, None, index)

    rows.append(
        (
            "attention sub-layer (LN, qkv, bias table, SDPA, out proj), x blocks",
            n_layers * _median_ms(_fwd_bwd(attention, x), args.steps),
        )
    )
    rows.append(
        (
            "  of which: relative bias table + mask (L x L), x blocks",
            n_layers * _median_ms(_fwd_bwd(bias_table, x), args.steps),
        )
    )
    rows.append(
        (
            "feed-forward sub-layer (LN, 64->256 GELU ->64), x blocks",
            n_layers * _median_ms(_fwd_bwd(lambda h: block.ffn(block.ffn_norm(h)), x), args.steps),
        )
    )
    rows.append(
        (
            "  of which: the two layer norms, x blocks",
            n_layers * _median_ms(_fwd_bwd(lambda h: block.ffn_norm(block.attention_norm(h)), x), args.steps),
        )
    )
    rows.append(
        ("dropout (2 per block + embeddings)", (2 * n_layers + 1) * _median_ms(_fwd_bwd(block.dropout, x), args.steps))
    )
    rows.append(
        (
            "embeddings (items + side features + positions)",
            _median_ms(lambda: backbone.embeddings(ids, (ids != 0).long().cumsum(1) - 1).sum().backward(), args.steps),
        )
    )

    rows.append(
        (
            "input value checks (.min/.max; now in check_inputs, not forward)",
            _median_ms(lambda: backbone.check_inputs(ids), args.steps),
        )
    )

    hidden = torch.randn(int(selected.sum()), config.hidden_size, requires_grad=True)
    weight = model.output_weight().detach().requires_grad_(True)
    targets = labels[selected]
    rows.append(
        (
            "seen-item table (SeenItems.from_histories)",
            _median_ms(lambda: SeenItems.from_histories(ids, selected, config.vocab_size), args.steps),
        )
    )
    seen = SeenItems.from_histories(ids, selected, config.vocab_size)

    def loss():
        hidden.grad = weight.grad = None
        full_cross_entropy(hidden, targets, weight, seen=seen).backward()

    rows.append(
        (
            f"softmax + loss (fused chunked CE, {hidden.shape[0]} x {args.num_items}, seen excluded)",
            _median_ms(loss, args.steps),
        )
    )

    def smoothed_loss():
        hidden.grad = weight.grad = None
        full_cross_entropy(hidden, targets, weight, label_smoothing=0.1, seen=seen).backward()

    rows.append(("the same with label smoothing 0.1", _median_ms(smoothed_loss, args.steps)))

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    rows.append(
        (
            "AdamW step + zero_grad",
            _median_ms(lambda: (optimizer.step(), optimizer.zero_grad(set_to_none=False)), args.steps),
        )
    )
    optimizer.zero_grad()

    collator = NextItemCollator(args.max_length, True, False, False)
    real = [
        {"input_ids": row[row != 0].tolist()[:-1], "target": int(row[row != 0][-1]), "user_index": 1} for row in ids
    ]
    rows.append(("data collation (one batch)", _median_ms(lambda: collator(real), args.steps)))

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        model(ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    total = _median_ms(step, args.steps)
    print(
        f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; batch {b} x {length} "
        f"({int(selected.sum())} target positions), hidden {config.hidden_size}, {n_layers} blocks, {args.num_items} items"
    )
    print("\n| part (forward + backward) | ms / step |\n|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")
    print(f"| **whole step (model forward + backward + AdamW)** | **{total:.1f}** |")
    if args.trace:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(5):
                step()
        totals: dict[str, float] = {}
        for event in prof.key_averages(group_by_input_shape=True):
            part = _category(event.key, str(event.input_shapes), args.num_items)
            totals[part] = totals.get(part, 0.0) + event.self_cpu_time_total / 1000 / 5
        print("\n| operators of one whole step (profiler self time) | ms / step |\n|---|---:|")
        for part, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"| {part} | {ms:.1f} |")
        print(f"| total | {sum(totals.values()):.1f} |")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    return [*rows, ("whole step", total)]


if __name__ == "__main__":
    main()
