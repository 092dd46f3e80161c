"""The training/evaluation collator: padding, labels, and which window of a long history is kept."""

import numpy as np
import pytest
import torch

from hf_recsys.data.collator import IGNORE_INDEX, NextItemCollator, right_padded

ROWS = [
    {"input_ids": list(range(1, 10)), "target": 10, "user_index": 1},  # 10 items: longer than the window
    {"input_ids": [7, 8], "target": 9, "user_index": 2},
]


def test_training_batch_keeps_the_most_recent_window_by_default():
    batch = NextItemCollator(max_length=4)(ROWS)
    assert batch["input_ids"].tolist() == [[6, 7, 8, 9], [7, 8, 0, 0]]
    assert batch["labels"].tolist() == [[7, 8, 9, 10], [8, 9, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["user_ids"].tolist() == [1, 2]
    assert "user_features" not in batch  # the model holds each known user's feature values


def test_positional_arguments_are_max_length_train_random_crop_use_users():
    """make_trainer builds its collators positionally: the 4th argument is use_users (no user feature table)."""
    batch = NextItemCollator(4, False, False, False, seen_history=True)(ROWS)
    assert "user_ids" not in batch and "user_features" not in batch
    assert batch["seen_ids"].tolist() == [list(range(1, 10)), [7, 8, 0, 0, 0, 0, 0, 0, 0]]
    with_users = NextItemCollator(4, True, False, True)(ROWS)
    assert with_users["user_ids"].tolist() == [1, 2] and "user_features" not in with_users


def test_random_crop_draws_every_window_of_consecutive_items():
    collate = NextItemCollator(max_length=4, random_crop=True)
    torch.manual_seed(0)
    starts = set()
    for _ in range(200):
        batch = collate(ROWS[:1])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        assert ids == list(range(ids[0], ids[0] + 4)) and labels == [i + 1 for i in ids]
        starts.add(ids[0])
    assert starts == set(range(1, 7))  # windows 1-5 ... 6-10 of the 10-item sequence


def test_evaluation_batch_keeps_the_history_and_the_single_target():
    batch = NextItemCollator(max_length=4, train=False, use_users=False)(ROWS)
    assert batch["input_ids"].tolist() == [[6, 7, 8, 9], [7, 8, 0, 0]]
    assert batch["labels"].tolist() == [10, 9]
    assert "user_ids" not in batch


def test_right_padded_lays_sequences_out_left_aligned_with_the_fill():
    """One layout for every token batch: lists, numpy arrays and empty rows; never narrower than one column."""
    out = right_padded([[3, 1], np.array([5, 6, 7]), []], fill=-1)
    assert out.dtype == torch.long
    assert out.tolist() == [[3, 1, -1], [5, 6, 7], [-1, -1, -1]]
    assert right_padded([[], []]).tolist() == [[0], [0]]
    assert right_padded([]).shape == (0, 1)
    with pytest.raises(ValueError):
        right_padded([["a", "b"]])


def test_all_windows_trains_every_target_once_and_keeps_the_latest_window():
    import datasets

    from hf_recsys.training import all_windows

    rows = datasets.Dataset.from_list([*ROWS, {"input_ids": [3, 4, 5, 6], "target": 7, "user_index": 3}])
    windows = all_windows(rows, max_length=4)
    sequences = [[*r["input_ids"], r["target"]] for r in windows]
    # the 10-item history: its most recent window (as the collator cuts it), then the ones before it
    assert sequences[0] == [6, 7, 8, 9, 10] and sequences[1] == [2, 3, 4, 5, 6] and sequences[2] == [1, 2]
    assert windows["user_index"] == [1, 1, 1, 2, 3]
    assert sequences[3:] == [[7, 8, 9], [3, 4, 5, 6, 7]]  # rows that fit the window are unchanged
    batch = NextItemCollator(max_length=4)([windows[i] for i in range(3)])
    targets = sorted(t for t in batch["labels"].flatten().tolist() if t != IGNORE_INDEX)
    assert targets == list(range(2, 11))  # every item after the first is a target, exactly once
    assert batch["input_ids"][0].tolist() == NextItemCollator(max_length=4)(ROWS[:1])["input_ids"][0].tolist()


def test_all_windows_is_the_default_unless_random_crop():
    from hf_recsys.training import DataArguments

    assert DataArguments(dataset="ml-100k").all_windows
    assert DataArguments(dataset="ml-100k", random_crop=True).all_windows is False
    with pytest.raises(ValueError, match="all_windows and --random_crop"):
        DataArguments(dataset="ml-100k", all_windows=True, random_crop=True)
