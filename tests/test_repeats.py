"""Repeat consumption is a property of the data: recorded when a log is prepared, stored in the config as the
default of `exclude_seen`, and followed by training (`exclude_seen_in_loss`), evaluation and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hf_recsys.commands import train as train_command
from hf_recsys.data import load_interactions
from hf_recsys.data.log_pipeline import REPEAT_SHARE
from hf_recsys.modeling import RecTransformerForNextItemPrediction
from hf_recsys.modeling.recommender import Recommender
from hf_recsys.training import run_training

TINY = ["--hidden_size", "16", "--intermediate_size", "32", "--num_hidden_layers", "1", "--max_length", "20"]
TINY += ["--no_compile_loss", "--disable_tqdm", "true", "--learning_rate", "0.01", "--warmup_steps", "0"]


def listening_log(users: int = 40, length: int = 14, seed: int = 0) -> pd.DataFrame:
    """A music-like log: every other play is one of 5 favourite tracks (repeats), the rest new tracks."""
    rng = np.random.default_rng(seed)
    rows = [
        (u, int(rng.integers(1, 6)) if t % 2 else 100 + int(rng.integers(0, 30)), t)
        for u in range(users)
        for t in range(length)
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_the_repeat_share_is_measured_when_the_log_is_prepared(tmp_path):
    log = listening_log()
    users = log["user_id"].to_numpy()
    expected = 1 - len(set(zip(users, log["item_id"], strict=True))) / len(log)
    repeats = load_interactions(log, time_column="timestamp", cache_dir=tmp_path).describe()["repeat_consumption"]
    assert repeats == {"repeat_share": pytest.approx(expected, abs=1e-6), "repeats": True}
    once = log.drop_duplicates(["user_id", "item_id"])
    described = load_interactions(once, time_column="timestamp", cache_dir=tmp_path).describe()
    assert described["repeat_consumption"] == {"repeat_share": 0.0, "repeats": False}
    # the rule's threshold: below REPEAT_SHARE of re-consumed interactions, seen items are left out
    few = pd.concat([once, once.iloc[: int(len(once) * REPEAT_SHARE / 2)]]).reset_index(drop=True)
    few["timestamp"] = np.arange(len(few))  # the repeats come last
    assert not load_interactions(few, time_column="timestamp", cache_dir=tmp_path).describe()["repeat_consumption"][
        "repeats"
    ]


def _train(tmp_path, csv, *extra):
    args = ["--data", str(csv), "--time_column", "timestamp", "--cache_dir", str(tmp_path / "cache"), *TINY]
    args += ["--num_train_epochs", "1", "--output_dir", str(tmp_path / "run"), "--overwrite_output_dir", "true"]
    return run_training(*train_command.parser().parse_args_into_dataclasses(args=[*args, *extra]))


def test_training_evaluation_and_serving_follow_the_data(tmp_path):
    csv = tmp_path / "plays.csv"
    listening_log().to_csv(csv, index=False)
    results = _train(tmp_path, csv)
    assert results["training"]["exclude_seen"] is False  # evaluation ranked seen items too
    assert "minus those already seen" not in (tmp_path / "run" / "README.md").read_text()
    model = RecTransformerForNextItemPrediction.from_pretrained(tmp_path / "run")
    assert model.config.exclude_seen is False and model.config.exclude_seen_in_loss is False
    rec = Recommender.from_pretrained(tmp_path / "run")
    n = model.config.num_items
    history = [1, 2, 3]
    every = rec.recommend(history=history, k=n)  # seen items may come back: all n items can be ranked
    assert {r["item_id"] for r in every} >= set(history)
    assert len(every) == n
    excluded = rec.recommend(history=history, k=n, exclude_seen=True)  # asked to exclude them: n - 3 are left
    assert len(excluded) == n - 3 and not {r["item_id"] for r in excluded} & set(history)
    # an explicit --exclude_seen wins over the data's rule
    results = _train(tmp_path, csv, "--exclude_seen", "true")
    assert results["training"]["exclude_seen"] is True
    assert RecTransformerForNextItemPrediction.from_pretrained(tmp_path / "run").config.exclude_seen is True


def test_logs_without_repeats_keep_excluding_seen_items(tmp_path):
    csv = tmp_path / "ratings.csv"
    listening_log().drop_duplicates(["user_id", "item_id"]).to_csv(csv, index=False)
    results = _train(tmp_path, csv)
    assert results["training"]["exclude_seen"] is True
    model = RecTransformerForNextItemPrediction.from_pretrained(tmp_path / "run")
    assert model.config.exclude_seen is True and model.config.exclude_seen_in_loss is True
    rec = Recommender.from_pretrained(tmp_path / "run")
    got = rec.recommend(history=[1, 2, 3], k=model.config.num_items - 3)
    assert not {r["item_id"] for r in got} & {1, 2, 3}
