"""Baselines scored by the same full-ranking evaluation as the model.

- `popularity`: rank items by how often they occur in the histories being evaluated (everything before each
  user's target), exclude what the user has seen. The "most popular" baseline of every recsys paper and of the
  original notebook.
- `notebook_recipe_config`: the original notebook's model (a transformer over 4-movie windows with sinusoidal
  positions and the user embedding concatenated before the output layer), rebuilt with this package's model so
  that it is trained and evaluated on exactly the same data and code as the default recipe.
"""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset

from .data.collator import right_padded
from .metrics import KS, ranking_metrics, top_k_excluding_seen
from .modeling import RecTransformerConfig


def item_counts(dataset: Dataset, vocab_size: int, include_targets: bool = False) -> np.ndarray:
    """Occurrences of each item token (index = token) in the rows' histories (and targets if asked)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for batch in dataset.select_columns(["input_ids", "target"]).with_format("numpy").iter(batch_size=1024):
        flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in batch["input_ids"]] or [np.zeros(0, np.int64)])
        counts += np.bincount(flat, minlength=vocab_size)[:vocab_size]
        if include_targets:
            counts += np.bincount(np.asarray(batch["target"], dtype=np.int64), minlength=vocab_size)[:vocab_size]
    counts[0] = 0
    return counts


def evaluate_popularity(
    dataset: Dataset,
    num_items: int,
    counts: np.ndarray | None = None,
    exclude_seen: bool = True,
    ks: tuple[int, ...] = KS,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Full-ranking metrics of the most-popular recommender on `dataset` (rows: history -> target).

    `counts` defaults to the item frequencies in the evaluated histories, i.e. all interactions that precede
    the targets under leave-one-out.
    """
    if counts is None:
        counts = item_counts(dataset, num_items + 1)
    scores = torch.as_tensor(counts, dtype=torch.float32)
    tops, targets = [], []
    k = max(*ks, 10)  # coverage@10 needs the top 10
    for batch in dataset.select_columns(["input_ids", "target"]).iter(batch_size=batch_size):
        seen = right_padded(batch["input_ids"])
        tops.append(top_k_excluding_seen(scores.expand(len(seen), -1), seen, k, exclude_seen=exclude_seen).numpy())
        targets.append(np.asarray(batch["target"]))
    return ranking_metrics(np.concatenate(tops), np.concatenate(targets), num_items, ks=ks)


# The original notebook's model: 3 history movies (windows of 4), sinusoidal positions, the user embedding
# concatenated with the transformer output, one block, full softmax. Shared by `notebook_recipe_config` and
# the benchmark (which trains it through `ModelArguments(**NOTEBOOK_RECIPE)` with max length 3).
NOTEBOOK_RECIPE: dict = {
    "hidden_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 256,
    "position_embedding_type": "sinusoidal",
    "user_conditioning": "concat",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "exclude_seen_in_loss": False,  # the notebook's softmax covered the whole catalogue
    "relative_attention_bias": False,
}
NOTEBOOK_MAX_LENGTH = 3


def notebook_recipe_config(num_items: int, num_users: int) -> RecTransformerConfig:
    """The original notebook's model as a config (see `NOTEBOOK_RECIPE`)."""
    return RecTransformerConfig(
        num_items=num_items, num_users=num_users, max_position_embeddings=NOTEBOOK_MAX_LENGTH, **NOTEBOOK_RECIPE
    )
