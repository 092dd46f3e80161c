"""Ingestion benchmark (issue 21): a synthetic interaction CSV with string ids, prepared by ``load_interactions``.

Usage::

    .venv/bin/python benchmarks/bench_ingest.py [--rows 1000000,3000000,10000000] [--workdir /tmp]
        [--json benchmarks/results/ingest.json] [--cprofile DIR]

``make bench-ingest`` (once the Makefile has the target: ``$(PY) benchmarks/bench_ingest.py``) runs the default
sizes. Target (issue 21, "Ingestion speed"): the 10M-row CSV is prepared in under 60 s with under 3 GiB peak memory
on this machine, and the time grows linearly with the rows.

For each size N a CSV in the layout of the Amazon Reviews 2023 files (``user_id,parent_asin,rating,timestamp``) is
written into a fresh temporary folder: ~N/20 users (``U0000123``) with lognormal history lengths (at least 1 each,
heavy-tailed), ~N/50 items (ASIN-like ``B0XXXXXXXX``) with Zipf popularity (exponent 0.9), unix-millisecond
timestamps (each user active over a lognormal window within 2015-2023), Amazon-like star ratings (``5.0``), rows in
global time order (an event log as exported; repeats of a (user, item) pair are kept). Then, in a fresh Python
process (so peaks do not mix), ``hf_recsys.data.load_interactions(csv, user_column="user_id",
item_column="parent_asin", time_column="timestamp", cache_dir=<fresh temp dir>)`` prepares it with the defaults
(leave-one-out, ``min_history=3``): read -> chronological sort -> filters -> vocabularies -> splits -> Arrow cache.
A second call in the same process is the cached reload.

Measured per size: the preparation wall time (imports excluded), the cached reload time, the process's peak RSS
(``VmHWM``, imports included: that is what the machine must hold) and its growth above the RSS after the imports,
rows/s and seconds per million rows, and where the preparation time goes: the package's stages are wrapped with
timers in the child process (``read`` = ``read_interactions``, ``sort`` = ``chronological``, ``filters`` =
``apply_filters``, ``ids+tokens`` = the item tokens and per-user runs, ``vocabularies`` = building and saving
``ItemVocab``/``UserVocab``, ``splits`` = the protocol's row indices, ``Arrow write`` = ``_prepare_split``: Python
rows + encoding + writing, ``other`` = the rest: fingerprint, ``datasets`` bookkeeping, loading the written cache).
Linearity: the exponent b of a least-squares fit of time = a * rows^b (1 = linear). ``--cprofile DIR`` also writes
a cProfile of each preparation there (slower; use it to look inside a stage, not for the headline figures).

Prints Markdown tables and appends one JSON row per size to ``--json`` (default
``benchmarks/results/ingest.json``, a JSON list): command, machine, date, git commit, rows, seconds, reload
seconds, peak MiB, and the details. The recorded figures and what they say are in ``benchmarks/ingest.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO_ROOT))  # this checkout's hf_recsys, not another installed copy

from _machine import cpu_name, peak_rss_mib, reset_peak_rss, status_mib  # noqa: E402

DEFAULT_ROWS = (1_000_000, 3_000_000, 10_000_000)
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "ingest.json"
TARGET_ROWS, TARGET_SECONDS, TARGET_PEAK_MIB = 10_000_000, 60.0, 3 * 1024
COLUMNS = ("user_id", "parent_asin", "rating", "timestamp")  # the Amazon Reviews 2023 layout
STAGES = ("read", "sort", "filters", "ids+tokens", "vocabularies", "splits", "Arrow write", "other")
T_START_MS = 1_420_070_400_000  # 2015-01-01
T_END_MS = 1_704_067_200_000  # 2024-01-01
STAR_SHARES = np.array([0.08, 0.05, 0.08, 0.15, 0.64])  # 1.0 .. 5.0, skewed to 5 as in Amazon reviews
ZIPF_EXPONENT = 0.9
_BASE36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# The synthetic log
# ---------------------------------------------------------------------------------------------------------------
def _strings(chars: np.ndarray):
    """A (n, width) uint8 matrix of ASCII characters -> a pyarrow string array of n fixed-width strings."""
    import pyarrow as pa

    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).tobytes()))


def user_ids(n: int):
    """``U0000001`` .. (zero-padded, at least 7 digits)."""
    width = max(7, len(str(n)))
    digits = np.arange(1, n + 1, dtype=np.int64)[:, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = np.concatenate([np.full((n, 1), ord("U"), np.uint8), (digits % 10 + ord("0")).astype(np.uint8)], axis=1)
    return _strings(chars)


def item_ids(n: int, rng: np.random.Generator):
    """n distinct ASIN-like ids ``B0`` + 8 base-36 characters, in random order."""
    values = np.unique(rng.integers(0, 36**8, size=2 * n + 16, dtype=np.int64))
    values = rng.permutation(values)[:n]
    digits = values[:, None] // 36 ** np.arange(7, -1, -1, dtype=np.int64) % 36
    prefix = np.tile(np.frombuffer(b"B0", dtype=np.uint8), (n, 1))
    return _strings(np.concatenate([prefix, _BASE36[digits]], axis=1))


def write_synthetic_log(path: Path, rows: int, seed: int = 0, chunk_rows: int = 1_000_000) -> dict[str, Any]:
    """Write the synthetic CSV of exactly ``rows`` rows (see the module docstring) to ``path``; return a summary.

    The columns are drawn as numpy arrays (~40 bytes a row: 400 MiB at 10M rows), sorted by time, and written in
    ``chunk_rows`` slices with pyarrow's CSV writer (ids gathered from the id tables per slice).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 20, 1), max(rows // 50, 1)
    n_users = min(n_users, rows)
    # history lengths: 1 + a lognormal share of the rest (exactly `rows` in all); items: Zipf ranks
    weights = rng.lognormal(0.0, 1.2, n_users)
    counts = 1 + rng.multinomial(rows - n_users, weights / weights.sum())
    user = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    popularity = 1.0 / np.arange(1, n_items + 1) ** ZIPF_EXPONENT
    cdf = np.cumsum(popularity / popularity.sum())
    item = np.minimum(np.searchsorted(cdf, rng.random(rows)), n_items - 1).astype(np.int32)
    # each user is active over a window (lognormal, median ~60 days) starting anywhere in 2015-2023
    begin = rng.integers(T_START_MS, T_END_MS - 86_400_000, n_users)
    span = np.minimum(rng.lognormal(np.log(60 * 86_400_000.0), 1.5, n_users).astype(np.int64), T_END_MS - begin)
    stamp = np.repeat(begin, counts) + (rng.random(rows) * np.repeat(span, counts)).astype(np.int64)
    stars = rng.choice(5, rows, p=STAR_SHARES / STAR_SHARES.sum()).astype(np.int8)
    order = np.argsort(stamp, kind="stable")  # an event log, exported in time order
    users_text, items_text = user_ids(n_users), item_ids(n_items, rng)
    star_text = pa.array(["1.0", "2.0", "3.0", "4.0", "5.0"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write((",".join(COLUMNS) + "\n").encode())
        for start in range(0, rows, chunk_rows):
            idx = order[start : start + chunk_rows]
            table = pa.table(
                {
                    "user_id": users_text.take(pa.array(user[idx])),
                    "parent_asin": items_text.take(pa.array(item[idx])),
                    "rating": star_text.take(pa.array(stars[idx])),
                    "timestamp": pa.array(stamp[idx]),
                }
            )
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return {
        "rows": rows,
        "users": n_users,
        "items": int(np.unique(item).size),
        "csv_mib": round(path.stat().st_size / 2**20, 1),
        "write_csv_s": round(time.perf_counter() - t0, 1),
    }


# ---------------------------------------------------------------------------------------------------------------
# The measurement (in a fresh process per size)
# ---------------------------------------------------------------------------------------------------------------
def _instrument(mod: Any) -> dict[str, float]:
    """Wrap the stages that ``hf_recsys.data.interactions`` and the shared pipeline it calls
    (``hf_recsys.data.log_pipeline``) run with timers (this process only); return the totals dict they fill. Only
    the names in those modules are replaced, so each stage is counted once."""
    from hf_recsys.data import log_pipeline as pipe

    times: dict[str, float] = defaultdict(float)

    def timed(stage: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[stage] += time.perf_counter() - t0

        return wrapper

    builder = mod.InteractionsBuilder
    mod.read_interactions = timed("read", mod.read_interactions)
    pipe.chronological = timed("sort", pipe.chronological)
    pipe.apply_filters = timed("filters", pipe.apply_filters)
    mod.save_vocabs = timed("vocabularies", mod.save_vocabs)
    pipe._splits.leave_one_out = timed("splits", pipe._splits.leave_one_out)
    pipe.sequences = timed("ids+tokens", pipe.sequences)
    builder._prepare_split = timed("Arrow write", builder._prepare_split)
    for name in ("ItemVocab", "UserVocab"):
        base = getattr(pipe, name)
        attrs = {"__init__": timed("vocabularies", base.__init__), "__module__": base.__module__}
        setattr(pipe, name, type(name, (base,), attrs))  # same NUM_SPECIAL, module and behaviour
    return times


def _child(csv: str, cache_dir: str, cprofile: str | None) -> dict[str, Any]:
    """Prepare ``csv`` into ``cache_dir`` (timed, peak RSS), then reload it from the cache (timed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import logging

    import datasets

    import hf_recsys
    import hf_recsys.data.interactions as mod
    from hf_recsys.data import load_interactions

    logging.basicConfig(level=logging.WARNING)
    datasets.disable_progress_bars()
    stages = _instrument(mod)
    kwargs = {"user_column": "user_id", "item_column": "parent_asin", "time_column": "timestamp"}
    profiler = None
    if cprofile:
        import cProfile

        profiler = cProfile.Profile()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    reset_peak_rss()
    rss_before = status_mib("VmRSS") or peak_rss_mib()
    t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    data = load_interactions(csv, cache_dir=cache_dir, **kwargs)
    prepare_s = time.perf_counter() - t0
    peak = peak_rss_mib()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(cprofile)
    reads = stages.get("read", 0.0)
    t0 = time.perf_counter()
    again = load_interactions(csv, cache_dir=cache_dir, **kwargs)
    reload_s = time.perf_counter() - t0
    if again.cache_dir != data.cache_dir or stages.get("read", 0.0) != reads:
        raise RuntimeError("the second load_interactions call did not reload the cache")
    staged = {k: round(v, 2) for k, v in stages.items()}
    staged["other"] = round(prepare_s - sum(stages.values()), 2)
    return {
        "seconds": round(prepare_s, 2),
        "reload_seconds": round(reload_s, 3),
        "peak_mib": round(peak),
        "rss_before_mib": round(rss_before),
        "peak_growth_mib": round(max(peak - rss_before, 0.0)),
        "stages": {s: staged.get(s, 0.0) for s in STAGES},
        "users": data.users.num_users,
        "items": data.items.num_items,
        "interactions": data.interactions_count,
        "train_only_users": data.info["num_train_only_users"],
        "split_rows": {split: ds.num_rows for split, ds in data.dataset.items()},
        "time_unit": data.info["time_unit"],
        "user_id_type": data.info["user_id_type"],
        "arrow_mib": round(sum(p.stat().st_size for p in Path(data.cache_dir).rglob("*.arrow")) / 2**20, 1),
        "load_average_at_start": round(load, 2),
        "hf_recsys": str(Path(hf_recsys.__file__).resolve().parent),
    }


def _run_child(csv: Path, cache_dir: Path, cprofile: Path | None, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    args = [sys.executable, str(Path(__file__).resolve()), "--child", str(csv), str(cache_dir)]
    proc = subprocess.run([*args, str(cprofile or "")], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"preparing {csv} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------------------
def machine_line() -> str:
    import datasets
    import pyarrow

    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 2**20:.0f} GiB RAM"
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPU cores ({cpu_name()}){mem}; Python {platform.python_version()}, pyarrow "
        f"{pyarrow.__version__}, datasets {datasets.__version__}, numpy {np.__version__}"
    )


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    commit = head.stdout.strip() or "unknown"
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def growth_exponent(rows: list[int], seconds: list[float]) -> float | None:
    """b of the least-squares fit log(seconds) = log(a) + b log(rows); None with fewer than 2 distinct sizes."""
    if len(set(rows)) < 2:
        return None
    x, y = np.log(np.asarray(rows, float)), np.log(np.maximum(np.asarray(seconds, float), 1e-6))
    return float(np.polyfit(x, y, 1)[0])


def print_tables(results: list[dict[str, Any]]) -> list[str]:
    """Print the results and the verdicts; return the verdict lines."""
    print("\n| rows | users | items | CSV (MiB) | prepare (s) | s per 1M rows | rows/s | cached reload (s) "
          "| peak RSS (MiB) | peak RSS growth (MiB) | Arrow cache (MiB) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['users']:,} | {r['items']:,} | {r['csv_mib']:,.0f} | {r['seconds']:.1f} "
            f"| {r['seconds_per_million']:.2f} | {r['rows_per_second']:,} | {r['reload_seconds']:.2f} "
            f"| {r['peak_mib']:,} | {r['peak_growth_mib']:,} | {r['arrow_mib']:,.0f} |"
        )
    print("\nWhere the preparation time goes (s; `other` = fingerprint, `datasets` bookkeeping, loading the cache):\n")
    print("| rows | " + " | ".join(STAGES) + " |")
    print("| ---: |" + " ---: |" * len(STAGES))
    for r in results:
        print(f"| {r['rows']:,} | " + " | ".join(f"{r['stages'][s]:.2f}" for s in STAGES) + " |")
    verdicts = []
    b = growth_exponent([r["rows"] for r in results], [r["seconds"] for r in results])
    if b is not None:
        per_m = [r["seconds_per_million"] for r in results]
        verdicts.append(
            f"Growth: time ~ rows^{b:.2f} (1.00 = linear); seconds per 1M rows {' -> '.join(f'{x:.2f}' for x in per_m)}"
            f": {'linear (no faster than rows^1.1)' if b <= 1.1 else 'NOT linear (superlinear)'}"
        )
    big = [r for r in results if r["rows"] >= TARGET_ROWS]
    if big:
        r = big[-1]
        fast, small = r["seconds"] < TARGET_SECONDS, r["peak_mib"] < TARGET_PEAK_MIB
        verdicts.append(
            f"Target at {r['rows']:,} rows: prepare {r['seconds']:.1f} s (< {TARGET_SECONDS:.0f} s: "
            f"{'met' if fast else 'NOT met'}), peak RSS {r['peak_mib']:,} MiB (< {TARGET_PEAK_MIB:,} MiB: "
            f"{'met' if small else 'NOT met'})"
        )
    else:
        verdicts.append(f"Target (< {TARGET_SECONDS:.0f} s, < 3 GiB at {TARGET_ROWS:,} rows): not measured here")
    print()
    for line in verdicts:
        print(line)
    sys.stdout.flush()
    return verdicts


def append_json(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append to the JSON list at ``path`` (temp file + rename, so a crash leaves the old list)."""
    old = json.loads(path.read_text()) if path.is_file() and path.read_text().strip() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps([*old, *rows], indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(argv[1], argv[2], argv[3] if len(argv) > 3 and argv[3] else None)))
        return []
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rows", default=",".join(map(str, DEFAULT_ROWS)), help="comma-separated sizes (default: 1M,3M,10M)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary files go (default: $TMPDIR)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="JSON list the rows are appended to")
    parser.add_argument("--no-json", action="store_true", help="print only")
    parser.add_argument("--cprofile", type=Path, default=None, help="also write a cProfile of each preparation here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per preparation")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.rows.replace("_", "").split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        parser.error("--rows: expected positive sizes, e.g. 1000000,3000000,10000000")
    command = " ".join(["python", "benchmarks/bench_ingest.py", *argv])
    machine, commit = machine_line(), git_commit()
    print(f"Machine: {machine}; commit {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    results = []
    for rows in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_", dir=args.workdir))
        try:
            print(f"... writing a synthetic {rows:,}-row CSV in {tmp}", file=sys.stderr, flush=True)
            written = write_synthetic_log(tmp / "interactions.csv", rows, seed=args.seed)
            print(f"    {written}", file=sys.stderr, flush=True)
            print("... preparing it with load_interactions in a fresh process", file=sys.stderr, flush=True)
            profile = None
            if args.cprofile:
                args.cprofile.mkdir(parents=True, exist_ok=True)
                profile = args.cprofile / f"ingest_{rows}.prof"
            out = _run_child(tmp / "interactions.csv", tmp / "cache", profile, args.timeout)
            print(f"    {out}", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if out["interactions"] != rows or out["user_id_type"] != "string" or out["time_unit"] != "ms":
            raise RuntimeError(f"unexpected preparation of the synthetic log: {out}")
        row = {
            "command": command,
            "machine": machine,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": commit,
            "rows": rows,
            "seconds": out["seconds"],
            "reload_seconds": out["reload_seconds"],
            "peak_mib": out["peak_mib"],
            "peak_growth_mib": out["peak_growth_mib"],
            "rss_before_mib": out["rss_before_mib"],
            "seconds_per_million": round(out["seconds"] / rows * 1e6, 3),
            "rows_per_second": round(rows / max(out["seconds"], 1e-9)),
            "users": out["users"],
            "items": out["items"],
            **{k: written[k] for k in ("csv_mib", "write_csv_s")},
            **{k: out[k] for k in ("interactions", "train_only_users", "split_rows", "arrow_mib", "stages")},
            "load_average_at_start": out["load_average_at_start"],
        }
        if not math.isfinite(row["load_average_at_start"]):
            row["load_average_at_start"] = None
        results.append(row)
    print_tables(results)
    if not args.no_json:
        append_json(args.json, results)
        print(f"\nAppended {len(results)} row(s) to {args.json}")
    return results


if __name__ == "__main__":
    main()
