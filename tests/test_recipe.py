"""The data-derived recipe (hf_recsys/training/recipe.py): the rule's values at the ends and between them, that
an option set by the user wins, that fine-tuning keeps the pretrained shape, and that a run records it."""

from __future__ import annotations

import itertools
import json
import time
from types import SimpleNamespace

import pytest
from datasets import Dataset
from transformers import TrainerControl

from hf_recsys.modeling import RecTransformerConfig
from hf_recsys.training import DataArguments, ModelArguments, RecTrainingArguments, TimeBudgetCallback
from hf_recsys.training.recipe import (
    LEARNING_RATE,
    MAX_BATCH,
    SPARSE_DROPOUT,
    SPARSE_ITEM_DROPOUT,
    SPARSE_LEARNING_RATE,
    DataStatistics,
    apply_recipe,
    derive_recipe,
    scoring_to_backbone_ratio,
)


def _stats(num_users: int, num_items: int, lengths: list[int]) -> DataStatistics:
    return DataStatistics(num_users, num_items, sum(lengths), tuple(lengths))


def test_dense_long_histories_get_the_config_defaults():
    # ML-1M's shape: 6,040 users of ~160 interactions, 3,416 items (~280 per item)
    stats = _stats(6040, 3416, [20, 60, 100, 160, 400, 900] * 1007)
    recipe = {name: setting.value for name, setting in derive_recipe(stats).items()}
    config = RecTransformerConfig()
    assert recipe == {
        "max_length": config.max_position_embeddings,
        "hidden_dropout_prob": config.hidden_dropout_prob,
        "item_dropout_prob": config.item_dropout_prob,
        "learning_rate": LEARNING_RATE,
        "per_device_train_batch_size": 32,
        "loss_type": "ce",
    }


def test_sparse_short_histories_get_more_dropout_a_short_window_and_big_batches():
    # Amazon's shape: 20k users of ~10 interactions over 16k items (12.5 per item)
    stats = _stats(20000, 16000, [2, 3, 4, 5, 6, 8, 12, 40] * 2500)
    recipe = derive_recipe(stats)
    assert recipe["hidden_dropout_prob"].value == SPARSE_DROPOUT
    assert recipe["item_dropout_prob"].value == SPARSE_ITEM_DROPOUT > RecTransformerConfig().item_dropout_prob
    assert recipe["learning_rate"].value == SPARSE_LEARNING_RATE < LEARNING_RATE
    assert recipe["max_length"].value == 40  # the 99th percentile (40), a multiple of 8
    # 9 targets per history: the largest power of two under 2,048 targets per batch (227 histories)
    assert recipe["per_device_train_batch_size"].value == 128
    dense_batches = _stats(50000, 16000, [2] * 50000)  # one target each: as large as allowed
    assert derive_recipe(dense_batches)["per_device_train_batch_size"].value == MAX_BATCH
    assert recipe["loss_type"].value == "ce"
    assert all(setting.reason for setting in recipe.values())  # every value says why
    assert (
        "16,000 items" in recipe["loss_type"].reason
        and "12.5 interactions per item" in recipe["hidden_dropout_prob"].reason
    )


@pytest.mark.parametrize(
    ("name", "sparse", "dense"),
    [
        ("hidden_dropout_prob", SPARSE_DROPOUT, 0.2),
        ("item_dropout_prob", SPARSE_ITEM_DROPOUT, 0.0),
        ("learning_rate", SPARSE_LEARNING_RATE, LEARNING_RATE),
    ],
)
def test_sparse_settings_are_monotone_between_the_dense_and_the_sparse_ends(name, sparse, dense):
    values = [
        derive_recipe(_stats(1000, 1000, [per_item] * 1000))[name].value for per_item in (5, 15, 30, 60, 120, 250, 1000)
    ]
    assert values[:2] == [sparse, sparse] and values[-2:] == [dense, dense]
    falling = sparse > dense  # the dropouts fall from the sparse end to the dense one, the learning rate rises
    assert all((a > b) == falling and a != b for a, b in itertools.pairwise(values[1:-1]))


def test_a_big_catalogue_trains_with_sampled_softmax():
    lengths = [10, 20, 50] * 10000
    assert derive_recipe(_stats(30000, 10000, lengths))["loss_type"].value == "ce"
    big = _stats(30000, 500_000, lengths)
    assert scoring_to_backbone_ratio(big, RecTransformerConfig(), 200) > 8
    assert derive_recipe(big)["loss_type"].value == "sampled_softmax"


def test_a_small_user_base_caps_the_batch_at_an_eighth_of_the_users():
    stats = _stats(300, 500, [4] * 300)  # 4 items each would ask for ~1,024 histories per batch
    assert derive_recipe(stats)["per_device_train_batch_size"].value == 32


def _arguments(**model):
    return (
        ModelArguments(**model),
        DataArguments(),
        RecTrainingArguments(output_dir="unused", report_to="none"),
    )


