"""Export benchmark (`make bench-export`): batch top-k to Parquet, item similarity scans, ONNX vs PyTorch latency.

    python benchmarks/bench_export.py                          # every section; ML-1M run: /tmp/run-ml1m if present
    python benchmarks/bench_export.py --model runs/demo --sections ml1m,onnx

Sections (markdown tables on stdout):
* ``ml1m``: ``export_recommendations`` of every ML-1M user, top 100, with a run folder (``--model``; without one
  an untrained default-recipe model in ML-1M's tokens: the cost does not depend on the weights). Data loading
  (from the datasets cache) is timed apart from the export.
* ``synthetic``: ``write_recommendations`` over generated histories (100k/300k/1M users by default, a tiny
  model), each size in a fresh process: seconds, users/s and peak RSS, to show time linear in the number of
  users and memory independent of it. Histories are generated chunk by chunk and never all held.
* ``similarity``: top-10 cosine neighbours of one item, exact numpy scan (normalised matrix, ``argpartition``),
  torch (``mv`` + ``topk``) and faiss (exact ``IndexFlatIP`` and ``IndexHNSWFlat``, when faiss-cpu is
  installed), 1 thread, at 3.4k (ML-1M's catalogue) and 87k items (a random catalogue).
* ``onnx``: single-request latency of the exported ONNX scorer in onnxruntime vs ``model.recommend`` in
  PyTorch, 1 thread, a 200-item history, on the ML-1M-sized model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# The similarity rows are single-threaded: numpy's BLAS reads this before numpy is imported (torch has its own
# threads, set per section).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this checkout's hf_recsys, in probes too
from _machine import cpu_name, peak_rss_mib, reset_peak_rss, status_mib

SECTIONS = ("ml1m", "synthetic", "similarity", "onnx")


def percentiles(times: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of times in seconds."""
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# -- ML-1M ----------------------------------------------------------------------------------------------------
def ml1m_model(args: argparse.Namespace, data, folder: Path) -> str:
    """The run folder to benchmark: ``--model``, /tmp/run-ml1m, or an untrained default-recipe model."""
    if args.model:
        return args.model
    if Path("/tmp/run-ml1m").is_dir():
        return "/tmp/run-ml1m"
    from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction
    from hf_recsys.modeling.vocab import save_vocabs

    config = RecTransformerConfig(num_items=data.items.num_items, num_users=data.users.num_users)
    RecTransformerForNextItemPrediction(config).eval().save_pretrained(folder)
    save_vocabs(folder, data.items, data.users)
    return str(folder)


def bench_ml1m(args: argparse.Namespace, tmp: Path) -> str:
    from hf_recsys.export import export_recommendations
    from hf_recsys.training import DataArguments

    start = time.perf_counter()
    data = DataArguments(dataset="ml-1m").load(42)
    load_s = time.perf_counter() - start
    model = ml1m_model(args, data, tmp / "ml1m-untrained")
    rows = []
    for batch_size in args.batch_sizes:
        out = tmp / f"ml1m-{batch_size}.parquet"
        start, cpu = time.perf_counter(), time.process_time()
        summary = export_recommendations(model, data, out, k=100, batch_size=batch_size, progress=False)
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows.append(
            [
                batch_size,
                summary.num_users,
                f"{summary.num_rows:,}",
                f"{summary.seconds:.2f}",
                f"{total:.2f}",
                f"{cpu:.2f}",
                f"{summary.num_users / summary.seconds:,.0f}",
                f"{out.stat().st_size / 2**20:.1f}",
            ]
        )
        out.unlink()
    header = ["batch", "users", "rows", "export s", "incl. model load s", "CPU s (all threads)", "users/s", "file MiB"]
    load = os.getloadavg()[0]
    about = f"ML-1M top-100 export, model {model} (data load from cache {load_s:.1f} s; load average {load:.1f})"
    return about + "\n\n" + table(header, rows)


# -- synthetic users -------------------------------------------------------------------------------------------
def synthetic_batches(
    num_users: int, num_items: int, batch_size: int, min_len: int, max_len: int, chunk: int = 65_536, seed: int = 0
) -> Iterator:
    """Random histories, generated ``chunk`` users at a time and sorted by length within each chunk."""
    from hf_recsys.export import HistoryBatch

    rng = np.random.default_rng(seed)
    for first in range(0, num_users, chunk):
        n = min(chunk, num_users - first)
        lengths = rng.integers(min_len, max_len + 1, n)
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        user_ids = first + 1 + order.astype(np.int64)
        for start in range(0, n, batch_size):
            part = lengths[start : start + batch_size]
            offsets = np.zeros(part.size + 1, np.int64)
            np.cumsum(part, out=offsets[1:])
            yield HistoryBatch(
                user_ids=user_ids[start : start + batch_size],
                user_index=np.zeros(part.size, np.int64),
                tokens=rng.integers(1, num_items + 1, offsets[-1]),
                offsets=offsets,
            )


