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
