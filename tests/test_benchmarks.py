"""Smoke test of the step benchmark: it runs end to end on a tiny model and times both dropout variants."""

import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_bench_step_times_full_and_backbone_steps_with_both_dropouts(capsys):
    spec = importlib.util.spec_from_file_location("bench_step", ROOT / "benchmarks" / "bench_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        tiny = {"num_items": 30, "hidden_size": 8, "num_hidden_layers": 1, "batch_size": 3, "min_length": 4}
        tiny |= {"max_length": 8, "steps": 2}
        rows = bench.main([*(f"--{k}={v}" for k, v in tiny.items()), "--no_compile"])
    finally:
        torch.set_num_threads(threads)
    assert [(r["step"], r["dropout"]) for r in rows] == [
        ("full", "ByteDropout"),
        ("backbone", "ByteDropout"),
        ("full", "torch.nn.Dropout"),
        ("backbone", "torch.nn.Dropout"),
    ]
    assert all(r["ms"] > 0 for r in rows)
    assert "| full | ByteDropout |" in capsys.readouterr().out