def synthetic_probe(args: argparse.Namespace) -> None:
    """In a fresh process: export ``args.probe_users`` synthetic users; print a JSON line."""
    from hf_recsys.export import write_recommendations
    from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction

    torch.manual_seed(0)
    config = RecTransformerConfig(
        num_items=args.synthetic_items, num_users=0, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=args.synthetic_max_len,
    )  # fmt: skip
    model = RecTransformerForNextItemPrediction(config).eval()
    item_ids = np.arange(1, args.synthetic_items + 1, dtype=np.int64) * 7
    baseline = status_mib("VmRSS")
    reset_peak_rss()
    out = Path(args.probe_output)
    batches = synthetic_batches(args.probe_users, args.synthetic_items, 512, 5, args.synthetic_max_len)
    summary = write_recommendations(model, batches, out, item_ids, k=args.synthetic_k, overwrite=True, progress=False)
    result = {
        "users": summary.num_users,
        "rows": summary.num_rows,
        "seconds": summary.seconds,
        "rss_before_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
        "file_mib": out.stat().st_size / 2**20,
    }
    out.unlink()
    print(json.dumps(result))


def bench_synthetic(args: argparse.Namespace, tmp: Path) -> str:
    rows = []
    for users in args.synthetic_users:
        command = [sys.executable, __file__, "--_probe_users", str(users), "--_probe_output", str(tmp / "syn.parquet")]
        command += [f"--synthetic_{name}={getattr(args, 'synthetic_' + name)}" for name in ("items", "k", "max_len")]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        rows.append(
            [
                f"{r['users']:,}",
                f"{r['rows']:,}",
                f"{r['seconds']:.1f}",
                f"{r['users'] / r['seconds']:,.0f}",
                f"{r['seconds'] / r['users'] * 1e6:.1f}",
                f"{r['rss_before_mib']:.0f}",
                f"{r['peak_rss_mib']:.0f}",
                f"{r['file_mib']:.0f}",
            ]
        )
    header = ["users", "rows", "seconds", "users/s", "µs/user", "RSS before MiB", "peak RSS MiB", "file MiB"]
    about = (
        f"Synthetic users (tiny model: hidden 32, 1 layer; {args.synthetic_items:,} items; histories of 5-"
        f"{args.synthetic_max_len} items; top {args.synthetic_k}; batch 512; a fresh process per row)"
    )
    return about + "\n\n" + table(header, rows)


