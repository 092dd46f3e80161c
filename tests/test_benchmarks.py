"""Benchmarks: the step benchmark runs end to end on a tiny model and times both dropout variants; `make bench` keeps
the original notebook's model as its baseline."""

import importlib.util
import json
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


def test_benchmark_notebook_recipe_reads_movie_ids_only():
    """`make bench` trains the original notebook's model as a baseline: it must stay the notebook's model (movie ids,
    no genre or decade features, plain attention) even though the default recipe now uses features wherever the
    data has them, and a relative attention bias."""
    import pandas as pd

    from hf_recsys.commands import bench as script
    from hf_recsys.data.features import build_feature_fields, read_feature_table
    from hf_recsys.training import build_model

    table = pd.DataFrame({"item_id": [1, 2, 3], "genres": ["A", "A|B", "C"], "decade": ["1980s", "1990s", None]})
    items = build_feature_fields(read_feature_table(table, "item_id", kinds={"genres": "multi"}), [1, 2, 3])
    users = build_feature_fields(
        read_feature_table(pd.DataFrame({"user_id": [1, 2], "gender": ["F", "M"]}), "user_id"), [1, 2]
    )
    notebook = build_model(script.NOTEBOOK, 3, 2, max_length=3, item_features=items, user_features=users)
    assert notebook.config.item_feature_fields == []
    assert notebook.config.user_feature_fields == []  # the user id only, as before user features were on by default
    assert notebook.config.user_conditioning == "concat"
    assert not notebook.config.relative_attention_bias
    assert all(layer.attention.relative_bias is None for layer in notebook.rec_transformer.layers)
    default = build_model(script.SEED_WINDOWS_MODEL, 3, 2, max_length=3, item_features=items, user_features=users)
    assert [f["name"] for f in default.config.item_feature_fields] == ["genres", "decade"]
    assert [f["name"] for f in default.config.user_feature_fields] == ["gender"]
    assert default.config.relative_attention_bias


def test_benchmark_notebook_recipe_trains_on_random_windows_of_each_history(monkeypatch, tmp_path):
    """On leave-one-out the notebook's model reads 3 movies: trained on the most recent window only (the default
    recipe's choice before `--all_windows`), each user would give it 3 targets. Like the notebook, it trains on a
    random window of the whole history each epoch; the default model trains every window, and each row records
    which it was."""
    from hf_recsys.commands import bench as script

    seen = {}

    def fake_run_training(model_args, data_args, training_args):
        seen[training_args.output_dir.rsplit("/", 1)[-1]] = data_args
        metrics = {"ndcg@10": 0.1, "hr@10": 0.2}
        return {
            "metrics": {"validation": metrics, "test": metrics}, "train_seconds": 1.0, "peak_mem_mb": 1.0,
            "train_samples_per_second": 1.0, "speed": {},
            "training": {"epochs_run": 1.0, "all_windows": data_args.all_windows, **vars(model_args)},
        }  # fmt: skip

    monkeypatch.setattr(script, "run_training", fake_run_training)
    out = tmp_path / "rows.json"
    script.main(["--only", "notebook-recipe,rec-transformer", "--protocols", "leave-one-out", "--output", str(out)])
    assert seen["notebook-recipe-leave-one-out-seed42"].random_crop
    assert seen["notebook-recipe-leave-one-out-seed42"].max_length == 3
    assert not seen["rec-transformer-leave-one-out-seed42"].random_crop
    assert seen["rec-transformer-leave-one-out-seed42"].all_windows
    rows = {row["model"]: row for row in json.loads(out.read_text())}
    assert rows["rec-transformer"]["all_windows"] is True and rows["notebook-recipe"]["all_windows"] is False
