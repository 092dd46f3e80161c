"""Data pipeline benchmark: prepare MovieLens from scratch, reload it from the cache, peak memory.

Usage::

    .venv/bin/python benchmarks/bench_data.py [--data-dir ../shared/data] [--synthetic-rows 5000000]

Prints a Markdown table. The headline row is ML-1M in the SASRec format (the offline fallback the
demo uses): goals < 20 s from scratch and < 2 s cached on a 2-core machine. Each case prepares into
a fresh temporary cache; "reload" is the best of 3 ``load_movielens`` calls that hit that cache.
Memory: the process's peak RSS growth during the preparation (``VmHWM`` reset before; includes
Arrow buffers) and, in a second preparation under ``tracemalloc``, the peak of Python + numpy
allocations. ``--synthetic-rows`` adds an ML-20M-style ``ratings.csv`` of that many rows to measure
the chunked parser on a large file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from _machine import cpu_name, peak_rss_mib, reset_peak_rss, status_mib  # noqa: E402

from hf_recsys.data import load_movielens  # noqa: E402


def write_synthetic_csv(folder: Path, rows: int, seed: int = 0) -> Path:
    """An ML-20M-like ratings.csv (header, CRLF, float ratings) written in chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 150, 10), max(rows // 750, 10)
    with open(folder / "ratings.csv", "w", newline="") as f:
        f.write("userId,movieId,rating,timestamp\r\n")
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            u = rng.integers(1, n_users + 1, n)
            i = rng.integers(1, n_items + 1, n)
            r = rng.integers(1, 11, n) / 2
            t = rng.integers(789_652_009, 1_427_784_002, n)
            f.write("".join(f"{a},{b},{c:.1f},{d}\r\n" for a, b, c, d in zip(u, i, r, t)))
    return folder


def run_case(label: str, name: str, data_dir: Path, protocol: str, work: Path) -> dict[str, object]:
    cache = work / f"cache-{label}"
    reset_peak_rss()
    rss0 = status_mib("VmRSS") or peak_rss_mib()
    t0 = time.perf_counter()
    data = load_movielens(name, data_dir=data_dir, protocol=protocol, cache_dir=cache)
    prepare_s = time.perf_counter() - t0
    rss_growth = max(peak_rss_mib() - rss0, 0.0)
    reload_s = []
    for _ in range(3):
        t0 = time.perf_counter()
        again = load_movielens(name, data_dir=data_dir, protocol=protocol, cache_dir=cache)
        reload_s.append(time.perf_counter() - t0)
        assert again.cache_dir == data.cache_dir
    # memory of Python/numpy allocations, measured in a separate preparation (tracemalloc slows it down)
    tracemalloc.start()
    load_movielens(name, data_dir=data_dir, protocol=protocol, cache_dir=work / f"cache-{label}-mem")
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    shutil.rmtree(work / f"cache-{label}-mem", ignore_errors=True)
    rows = {split: ds.num_rows for split, ds in data.dataset.items()}
    return {
        "case": label,
        "users": data.users.num_users,
        "items": data.items.num_items,
        "interactions": data.interactions_count,
        "rows": rows,
        "prepare_s": round(prepare_s, 2),
        "reload_s": round(min(reload_s), 3),
        "rss_growth_mib": round(rss_growth, 1),
        "traced_peak_mib": round(traced_peak / 2**20, 1),
        "source": data.info["source"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = os.environ.get("HF_RECSYS_DATA_DIR", str(REPO_ROOT.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--synthetic-rows", type=int, default=0, help="also time an ML-20M-like CSV of N rows")
    parser.add_argument("--skip-extra", action="store_true", help="only the ML-1M SASRec leave-one-out case")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    datasets.disable_progress_bars()

    cases = [("ML-1M SASRec file, leave-one-out", "ml-1m", args.data_dir, "leave-one-out")]
    if not args.skip_extra:
        cases += [
            ("ML-1M SASRec file, seed-windows", "ml-1m", args.data_dir, "seed-windows"),
            ("ML-100K, leave-one-out", "ml-100k", args.data_dir, "leave-one-out"),
            ("ml-latest-small, temporal", "ml-latest-small", args.data_dir, "temporal"),
        ]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        work = Path(tmp)
        if args.synthetic_rows:
            synth = write_synthetic_csv(work / "synthetic" / "ml-20m", args.synthetic_rows)
            cases.append((f"synthetic ml-20m CSV, {args.synthetic_rows:,} rows, LOO", "ml-20m", synth, "leave-one-out"))
        for label, name, data_dir, protocol in cases:
            print(f"... {label}", file=sys.stderr, flush=True)
            results.append(run_case(label, name, data_dir, protocol, work))

    print(f"\nMachine: {os.cpu_count()} CPU cores, {cpu_name()}; Python {platform.python_version()}, "
          f"datasets {datasets.__version__}, numpy {np.__version__}; {time.strftime('%Y-%m-%d')}\n")  # fmt: skip
    print("| case | users | items | interactions | rows train/val/test | prepare (s) | cached reload (s) "
          "| peak RSS growth (MiB) | peak Python+numpy (MiB) |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in results:
        rows = r["rows"]
        assert isinstance(rows, dict)
        print(
            f"| {r['case']} | {r['users']:,} | {r['items']:,} | {r['interactions']:,} | "
            f"{rows['train']:,} / {rows['validation']:,} / {rows['test']:,} | {r['prepare_s']:.2f} | "
            f"{r['reload_s']:.3f} | {r['rss_growth_mib']:.0f} | {r['traced_peak_mib']:.0f} |"
        )
    head = results[0]
    ok = float(head["prepare_s"]) < 20 and float(head["reload_s"]) < 2  # type: ignore[arg-type]
    print(f"\nGoal (ML-1M SASRec: < 20 s from scratch, < 2 s cached): {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