# -- similarity ------------------------------------------------------------------------------------------------
def similarity_methods(normalized: np.ndarray, faiss) -> dict[str, tuple]:
    """label -> (top-10 neighbours of row q, index build seconds) for each method on one catalogue."""
    from hf_recsys.export import top_similar

    weights = torch.from_numpy(normalized)

    def numpy_scan(q: int) -> np.ndarray:
        return top_similar(normalized, normalized[q], 10, exclude=q)

    def torch_scan(q: int) -> np.ndarray:
        scores = weights.mv(weights[q])
        scores[q] = -torch.inf
        return scores.topk(10).indices.numpy()

    methods: dict[str, tuple] = {"numpy exact": (numpy_scan, 0.0), "torch exact": (torch_scan, 0.0)}
    if faiss is None:
        return methods
    flat = faiss.IndexFlatIP(normalized.shape[1])
    flat.add(normalized)
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(normalized.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efSearch = 64
    hnsw.add(normalized)
    build = time.perf_counter() - start
    for label, index, build_s in (("faiss flat", flat, 0.0), ("faiss HNSW32 ef64", hnsw, build)):

        def search(q: int, index=index) -> np.ndarray:
            found = index.search(normalized[q : q + 1], 11)[1][0]
            return found[found != q][:10]

        methods[label] = (search, build_s)
    return methods


def bench_similarity(args: argparse.Namespace, tmp: Path) -> str:
    from hf_recsys.export import item_embeddings, top_similar
    from hf_recsys.export.embeddings import normalize

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    catalogues = []
    model = args.model or ("/tmp/run-ml1m" if Path("/tmp/run-ml1m").is_dir() else None)
    if model:
        catalogues.append((f"model {Path(model).name}", item_embeddings(model)[1]))
    else:
        catalogues.append(("random 3.4k", rng.standard_normal((3416, 64)).astype(np.float32)))
    catalogues += [(f"random {n // 1000}k", rng.standard_normal((n, 64)).astype(np.float32)) for n in args.sim_sizes]
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:
        faiss = None
    rows = []
    for name, matrix in catalogues:
        normalized = normalize(matrix)
        queries = rng.integers(0, len(normalized), args.queries)
        exact = [set(top_similar(normalized, normalized[q], 10, exclude=q).tolist()) for q in queries[:100]]
        methods = similarity_methods(normalized, faiss)
        for label, (method, build_s) in methods.items():
            for q in queries[:20]:
                method(int(q))  # warm-up
            times = []
            for q in queries:
                start = time.perf_counter()
                method(int(q))
                times.append(time.perf_counter() - start)
            recall = statistics.mean(len(set(method(int(q)).tolist()) & e) / 10 for q, e in zip(queries, exact))
            p50, p99 = percentiles(times)
            rows.append(
                [name, f"{len(matrix):,}", label, f"{p50:.3f}", f"{p99:.3f}", f"{recall:.3f}", f"{build_s:.1f}"]
            )
    if faiss is None:
        rows.append(["(faiss-cpu not installed: faiss rows skipped)", "", "", "", "", "", ""])
    header = ["catalogue", "items", "method", "p50 ms", "p99 ms", "recall@10", "index build s"]
    return f"Top-10 cosine neighbours of one item (dim 64, 1 thread, {args.queries} queries)\n\n" + table(header, rows)


# -- ONNX ------------------------------------------------------------------------------------------------------
def bench_onnx(args: argparse.Namespace, tmp: Path) -> str:
    import onnxruntime as ort

    from hf_recsys.export import export_onnx
    from hf_recsys.modeling import RecTransformerForNextItemPrediction

    model_path = args.model or ("/tmp/run-ml1m" if Path("/tmp/run-ml1m").is_dir() else None)
    if model_path is None:
        from hf_recsys.modeling import RecTransformerConfig

        config = RecTransformerConfig(num_items=3416, num_users=6040, user_conditioning="add")
        model = RecTransformerForNextItemPrediction(config).eval()
        name = "untrained default recipe, 3,416 items"
    else:
        model = RecTransformerForNextItemPrediction.from_pretrained(model_path).eval()
        name = model_path
    torch.set_num_threads(1)
    start = time.perf_counter()
    path = export_onnx(model, tmp / "model.onnx", k=10, overwrite=True)
    export_s = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    history = rng.choice(np.arange(1, model.config.num_items + 1), args.history_length, replace=False)[None]
    users = model.config.user_conditioning != "none"
    feed = {"input_ids": history.astype(np.int64)} | ({"user_ids": np.array([1], np.int64)} if users else {})
    ids, user_ids = torch.from_numpy(history), torch.tensor([1]) if users else None

    def pytorch() -> None:
        model.recommend(ids, user_ids=user_ids, k=10)

    def onnxruntime() -> None:
        session.run(None, feed)

    ref = model.recommend(ids, user_ids=user_ids, k=10).item_ids[0].numpy()
    same = float(np.mean(session.run(None, feed)[0][0] == ref))
    rows = []
    for label, call in (("PyTorch model.recommend", pytorch), ("onnxruntime", onnxruntime)):
        for _ in range(20):
            call()
        times = []
        for _ in range(args.requests):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        p50, p99 = percentiles(times)
        rows.append([label, f"{p50:.2f}", f"{p99:.2f}", f"{1000 / p50:,.0f}"])
    about = (
        f"Single request, {args.history_length}-item history, top 10, 1 thread; model {name} "
        f"(ONNX file {path.stat().st_size / 2**20:.1f} MiB, exported in {export_s:.1f} s, same top-10 as PyTorch: "
        f"{same:.0%})"
    )
    return about + "\n\n" + table(["runtime", "p50 ms", "p99 ms", "requests/s at p50"], rows)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--model", help="ML-1M run folder (default: /tmp/run-ml1m, else an untrained model)")
    parser.add_argument("--batch_sizes", type=lambda s: [int(x) for x in s.split(",")], default=[256, 1024])
    parser.add_argument("--synthetic_users", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 300_000, 1_000_000])  # fmt: skip
    parser.add_argument("--synthetic_items", type=int, default=10_000)
    parser.add_argument("--synthetic_k", type=int, default=10)
    parser.add_argument("--synthetic_max_len", type=int, default=50)
    parser.add_argument("--sim_sizes", type=lambda s: [int(x) for x in s.split(",")], default=[20_000, 87_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--history_length", type=int, default=200)
    parser.add_argument("--_probe_users", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_probe_output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.probe_users, args.probe_output = args._probe_users, args._probe_output
    if args.probe_users:
        synthetic_probe(args)
        return []
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}\n")
    outputs = []
    with tempfile.TemporaryDirectory() as tmp:
        for section in sections:
            text = globals()[f"bench_{section}"](args, Path(tmp))
            print(text + "\n", flush=True)
            outputs.append(text)
    return outputs


if __name__ == "__main__":
    main()
