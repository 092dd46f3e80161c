"""The `hf-recsys` command: its subcommands, model options generated from the config (one source of truth for
the recipe), one-line errors, resuming from the last checkpoint, and `--push_to_hub` pushing a complete run."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from hf_recsys import cli
from hf_recsys.commands import bench, demo
from hf_recsys.commands import train as train_command
from hf_recsys.modeling import RecTransformerConfig
from hf_recsys.training import (
    DATA_DERIVED_FIELDS,
    DERIVED_MODEL_OPTIONS,
    DataArguments,
    ModelArguments,
    RecTrainingArguments,
    build_model,
    model_option_names,
    run_training,
)
from hf_recsys.training.arguments import config_field_docs

pytestmark = pytest.mark.usefixtures("single_thread")
REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden_size", "16", "--intermediate_size", "32", "--num_hidden_layers", "1", "--max_length", "20"]
TINY += ["--no_compile_loss", "--disable_tqdm", "true", "--learning_rate", "0.01", "--warmup_steps", "0"]


def _data(sequences_file: Path, tmp_path: Path) -> list[str]:
    return ["--dataset", "sequences", "--sequences_path", str(sequences_file), "--cache_dir", str(tmp_path / "cache")]


# ---------------------------------------------------------------------------------------------------------------
# The command and its subcommands
# ---------------------------------------------------------------------------------------------------------------
def test_top_level_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "evaluate", "recommend", "push", "app", "demo", "bench", "export", "export-onnx"):
        assert f"  {name} " in out, name
    assert cli.main([]) == 2  # no command is a usage error, with the same help
    assert "usage: hf-recsys <command>" in capsys.readouterr().out
    assert cli.main(["fit"]) == 2
    assert "unknown command 'fit'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_each_subcommand_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: hf-recsys {name}")


def test_console_script_and_module_entry_point():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"hf-recsys": "hf_recsys.cli:main"}
    proc = subprocess.run([sys.executable, "-m", "hf_recsys", "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("hf-recsys ")


# ---------------------------------------------------------------------------------------------------------------
# One source of truth for the recipe
# ---------------------------------------------------------------------------------------------------------------
def test_model_options_are_the_config_fields_with_the_config_defaults(capsys):
    own = [f for f in dataclasses.fields(RecTransformerConfig) if f.name in RecTransformerConfig.__annotations__]
    options = set(model_option_names())
    # every field of the config is either a command-line option or decided by the data: none is unreachable
    assert {f.name for f in own} == options | set(DATA_DERIVED_FIELDS)
    docs = config_field_docs()
    arguments = {f.name: f for f in dataclasses.fields(ModelArguments)}
    for f in own:
        if f.name in DERIVED_MODEL_OPTIONS:  # unset until the data decides (training/recipe.py)
            assert arguments[f.name].default is None, f.name
            assert arguments[f.name].metadata["help"].startswith(docs[f.name] + " Default: from the data"), f.name
        elif f.name in options:
            assert arguments[f.name].default == f.default, f.name
            assert arguments[f.name].metadata["help"] == docs[f.name] != "", f.name
    with pytest.raises(SystemExit):
        train_command.parser().parse_args_into_dataclasses(args=["--help"])
    help_text = capsys.readouterr().out
    assert all(f"--{name}" in help_text for name in options)
    assert not any(f"--{name} " in help_text for name in ("num_items", "num_users", "max_position_embeddings"))


def test_demo_bench_and_the_config_build_the_same_model():
    """`make demo`, `make bench` and `RecTransformerConfig()` are one recipe: the same config, the same weights."""
    demo_model, demo_data, demo_training = demo.run_arguments(demo.DemoArguments())
    (bench_spec,) = [
        s for n, p, s in bench.jobs(bench.BenchmarkArguments()) if (n, p) == ("rec-transformer", "leave-one-out")
    ]
    bench_model, _, bench_max_length = bench_spec[:3]
    built = {
        "demo": build_model(demo_model, 50, 7, demo_data.max_length),
        "bench": build_model(bench_model, 50, 7, bench_max_length),
        "cli": build_model(train_command.parser().parse_args_into_dataclasses(args=[])[0], 50, 7),
    }
    reference = RecTransformerConfig(num_items=50, num_users=7)
    for name, model in built.items():
        assert model.config.to_dict() == reference.to_dict(), name
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert shapes == {k: tuple(v.shape) for k, v in built["cli"].state_dict().items()}, name
    # the recipe as measured (benchmarks/tuning.md): four blocks with the relative attention bias
    assert (reference.num_hidden_layers, reference.relative_attention_bias) == (4, True)
    assert demo_training.learning_rate == RecTrainingArguments(output_dir="x").learning_rate


def test_command_line_options_reach_the_built_model():
    args = ["--num_hidden_layers", "2", "--no_relative_attention_bias", "--hidden_act", "swiglu"]
    model_args = train_command.parser().parse_args_into_dataclasses(args=args)[0]
    config = build_model(model_args, 10, 0, max_length=12).config
    assert (config.num_hidden_layers, config.relative_attention_bias, config.hidden_act) == (2, False, "swiglu")
    assert config.max_position_embeddings == 12
    with pytest.raises(SystemExit) as exit_info:  # a value outside the choices is a usage error (argparse, exit 2)
        train_command.parser().parse_args_into_dataclasses(args=["--hidden_act", "tanh"])
    assert exit_info.value.code == 2


def test_seen_items_stay_in_the_softmax_when_evaluation_may_rank_them():
    assert build_model(ModelArguments(), 10, 0, exclude_seen=True).config.exclude_seen_in_loss
    assert not build_model(ModelArguments(), 10, 0, exclude_seen=False).config.exclude_seen_in_loss


# ---------------------------------------------------------------------------------------------------------------
# Expected errors: one line, exit 1, nothing written
# ---------------------------------------------------------------------------------------------------------------
def _one_line_error(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"hf-recsys {argv[0]}: error: ")
    return err


def test_missing_sequences_file_is_one_line(capsys, tmp_path):
    missing = tmp_path / "nope.txt"
    argv = ["train", "--dataset", "sequences", "--sequences_path", str(missing), "--output_dir", str(tmp_path / "r")]
    err = _one_line_error(capsys, [*argv, "--cache_dir", str(tmp_path / "c")])
    assert str(missing) in err
    assert not (tmp_path / "r" / "results.json").exists()


def test_configured_but_missing_data_folder_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_RECSYS_DATA_DIR", str(tmp_path / "no-such-folder"))
    argv = ["train", "--dataset", "ml-100k", "--output_dir", str(tmp_path / "r"), "--cache_dir", str(tmp_path / "c")]
    assert str(tmp_path / "no-such-folder") in _one_line_error(capsys, argv)


def test_occupied_output_dir_and_missing_checkpoint_are_one_line(capsys, tmp_path, sequences_file):
    occupied = tmp_path / "run"
    occupied.mkdir()
    (occupied / "results.json").write_text("{}")
    argv = ["train", *_data(sequences_file, tmp_path), "--output_dir", str(occupied)]
    assert "--overwrite_output_dir" in _one_line_error(capsys, argv)
    empty = tmp_path / "empty"
    argv = ["train", *_data(sequences_file, tmp_path), "--output_dir", str(empty), "--resume_from_checkpoint"]
    assert "no complete checkpoint" in _one_line_error(capsys, argv)


def test_debug_variable_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(FileNotFoundError):
        cli.main(["train", "--dataset", "sequences", "--sequences_path", str(tmp_path / "nope.txt")])


# ---------------------------------------------------------------------------------------------------------------
# Resuming: `--resume_from_checkpoint` with no value, after a real kill -9
# ---------------------------------------------------------------------------------------------------------------
def test_resume_skips_a_checkpoint_cut_short(tmp_path):
    """A kill -9 during a save leaves a checkpoint folder without trainer_state.json (written last): resuming
    takes the newest complete one instead."""
    for step, state in ((3, '{"global_step": 3}'), (6, '{"global_step": 6}'), (9, None), (12, '{"global_')):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    args = RecTrainingArguments(output_dir=str(tmp_path), resume_from_checkpoint="last")
    assert args.checkpoint_to_resume() == str(tmp_path / "checkpoint-6")
    assert RecTrainingArguments(output_dir=str(tmp_path), resume_from_checkpoint=None).checkpoint_to_resume() is None
    with pytest.raises(FileNotFoundError, match="checkpoint folder"):
        RecTrainingArguments(output_dir=str(tmp_path), resume_from_checkpoint="nowhere").checkpoint_to_resume()


def test_resume_without_a_path_after_kill_reproduces_the_uninterrupted_run(sequences_file, tmp_path):
    common = [*_data(sequences_file, tmp_path), *TINY, "--num_train_epochs", "6", "--seed", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def train(out: Path, *extra: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "hf_recsys", "train", *common, "--output_dir", str(out), *extra]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)

    full = train(tmp_path / "full")
    _, full_err = full.communicate(timeout=300)
    assert full.returncode == 0, full_err
    assert "Generating train split" not in full_err  # --disable_tqdm: no progress bars of datasets either
    part = tmp_path / "part"
    victim = train(part)
    deadline = time.monotonic() + 300
    while not list(part.glob("checkpoint-*/trainer_state.json")):  # the first checkpoint is complete
        assert victim.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    assert not (part / "results.json").exists()
    resumed = train(part, "--resume_from_checkpoint")
    _out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "Writing model shards" not in err  # --disable_tqdm: no progress bar per checkpoint
    assert "[INFO|hf_recsys" in err  # the package's INFO lines reach the command line

    def test_metrics(folder: Path) -> dict:
        metrics = json.loads((folder / "results.json").read_text())["metrics"]["test"]
        return {k: v for k, v in metrics.items() if "@" in k}

    assert test_metrics(part) == pytest.approx(test_metrics(tmp_path / "full"), abs=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# --push_to_hub: the complete run folder, in one commit, after training
# ---------------------------------------------------------------------------------------------------------------
def test_push_to_hub_uploads_the_complete_run_in_one_commit(sequences_file, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, constants

    commits = []

    class Commit:
        commit_url = "https://huggingface.co/alice/tiny/commit/abc"
        pr_url = None

    def create_commit(api, repo_id, operations, **kwargs):
        commits.append((repo_id, sorted(op.path_in_repo for op in operations)))
        return Commit()

    def refuse(*args, **kwargs):
        raise AssertionError("the Trainer must not push on its own")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "create_repo", lambda api, *a, **k: None)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr(HfApi, "upload_folder", refuse)
    parsed = train_command.parser().parse_args_into_dataclasses(
        args=[
            *_data(sequences_file, tmp_path),
            *TINY,
            "--num_train_epochs",
            "1",
            "--output_dir",
            str(tmp_path / "r"),
            "--push_to_hub",
            "--hub_model_id",
            "alice/tiny",
            "--hub_token",
            "hf_fake",
        ]
    )
    results = run_training(*parsed)
    assert results["hub_commit_url"] == Commit.commit_url
    ((repo_id, files),) = commits
    assert repo_id == "alice/tiny"
    for name in ("config.json", "model.safetensors", "item_vocab.json", "user_vocab.json", "results.json"):
        assert name in files, name
    assert {"README.md", "handler.py"} <= set(files)
    assert not any(f.startswith("checkpoint-") for f in files)


def test_push_to_hub_needs_a_repository_id_before_training(sequences_file, tmp_path):
    parsed = train_command.parser().parse_args_into_dataclasses(
        args=[*_data(sequences_file, tmp_path), *TINY, "--output_dir", str(tmp_path / "r"), "--push_to_hub"]
    )
    with pytest.raises(ValueError, match="--hub_model_id"):
        run_training(*parsed)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------------------------
# --data: any interaction log
# ---------------------------------------------------------------------------------------------------------------
def test_data_filters_become_the_builder_spec():
    args = DataArguments(data="log.csv", min_rating=4.0, keep_events=["purchase"], k_core=5)
    args.drop_consecutive_duplicates = True
    assert [entry["name"] for entry in args.filter_spec()] == [
        "min_rating",
        "keep_events",
        "drop_consecutive_duplicates",
        "k_core",
    ]
    assert args.filter_spec()[0] == {"name": "min_rating", "column": "rating", "threshold": 4.0}
    assert DataArguments(data="shop/log.parquet").dataset_name == "log"
    assert DataArguments().dataset_name == "ml-1m"


def test_an_e_commerce_log_trains_end_to_end_from_the_command_line(shared_data_dir, tmp_path):
    """The Amazon Reviews 2023 sample (string ids, millisecond timestamps) trains with `hf-recsys train --data`;
    its run folder serves string ids and says nothing about MovieLens."""
    from hf_recsys import Recommender

    log = shared_data_dir / "amazon-reviews-2023-sample" / "All_Beauty.csv"
    out = tmp_path / "run"
    argv = ["train", "--data", str(log), "--item_column", "parent_asin", "--time_column", "timestamp", *TINY]
    argv += ["--num_train_epochs", "2", "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "All_Beauty" and results["data"]["time_unit"] == "ms"
    assert (results["data"]["num_users"], results["data"]["num_items"]) == (253, 356)
    assert results["published"] == {}
    for path in out.glob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".py"):
            assert "movielens" not in path.read_text().lower(), path.name
    recommender = Recommender.from_pretrained(out)
    history = [str(i) for i in json.loads((out / "item_vocab.json").read_text())["item_ids"][:3]]
    recommendations = recommender.recommend(history=history, k=5)
    assert len(recommendations) == 5 and all(isinstance(r["item_id"], str) for r in recommendations)
    assert not set(history) & {r["item_id"] for r in recommendations}  # seen items are not recommended


def test_a_preset_trains_from_the_command_line(shared_data_dir, tmp_path, monkeypatch):
    """`hf-recsys train --spec lastfm`: the S3-Rec LastFM file through its preset, named in the results."""
    monkeypatch.setenv("HF_RECSYS_DATA_DIR", str(shared_data_dir))
    out = tmp_path / "run"
    argv = ["train", "--spec", "lastfm", *TINY, "--num_train_epochs", "1", "--output_dir", str(out)]
    assert cli.main([*argv, "--cache_dir", str(tmp_path / "cache")]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "lastfm"
    assert (results["data"]["num_users"], results["data"]["num_items"]) == (1090, 3646)
    assert results["metrics"]["test"]["hr@10"] > 0


def test_a_log_with_string_ids_fine_tunes_and_evaluates_with_new_users_and_items(tmp_path):
    """Vocabulary growth on any source: a model trained on the first weeks of a log with string ids is fine-tuned on
    the whole log (new users and items join its vocabularies) and evaluated on it from the command line."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["customer,sku,ts"]
    for user in range(80):
        start = int(rng.integers(0, 30))
        for step in range(int(rng.integers(5, 12))):
            item = (start + step) % 40 if user < 30 else 40 + (start + step) % 20  # later customers, newer SKUs
            rows.append(f"C{user:03d},SKU-{item:02d},{1_700_000_000_000 + 1000 * (user * 20 + step)}")
    full = tmp_path / "full.csv"
    full.write_text("\n".join(rows) + "\n")
    early = tmp_path / "early.csv"
    early.write_text("\n".join(r for r in rows if r.startswith(("customer", "C00", "C01", "C02"))) + "\n")
    columns = ["--user_column", "customer", "--item_column", "sku", "--time_column", "ts"]
    cache = ["--cache_dir", str(tmp_path / "cache")]
    base = tmp_path / "base"
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(early),
                *columns,
                *TINY,
                "--num_train_epochs",
                "1",
                "--output_dir",
                str(base),
                *cache,
            ]
        )
        == 0
    )
    tuned = tmp_path / "tuned"
    argv = ["train", "--model_name_or_path", str(base), "--data", str(full), *columns, *TINY[8:]]
    assert cli.main([*argv, "--num_train_epochs", "1", "--output_dir", str(tuned), *cache]) == 0
    vocab = json.loads((tuned / "item_vocab.json").read_text())
    assert vocab["id_type"] == "str" and len(vocab["item_ids"]) == len({r.split(",")[1] for r in rows[1:]})
    base_items = json.loads((base / "item_vocab.json").read_text())["item_ids"]
    assert vocab["item_ids"][: len(base_items)] == base_items  # the old tokens keep their place
    assert len(base_items) < len(vocab["item_ids"])  # and the new items follow them
    users = json.loads((tuned / "user_vocab.json").read_text())["user_ids"]
    assert len(users) == 80 and len(json.loads((base / "user_vocab.json").read_text())["user_ids"]) == 30
    assert cli.main(["evaluate", "--model", str(tuned), "--data", str(full), *columns, *cache]) == 0


def test_a_missing_column_in_a_log_is_one_line(capsys, tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("user,product\nu1,a\nu1,b\n")
    argv = ["train", "--data", str(log), "--item_column", "item", "--output_dir", str(tmp_path / "r")]
    err = _one_line_error(capsys, [*argv, "--cache_dir", str(tmp_path / "c")])
    assert "'item'" in err and "product" in err and str(log) in err
