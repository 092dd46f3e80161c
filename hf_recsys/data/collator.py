"""Batches for training and evaluation: dataset rows -> right-padded tensors the model takes.

A row (see the builder) is "this user, this history, then this next item". For training the collator turns a
row into a next-item sequence (every position predicts the item after it); for evaluation it keeps only the
history and the single target. Right padding lets the model use its fast mask-free causal attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

IGNORE_INDEX = -100


@dataclass
class NextItemCollator:
    """Collate rows with `input_ids` (history tokens), `target` (next token) and `user_index` into a batch.

    Args:
        max_length: the model's `max_position_embeddings`; histories keep their most recent items.
        train: True builds per-position labels (`labels[t] = item t+1`, -100 at padding) from
            `input_ids + [target]`; False builds `labels` = the target (B,) for full-ranking evaluation.
        random_crop: in training, histories longer than `max_length` are cut to a random window of
            `max_length + 1` consecutive items instead of the most recent one, so long histories contribute
            all their items over the epochs. Off by default: training cuts long histories into all their windows
            before the collator (`hf_recsys.training.all_windows`), and on ML-1M a random window tested worse than
            the most recent one. Draws from torch's global RNG, which the Trainer seeds and checkpoints, so resumed
            runs repeat the same crops.
        use_users: put `user_ids` in the batch (False for models without user conditioning).
        seen_history: evaluation only: also put each row's whole history in `seen_ids` (B, H), right-padded
            with 0, for excluding seen items from the ranking. `input_ids` keeps only the most recent
            `max_length` items (what the model reads), but the standard protocol excludes everything the user has
            seen, also before that window (SASRec, gSASRec, SASRec+). Not a model input: `NextItemTrainer`
            takes it out of the batch.
    """

    max_length: int = 200
    train: bool = True
    random_crop: bool = False
    use_users: bool = True
    seen_history: bool = False

    def _sequence(self, row: dict[str, Any]) -> list[int]:
        history = list(row["input_ids"])
        if not self.train:
            return history[-self.max_length :] if self.max_length else history
        sequence = [*history, int(row["target"])]
        window = self.max_length + 1
        if len(sequence) > window:
            start = len(sequence) - window
            if self.random_crop:
                start = int(torch.randint(0, start + 1, ()).item())
            sequence = sequence[start : start + window]
        return sequence

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences = [self._sequence(row) for row in rows]
        if self.train:
            input_ids = right_padded([s[:-1] for s in sequences])
            labels = right_padded([s[1:] for s in sequences], IGNORE_INDEX)
        else:
            input_ids = right_padded(sequences)
            labels = torch.as_tensor([int(row["target"]) for row in rows], dtype=torch.long)
        batch = {"input_ids": input_ids, "labels": labels}
        if self.seen_history and not self.train:
            batch["seen_ids"] = right_padded([row["input_ids"] for row in rows])
        if self.use_users:
            batch["user_ids"] = torch.as_tensor([int(row["user_index"]) for row in rows], dtype=torch.long)
        return batch


def right_padded(sequences: Sequence[Sequence[int]], fill: int = 0) -> torch.Tensor:
    """(B, max(1, longest)) int64 tensor of the sequences, right-padded with `fill`: how every batch of item
    tokens is laid out (the model's mask-free causal attention and `metrics.exclude_items` both take this
    layout). Raises ValueError for entries that are not integers."""
    out = torch.full((len(sequences), max(1, max((len(s) for s in sequences), default=0))), fill, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
    return out