def test_options_set_by_the_user_win_and_unset_ones_are_filled_and_reported():
    stats = _stats(20000, 12000, [3, 5, 8, 40] * 5000)
    model_args, data_args, training_args = _arguments(hidden_dropout_prob=0.3)
    training_args.per_device_train_batch_size = 64
    applied = apply_recipe(stats, model_args, data_args, training_args)
    assert model_args.hidden_dropout_prob == 0.3 and training_args.per_device_train_batch_size == 64
    assert {s.name for s in applied} == {"max_length", "item_dropout_prob", "learning_rate", "loss_type"}
    assert data_args.max_length == 40 and model_args.loss_type == "ce" and model_args.item_dropout_prob > 0


def test_fine_tuning_keeps_the_pretrained_shape_and_takes_only_the_training_settings():
    stats = _stats(20000, 12000, [3, 5, 8, 40] * 5000)
    model_args, data_args, training_args = _arguments()
    applied = apply_recipe(stats, model_args, data_args, training_args, fine_tuning=True)
    assert [s.name for s in applied] == ["learning_rate", "per_device_train_batch_size"]
    assert SPARSE_LEARNING_RATE < training_args.learning_rate < LEARNING_RATE  # 23 interactions per item
    assert model_args.hidden_dropout_prob is None and model_args.item_dropout_prob is None
    assert data_args.max_length is None


def test_statistics_read_the_train_split_rows():
    train = Dataset.from_dict({"input_ids": [[1, 2], [3], [1, 2, 3, 4]], "target": [3, 4, 5]})
    stats = DataStatistics.from_train_split(train, num_items=5, num_users=3)
    assert stats.num_interactions == 3 + 2 + 5 and stats.interactions_per_item == 2.0
    assert stats.mean_positions(max_length=3) == pytest.approx((2 + 1 + 3) / 3)
    # a selection of rows (an indices mapping over the same Arrow table) is read as selected
    assert DataStatistics.from_train_split(train.select([2, 0]), 5, 2).history_lengths == (5, 3)


def test_a_run_records_its_derived_settings(sequences_file, tmp_path):
    from hf_recsys.training import run_training

    model_args = ModelArguments(hidden_size=16, intermediate_size=32, num_hidden_layers=1)
    data_args = DataArguments(
        dataset="sequences", sequences_path=str(sequences_file), cache_dir=str(tmp_path / "cache")
    )
    training_args = RecTrainingArguments(
        output_dir=str(tmp_path / "run"), num_train_epochs=1, compile_loss=False, disable_tqdm=True, report_to="none"
    )
    run_training(model_args, data_args, training_args)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    derived = {d["name"]: d["value"] for d in saved["recipe"]["derived"]}
    assert set(derived) == {
        "max_length",
        "hidden_dropout_prob",
        "item_dropout_prob",
        "learning_rate",
        "per_device_train_batch_size",
        "loss_type",
    }
    assert saved["training"]["learning_rate"] == derived["learning_rate"]
    assert saved["training"]["max_length"] == derived["max_length"]
    assert saved["training"]["hidden_dropout_prob"] == derived["hidden_dropout_prob"]
    assert saved["training"]["per_device_train_batch_size"] == derived["per_device_train_batch_size"]
    assert saved["recipe"]["statistics"]["users"] > 0
    card = (tmp_path / "run" / "README.md").read_text()  # the card says what the data decided, and why
    assert f"hidden_dropout_prob = {derived['hidden_dropout_prob']} (" in card and "interactions per item" in card


def test_measured_interval_validates_once_then_waits_for_the_phase_share():
    args = SimpleNamespace(world_size=1, device="cpu", eval_strategy="epoch")
    budget = TimeBudgetCallback(minutes=10.0, decay_fraction=0.5, eval_interval=None)

    def epoch(seconds: float, elapsed: float, number: float) -> bool:
        budget.start = time.monotonic() - elapsed
        budget._epoch_start = time.monotonic() - seconds
        control = TrainerControl(should_evaluate=True, should_save=True)
        state = SimpleNamespace(epoch=number, global_step=int(number) * 10, max_steps=10_000)
        validated = budget.on_epoch_end(args, state, control).should_evaluate
        if validated:
            budget.on_evaluate(args, state, control, metrics={"eval_runtime": 5.0})
        return validated

    # epochs of 10 s and validations of 5 s: ~5% of the high-rate phase is a validation every 10 epochs
    high = [epoch(10.0, 60.0, e) for e in range(1, 22)]
    assert [e for e, v in zip(range(1, 22), high, strict=True) if v] == [1, 11, 21]
    # after the rate has halved (7.5 of 10 minutes): ~25% is a validation every 2 epochs
    low = [epoch(10.0, 500.0, e) for e in range(22, 28)]
    assert low == [False, True, False, True, False, True]
