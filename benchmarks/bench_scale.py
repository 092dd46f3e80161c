"""Scale benchmark: preparing ML-20M-sized data, and training/evaluation steps on large catalogues.

Usage::

    .venv/bin/python benchmarks/bench_scale.py --prepare [--rows 20000000] [--workdir /tmp]
    .venv/bin/python benchmarks/bench_scale.py --steps [--items 3416 26744 87585] [--no-compile]
    .venv/bin/python benchmarks/bench_scale.py --accumulation 138493
    .venv/bin/python benchmarks/bench_scale.py            # --steps and --prepare (what `make bench-scale` runs)

``--prepare`` writes a synthetic ``ratings.csv`` (+ ``movies.csv``) in the official ML-20M CSV format
(``userId,movieId,rating,timestamp`` header; 138,493 users; 26,744 rated movies with power-law popularity;
heavy-tailed user activity with at least 20 ratings each; rows sorted by user then movie as in the real file)
into a temporary folder, then runs ``load_movielens("ml-20m", data_dir=<that folder>)`` in a fresh Python
process and reports its wall time and peak RSS (``VmHWM``), then the cached reload time. The folder holds the
extracted release (``<dir>/ml-20m/ratings.csv``), which the builder reads directly: only archives are
MD5-checked, so a synthetic file is accepted. Everything is deleted afterwards unless ``--keep``. Several
``--rows`` values show how time and memory grow with the data.

``--steps`` prints time and peak memory of one training step (forward + backward + AdamW) at batch 128 x 200
(every position labelled) for each catalogue size, full softmax (``loss_type="ce"``: the chunked, fused
cross-entropy, ``torch.compile``d as in training unless ``--no-compile``) vs sampled softmax (1,024 shared
negatives drawn by popularity, logQ-corrected), hidden 64, 2 layers; and one evaluation batch (256 histories
of 200 items: last-position scores over the full catalogue, loss, top-20 ids excluding seen items, exactly what
the Trainer runs per evaluation batch). Each configuration runs in its own subprocess so peak memory does not
bleed from one to the next; "peak RSS" is that process's ``ru_maxrss`` (imports, model, optimizer, compiler
included), "step memory" is the rise of ``VmHWM`` over the resident size just before the timed steps (reset
after the warm-up), i.e. what the step itself allocates.

``--accumulation N`` times what the Trainer does with the gathered evaluation outputs of N users when
``--batch_eval_metrics`` is off (no model: only the accumulation of top-k ids, targets and histories).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_name, maxrss_mib, reset_peak_rss, status_mib

REPO_ROOT = Path(__file__).resolve().parents[1]

# The shape of the real ML-20M (README of the release): 20,000,263 ratings, 138,493 users with >= 20 ratings
# each, 26,744 rated movies among 27,278, movie ids up to 131,262, ratings 0.5-5.0 in half stars, 1995-2015.
ML20M_USERS = 138_493
ML20M_RATED_MOVIES = 26_744
ML20M_MAX_MOVIE_ID = 131_262
T_START, T_END = 789_652_009, 1_427_784_002
# Share of each half star 0.5 .. 5.0 in the real ML-20M ratings (rounded; 4.0 and 3.0 are the most common).
STAR_SHARES = np.array([0.011, 0.033, 0.014, 0.072, 0.044, 0.214, 0.105, 0.278, 0.077, 0.152])
STAR_SHARES = STAR_SHARES / STAR_SHARES.sum()
CATALOGUES = (3_416, 26_744, 87_585)  # ML-1M (SASRec), ML-20M rated movies, ML-32M movies


# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------


def _machine_line() -> str:
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Machine: {os.cpu_count()} CPU cores ({cpu_name()}), torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}; load average {load:.1f} at start; "
        f"{time.strftime('%Y-%m-%d')}"
    )


def _run_child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run this script in a fresh interpreter with `args`; return the JSON object it prints last.

    glibc's malloc keeps freed large blocks mapped after it has seen them (its mmap threshold adapts), so the RSS
    of a process that already ran one step no longer shows what the next step allocates. A fixed 128 KiB
    threshold maps every large tensor on allocation and unmaps it on free: RSS then follows live memory.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    env.setdefault("MALLOC_TRIM_THRESHOLD_", "131072")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# --prepare: a synthetic ML-20M in the official CSV format
# ---------------------------------------------------------------------------------------------------------------
def _user_counts(rows: int, users: int, rng: np.random.Generator, cap: int) -> np.ndarray:
    """Ratings per user: >= 20 each, heavy-tailed (lognormal) like MovieLens, summing exactly to `rows`."""
    if rows < 20 * users:
        users = max(rows // 20, 1)
    extra = rng.lognormal(mean=0.0, sigma=1.3, size=users)
    extra = extra / extra.sum() * (rows - 20 * users)
    counts = np.minimum(20 + np.floor(extra).astype(np.int64), cap)
    deficit = rows - int(counts.sum())  # rounding and capping: spread the rest over users below the cap
    while deficit > 0:
        room = np.flatnonzero(counts < cap)
        take = room[rng.permutation(room.size)[:deficit]]
        counts[take] += 1
        deficit -= take.size
    return counts


def write_synthetic_ml20m(folder: Path, rows: int, seed: int = 0, chunk_rows: int = 2_000_000) -> dict[str, Any]:
    """Write `folder/ratings.csv` and `folder/movies.csv` in the official ML-20M format; return a summary.

    Written chunk by chunk (a few thousand users at a time) with numpy + pyarrow's CSV writer, so memory stays
    at one chunk whatever `rows` is. Within a user, movies are drawn from a Zipf-like popularity (exponent 1.0
    over the 26,744 rated movies, shuffled onto sparse ids up to 131,262); repeated (user, movie) pairs are
    redrawn uniformly once, and the few that remain are kept (the real file has none; the builder does not care).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_items = ML20M_RATED_MOVIES
    movie_ids = np.sort(rng.choice(np.arange(1, ML20M_MAX_MOVIE_ID + 1), size=n_items, replace=False))
    by_popularity = rng.permutation(movie_ids)  # rank r (0 = most popular) -> movie id
    weights = 1.0 / np.arange(1, n_items + 1) ** 1.0
    cdf = np.cumsum(weights / weights.sum())
    counts = _user_counts(rows, ML20M_USERS, rng, cap=n_items // 3)
    stars = pa.array([f"{x / 2:.1f}" for x in range(1, 11)])  # "0.5" .. "5.0", as in the real file
    write_options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    duplicates = 0
    start_t = time.perf_counter()
    with open(folder / "ratings.csv", "wb") as f:
        f.write(b"userId,movieId,rating,timestamp\n")
        first = 0
        while first < counts.size:
            last = int(np.searchsorted(np.cumsum(counts[first:]), chunk_rows)) + first + 1
            last = min(max(last, first + 1), counts.size)
            c = counts[first:last]
            n = int(c.sum())
            users = np.repeat(np.arange(first + 1, last + 1, dtype=np.int64), c)
            ranks = np.minimum(np.searchsorted(cdf, rng.random(n)), n_items - 1)
            key = users * n_items + ranks
            order = np.argsort(key, kind="stable")
            dup = np.zeros(n, dtype=bool)
            dup[order[1:]] = key[order[1:]] == key[order[:-1]]
            ranks[dup] = rng.integers(0, n_items, int(dup.sum()))  # one uniform redraw
            key = users * n_items + ranks
            duplicates += n - np.unique(key).size
            items = by_popularity[ranks]
            # each user is active over a random window of the 20 years; ratings spread over it
            begin = rng.integers(T_START, T_END - 86_400, last - first)
            span = np.minimum(rng.lognormal(17.0, 1.5, last - first).astype(np.int64) + 3_600, T_END - begin)
            stamps = np.repeat(begin, c) + (rng.random(n) * np.repeat(span, c)).astype(np.int64)
            order = np.lexsort((items, users))  # the real file is sorted by userId, then movieId
            table = pa.table(
                {
                    "userId": pa.array(users[order]),
                    "movieId": pa.array(items[order]),
                    "rating": stars.take(pa.array(rng.choice(10, n, p=STAR_SHARES))),
                    "timestamp": pa.array(stamps[order]),
                }
            )
            pacsv.write_csv(table, f, write_options)
            first = last
    with open(folder / "movies.csv", "w", encoding="utf-8", newline="\n") as f:
        genres = ["Action", "Comedy", "Drama", "Romance", "Thriller", "Sci-Fi", "Documentary", "Animation"]
        f.write("movieId,title,genres\n")
        for mid in movie_ids.tolist():
            year = 1900 + mid % 115
            f.write(f'{mid},"Movie {mid}, The ({year})",{genres[mid % 8]}|{genres[(mid // 8) % 8]}\n')
    return {
        "rows": int(counts.sum()),
        "users": int(counts.size),
        "items": n_items,
        "duplicate_pairs": int(duplicates),
        "csv_mib": round((folder / "ratings.csv").stat().st_size / 2**20, 1),
        "write_s": round(time.perf_counter() - start_t, 1),
    }


def _child_prepare(data_dir: str, cache_dir: str) -> dict[str, Any]:
    """(In a fresh process.) Prepare ml-20m from `data_dir`; time, peak RSS, sizes; then the cached reload."""
    import logging

    import datasets

    from hf_recsys.data import load_movielens

    logging.basicConfig(level=logging.WARNING)
    datasets.disable_progress_bars()
    rss_before = status_mib("VmRSS") or 0.0
    t0 = time.perf_counter()
    data = load_movielens("ml-20m", data_dir=data_dir, cache_dir=cache_dir)
    prepare_s = time.perf_counter() - t0
    peak = status_mib("VmHWM") or maxrss_mib()
    t0 = time.perf_counter()
    again = load_movielens("ml-20m", data_dir=data_dir, cache_dir=cache_dir)
    reload_s = time.perf_counter() - t0
    assert again.cache_dir == data.cache_dir
    arrow = sum(p.stat().st_size for p in Path(data.cache_dir).rglob("*.arrow"))
    return {
        "prepare_s": round(prepare_s, 1),
        "reload_s": round(reload_s, 2),
        "rss_before_mib": round(rss_before),
        "peak_rss_mib": round(peak),
        "users": data.users.num_users,
        "items": data.items.num_items,
        "interactions": data.interactions_count,
        "rows": {split: ds.num_rows for split, ds in data.dataset.items()},
        "arrow_mib": round(arrow / 2**20, 1),
    }


def bench_prepare(rows_list: list[int], workdir: Path | None, keep: bool) -> list[dict[str, Any]]:
    """Generate and prepare one synthetic ML-20M per size; print a Markdown table; return the results."""
    results = []
    for rows in rows_list:
        tmp = Path(tempfile.mkdtemp(prefix="bench_scale_", dir=workdir))
        try:
            print(
                f"... writing a synthetic ML-20M ratings.csv with {rows:,} rows in {tmp}", file=sys.stderr, flush=True
            )
            written = write_synthetic_ml20m(tmp / "data" / "ml-20m", rows)
            print(f"    {written}", file=sys.stderr, flush=True)
            print("... preparing it with load_movielens('ml-20m') in a fresh process", file=sys.stderr, flush=True)
            out = _run_child(["--child-prepare", str(tmp / "data"), str(tmp / "cache")], timeout=3600)
            results.append({**written, **out})
            print(f"    {out}", file=sys.stderr, flush=True)
        finally:
            if keep:
                print(f"kept {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    print("\n| ratings rows | users | items | CSV (MiB) | prepare (s) | peak RSS (MiB) | RSS after imports (MiB) "
          "| Arrow cache (MiB) | cached reload (s) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['interactions']:,} | {r['users']:,} | {r['items']:,} | {r['csv_mib']:,.0f} | {r['prepare_s']:.1f} "
            f"| {r['peak_rss_mib']:,} | {r['rss_before_mib']:,} | {r['arrow_mib']:,.0f} | {r['reload_s']:.2f} |"
        )
    if len(results) > 1:
        a, b = results[0], results[-1]
        grow = (b["peak_rss_mib"] - b["rss_before_mib"]) / max(a["peak_rss_mib"] - a["rss_before_mib"], 1)
        print(
            f"\n{b['interactions'] / a['interactions']:.1f}x the rows: peak RSS above the imports "
            f"x{grow:.2f}, prepare time x{b['prepare_s'] / a['prepare_s']:.2f}"
        )
    return results


# ---------------------------------------------------------------------------------------------------------------
# --steps: training and evaluation steps on large catalogues
# ---------------------------------------------------------------------------------------------------------------
def _zipf_tokens(rng: np.random.Generator, num_items: int, shape: tuple[int, ...]) -> np.ndarray:
    """Item tokens 1..num_items with a Zipf-like (exponent 1) popularity, as in real interaction data."""
    w = 1.0 / np.arange(1, num_items + 1)
    return np.minimum(np.searchsorted(np.cumsum(w / w.sum()), rng.random(shape)), num_items - 1) + 1


def _child_step(
    num_items: int, loss_type: str, batch: int, length: int, repeats: int, compile_loss: bool
) -> dict[str, Any]:
    """(In a fresh process.) Time and memory of training steps (`loss_type`) or of one eval batch ("eval")."""
    import torch

    from hf_recsys.metrics import make_preprocess_logits_for_metrics
    from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction
    from hf_recsys.modeling.losses import compile_cross_entropy

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    config = RecTransformerConfig(
        num_items=num_items,
        num_users=1,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=1,
        intermediate_size=256,
        max_position_embeddings=length,
        loss_type="ce" if loss_type == "eval" else loss_type,
        num_negatives=1024,
        negative_sampling="popularity",
    )
    model = RecTransformerForNextItemPrediction(config)
    counts = np.bincount(_zipf_tokens(rng, num_items, (1_000_000,)), minlength=num_items + 1).astype(np.float32)
    counts[0] = 0
    model.set_item_popularity(torch.as_tensor(counts))
    logits_gib = batch * length * (num_items + 1) * 4 / 2**30

    if loss_type == "eval":
        model.eval()
        histories = torch.as_tensor(_zipf_tokens(rng, num_items, (batch, length)))
        targets = torch.as_tensor(_zipf_tokens(rng, num_items, (batch,)))
        preprocess = make_preprocess_logits_for_metrics(k=20, exclude_seen=True)

        def step() -> None:
            with torch.no_grad():
                out = model(histories, labels=targets)  # what Trainer.prediction_step runs
                preprocess(out.logits, (targets, histories))

        logits_gib = batch * (num_items + 1) * 4 / 2**30
    else:
        compile_cross_entropy(compile_loss and loss_type == "ce")
        sequences = torch.as_tensor(_zipf_tokens(rng, num_items, (batch, length + 1)))
        input_ids, labels = sequences[:, :-1].contiguous(), sequences[:, 1:].contiguous()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
        model.train()

        def step() -> None:
            loss = model(input_ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    for _ in range(2 if loss_type == "ce" and compile_loss else 1):  # warm-up (compilation, allocator, AdamW state)
        step()
    warmup_s = time.perf_counter() - t0
    rss_before = status_mib("VmRSS") or 0.0
    reset_peak_rss()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    step_peak = (status_mib("VmHWM") or maxrss_mib()) - rss_before
    return {
        "items": num_items,
        "loss": loss_type,
        "step_s": round(float(np.median(times)), 3),
        "step_s_all": [round(t, 3) for t in times],
        "warmup_s": round(warmup_s, 1),
        "peak_rss_mib": round(maxrss_mib()),
        "rss_before_step_mib": round(rss_before),
        "step_peak_mib": round(max(step_peak, 0.0)),
        "full_logits_gib": round(logits_gib, 4),
        "compiled": bool(compile_loss and loss_type == "ce"),
        "threads": torch.get_num_threads(),
    }


def bench_steps(items: list[int], batch: int, length: int, repeats: int, compile_loss: bool) -> list[dict[str, Any]]:
    """One subprocess per (catalogue, loss) and per catalogue for evaluation; print the tables."""
    results = []
    for num_items in items:
        for loss in ("ce", "sampled_softmax", "eval"):
            print(f"... {num_items:,} items, {loss}", file=sys.stderr, flush=True)
            args = ["--child-step", str(num_items), loss, str(batch), str(length), str(repeats)]
            out = _run_child([*args, "1" if compile_loss else "0"], timeout=3600)
            print(f"    {out}", file=sys.stderr, flush=True)
            results.append(out)
    names = {"ce": "full softmax (chunked CE)", "sampled_softmax": "sampled softmax, 1,024 neg., logQ"}
    print(f"\nTraining step, batch {batch} x {length} (all {batch * length:,} positions labelled), "
          "hidden 64, 2 layers, AdamW; median of the timed steps\n")  # fmt: skip
    print("| items | loss | time / step (s) | step memory (MiB) | process peak RSS (MiB) | B x L x V fp32 logits, "
          "never built (GiB) |")  # fmt: skip
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for r in results:
        if r["loss"] == "eval":
            continue
        name = names[r["loss"]] + (" (compiled)" if r["compiled"] else "")
        print(
            f"| {r['items']:,} | {name} | {r['step_s']:.2f} | {r['step_peak_mib']:,} | {r['peak_rss_mib']:,} "
            f"| {r['full_logits_gib']:.1f} |"
        )
    print(f"\nEvaluation batch: 256 histories x {length} items, full-catalogue scores of the last position, "
          "loss, top-20 ids excluding seen items\n")  # fmt: skip
    print("| items | time / batch (s) | step memory (MiB) | process peak RSS (MiB) | B x V fp32 scores (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if r["loss"] == "eval":
            print(
                f"| {r['items']:,} | {r['step_s']:.3f} | {r['step_peak_mib']:,} | {r['peak_rss_mib']:,} "
                f"| {r['full_logits_gib'] * 1024:.1f} |"
            )
    return results


def bench_accumulation(num_users: int, batch: int = 256, max_length: int = 200) -> dict[str, float]:
    """Cost of the Trainer's default evaluation accumulation on a split of `num_users` rows (no model involved).

    Without `--batch_eval_metrics`, `Trainer.evaluation_loop` adds every gathered batch to an `EvalLoopContainer`,
    which pads and re-concatenates everything accumulated so far at each batch (quadratic copying). Our
    `label_names=["labels", "input_ids"]` make that include the (B, L) histories (needed only to exclude seen
    items, which `make_preprocess_logits_for_metrics` already did). Rows are sorted by length like
    `sorted_for_eval`; lengths follow a lognormal like MovieLens (at least 20, at most `max_length`).
    """
    import torch
    from transformers.trainer_pt_utils import EvalLoopContainer

    rng = np.random.default_rng(0)
    lengths = np.sort(np.minimum(20 + rng.lognormal(4.0, 1.2, num_users).astype(np.int64), max_length))
    out = {}
    for keep_histories in (True, False):
        preds, labels = EvalLoopContainer(True, -100), EvalLoopContainer(True, -100)
        t0 = time.perf_counter()
        for start in range(0, num_users, batch):
            rows = min(batch, num_users - start)
            width = int(lengths[start + rows - 1])
            preds.add(torch.zeros(rows, 20, dtype=torch.long))
            targets = torch.ones(rows, dtype=torch.long)
            labels.add((targets, torch.ones(rows, width, dtype=torch.long)) if keep_histories else targets)
        preds.get_arrays()
        labels.get_arrays()
        out["with_histories_s" if keep_histories else "targets_only_s"] = round(time.perf_counter() - t0, 1)
    print(
        f"\nEvaluation accumulation, {num_users:,} rows in batches of {batch}: {out['with_histories_s']:.1f} s "
        f"with the histories (default), {out['targets_only_s']:.1f} s for top-20 ids + targets only "
        "(what --batch_eval_metrics keeps)"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child-prepare"]:
        print(json.dumps(_child_prepare(argv[1], argv[2])))
        return
    if argv[:1] == ["--child-step"]:
        num_items, loss, batch, length, repeats, compile_flag = argv[1:7]
        batch_size = 256 if loss == "eval" else int(batch)
        out = _child_step(int(num_items), loss, batch_size, int(length), int(repeats), compile_flag == "1")
        print(json.dumps(out))
        return

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help="time/memory of preparing a synthetic ML-20M")
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000_000], help="ratings rows (several: growth)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary files go (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic files and the cache")
    parser.add_argument("--steps", action="store_true", help="time/memory of training and evaluation steps")
    parser.add_argument("--items", type=int, nargs="+", default=list(CATALOGUES), help="catalogue sizes")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration (after warm-up)")
    parser.add_argument("--no-compile", action="store_true", help="eager full cross-entropy (training compiles it)")
    parser.add_argument(
        "--accumulation", type=int, metavar="USERS", default=0,
        help="also time the Trainer's evaluation accumulation for this many users (ML-20M: 138493)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not (args.prepare or args.steps or args.accumulation):
        args.prepare = args.steps = True
    print(_machine_line())
    results: dict[str, Any] = {"machine": _machine_line()}
    if args.steps:
        results["steps"] = bench_steps(args.items, args.batch, args.length, args.repeats, not args.no_compile)
    if args.prepare:
        results["prepare"] = bench_prepare(args.rows, args.workdir, args.keep)
    if args.accumulation:
        results["accumulation"] = bench_accumulation(args.accumulation)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
