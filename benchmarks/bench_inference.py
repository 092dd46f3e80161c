"""Inference benchmark of `hf_recsys.Recommender` on CPU: latency, throughput, memory and load time.

    python benchmarks/bench_inference.py                    # an untrained ML-1M-sized model (3416 movies, 6040 users)
    python benchmarks/bench_inference.py --model runs/demo  # a real run folder

Prints a markdown table:
* single-request latency (p50/p99) for a 200-movie history given as movie ids, and as titles;
* batched throughput (requests/s) for `recommend_batch` at batch size 256 with 200-movie histories;
* peak memory (RSS) of a fresh process that loads the model and serves one request, and the model's own size;
* load time of `Recommender.from_pretrained(folder)` (weights + vocabularies + precomputed indexes).

Scores of an untrained model are meaningless, but the cost of a forward pass does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

ML1M_GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def build_ml1m_sized_run(folder: Path, args: argparse.Namespace) -> Path:
    """Write an untrained run folder with ML-1M's sizes (and a plausible synthetic vocabulary) to `folder`."""
    from hf_recsys.data.vocab import ItemVocab, UserVocab, save_vocabs
    from hf_recsys.inference import save_pipeline_files
    from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction

    rng = np.random.default_rng(0)
    movie_ids = np.sort(rng.choice(np.arange(1, 3953), size=args.num_items, replace=False)).tolist()
    years = rng.integers(1919, 2001, size=args.num_items).tolist()
    titles = [f"Movie {m} Part {m % 7} ({y})" for m, y in zip(movie_ids, years)]
    genres = [sorted(rng.choice(ML1M_GENRES, size=rng.integers(1, 4), replace=False).tolist()) for _ in movie_ids]
    items = ItemVocab(movie_ids, titles=titles, years=years, genres=genres, genre_names=ML1M_GENRES)
    n_users = args.num_users
    users = UserVocab(
        list(range(1, n_users + 1)),
        gender=rng.choice(["F", "M"], n_users).tolist(),
        age=rng.choice(["1", "18", "25", "35", "45", "50", "56"], n_users).tolist(),
        occupation=[str(o) for o in rng.integers(0, 21, n_users)],
    )
    config = RecTransformerConfig(
        num_items=items.num_items,
        num_users=users.num_users,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_layers,
        max_position_embeddings=args.max_length,
        user_conditioning="add",
    )
    model = RecTransformerForNextItemPrediction(config).eval()
    counts = torch.zeros(items.num_items + 1)
    counts[1:] = torch.from_numpy(rng.zipf(1.5, items.num_items).clip(max=5000).astype(np.float32))
    model.set_item_popularity(counts)
    model.save_pretrained(folder)
    save_vocabs(folder, items, users)
    save_pipeline_files(folder)
    return folder


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _rss_mb(field: str) -> float:
    """Current (`VmRSS`) or peak (`VmHWM`) resident memory of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_probe(folder: str, batch_size: int) -> None:
    """Run in a fresh process: RSS after imports, after loading, and the peak after serving requests."""
    from hf_recsys import Recommender

    after_imports = _rss_mb("VmRSS")
    rec = Recommender.from_pretrained(folder)
    after_load = _rss_mb("VmRSS")
    history = rec.item_vocab.item_ids[:200].tolist()
    rec.recommend(user_id=int(rec.user_vocab.user_ids[0]), history=history, k=10)
    rec.recommend_batch([{"user_id": None, "history": history}] * batch_size, batch_size=batch_size)
    tensors = {id(t): t for t in [*rec.model.parameters(), *rec.model.buffers()]}.values()
    model_mb = sum(t.numel() * t.element_size() for t in tensors) / 2**20
    result = {
        "rss_after_imports_mb": after_imports,
        "rss_after_load_mb": after_load,
        "peak_rss_mb": _rss_mb("VmHWM"),
        "model_mb": model_mb,
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder to benchmark (default: build an untrained ML-1M-sized model)")
    parser.add_argument("--num_items", type=int, default=3416)
    parser.add_argument("--num_users", type=int, default=6040)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--max_length", type=int, default=200)
    parser.add_argument("--history_length", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000, help="timed single requests")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=8, help="timed batches")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--_memory_probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._memory_probe:
        memory_probe(args._memory_probe, args.batch_size)
        return

    from transformers.utils import logging as hf_logging

    from hf_recsys import Recommender

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model) if args.model else build_ml1m_sized_run(Path(tmp) / "ml1m-sized", args)

        load_times = []
        for _ in range(5):
            start = time.perf_counter()
            rec = Recommender.from_pretrained(folder)
            load_times.append(time.perf_counter() - start)

        rng = np.random.default_rng(1)
        catalogue = rec.item_vocab.item_ids
        user_ids = rec.user_vocab.user_ids
        n = args.history_length

        def request() -> dict:
            return {
                "user_id": int(rng.choice(user_ids)) if user_ids.size else None,
                "history": rng.choice(catalogue, size=n, replace=n > catalogue.size).tolist(),
            }

        def latencies(requests: list[dict]) -> tuple[list[float], list[float]]:
            """Wall-clock and CPU (process) time of each request in ms. On a shared machine the wall clock
            includes waiting for a core; the CPU time of a 1-thread run is what the request costs uncontended."""
            for r in requests[:50]:  # warm-up
                rec.recommend(**r, k=args.k)
            wall, cpu = [], []
            for r in requests:
                start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
                rec.recommend(**r, k=args.k)
                cpu.append((time.process_time_ns() - start_cpu) / 1e6)
                wall.append((time.perf_counter_ns() - start) / 1e6)
            return wall, cpu

        id_requests = [request() for _ in range(args.requests)]
        title_requests = [
            {"user_id": r["user_id"], "history": [rec.title(m) for m in r["history"]]}
            for r in id_requests[: args.requests // 2]
        ]
        has_titles = rec.title(int(catalogue[0])) is not None
        default_threads = torch.get_num_threads()
        single: dict[int, dict[str, list[float]]] = {}
        for threads in dict.fromkeys([default_threads, 1]):  # small requests often run best on one thread
            torch.set_num_threads(threads)
            single[threads] = {
                "ids": latencies(id_requests),
                "titles": latencies(title_requests) if has_titles else ([], []),
                "cold": latencies([{"user_id": None, "history": []}] * 200),
            }
        torch.set_num_threads(default_threads)

        batch = [request() for _ in range(args.batch_size)]
        rec.recommend_batch(batch, batch_size=args.batch_size, k=args.k)  # warm-up
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(args.batches):
            rec.recommend_batch(batch, batch_size=args.batch_size, k=args.k)
        batch_seconds = (time.perf_counter() - start) / args.batches
        batch_cpu_seconds = (time.process_time() - start_cpu) / args.batches

        probe = subprocess.run(
            [sys.executable, __file__, "--_memory_probe", str(folder), "--batch_size", str(args.batch_size)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        memory = json.loads(probe.stdout.strip().splitlines()[-1])

    config = rec.config
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# Inference benchmark ({datetime.now(UTC).date().isoformat()})")
    print()
    print(f"- command: `python {' '.join(sys.argv)}`")
    print(
        f"- machine: {os.cpu_count()} CPU cores ({cpu}); torch {torch.__version__}; load average at the end "
        f"{load} (1/5/15 min: other jobs share these cores)"
    )
    print(
        f"- model: {args.model or 'untrained, ML-1M-sized'}: {config.num_items} movies, {config.num_users} users, "
        f"hidden {config.hidden_size}, {config.num_hidden_layers} layers, max length {config.max_position_embeddings}, "
        f"user_conditioning={config.user_conditioning!r}; k={args.k}"
    )
    print()
    print("| single request | threads | p50 | p99 | min | p50 CPU time |")
    print("|---|---|---|---|---|---|")
    for threads, measured in single.items():
        rows = [(f"{n}-movie history, movie ids", measured["ids"])]
        if measured["titles"][0]:
            rows.append((f"{n}-movie history, exact titles", measured["titles"]))
        rows.append(("cold start (no user, no history)", measured["cold"]))
        for what, (wall, cpu_ms) in rows:
            print(
                f"| {what} | {threads} | {percentile(wall, 50):.2f} ms | {percentile(wall, 99):.2f} ms | "
                f"{min(wall):.2f} ms | {percentile(cpu_ms, 50):.2f} ms |"
            )
    print()
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| batched throughput, batch {args.batch_size}, {n}-movie histories, {default_threads} threads | "
        f"{args.batch_size / batch_seconds:,.0f} requests/s ({batch_seconds * 1000:.0f} ms per batch, "
        f"{batch_cpu_seconds * 1000:.0f} ms CPU time) |"
    )
    print(
        f"| memory of a loaded model (fresh process, RSS) | {memory['rss_after_load_mb'] - memory['rss_after_imports_mb']:.0f} MB "
        f"above the imports ({memory['rss_after_imports_mb']:.0f} MB: python+torch+transformers); weights and buffers "
        f"{memory['model_mb']:.1f} MB |"
    )
    print(
        f"| peak memory, fresh process: load + 1 request + 1 batch of {args.batch_size} | "
        f"{memory['peak_rss_mb']:.0f} MB RSS |"
    )
    print(
        f"| load time from a folder (`Recommender.from_pretrained`) | median {statistics.median(load_times) * 1000:.0f} ms "
        f"(first {load_times[0] * 1000:.0f} ms) |"
    )


if __name__ == "__main__":
    main()
