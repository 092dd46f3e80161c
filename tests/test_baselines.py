import math

import numpy as np
import pytest
from datasets import Dataset

from hf_recsys.baselines import NOTEBOOK_RECIPE, evaluate_popularity, item_counts, notebook_recipe_config


def _rows():
    # popularity in the histories: item 1 (4x) > 2 (3x) > 3 (2x) > 4 (1x); items 5..12 never occur
    return Dataset.from_dict(
        {
            "input_ids": [[1, 1, 1, 1], [2, 2, 2], [3, 3], [4]],
            "target": [3, 1, 4, 2],
            "user_index": [1, 2, 3, 4],
        }
    )


def test_item_counts_histories_and_targets():
    counts = item_counts(_rows(), vocab_size=13)
    assert counts[:6].tolist() == [0, 4, 3, 2, 1, 0]
    with_targets = item_counts(_rows(), vocab_size=13, include_targets=True)
    assert with_targets[:6].tolist() == [0, 5, 4, 3, 2, 0]


def test_popularity_ranks_by_count_and_excludes_seen():
    metrics = evaluate_popularity(_rows(), num_items=12, ks=(1, 5))
    # seen items removed: targets 3, 1, 4, 2 land at ranks 2, 1, 3, 2
    assert metrics["hr@1"] == pytest.approx(0.25)
    assert metrics["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1 + 1 / math.log2(4) + 1 / math.log2(3)) / 4)
    kept = evaluate_popularity(_rows(), num_items=12, ks=(1, 5), exclude_seen=False)
    # one ranking 1, 2, 3, 4 for everyone: targets at ranks 3, 1, 4, 2
    assert kept["ndcg@5"] == pytest.approx((1 / 2 + 1 + 1 / math.log2(5) + 1 / math.log2(3)) / 4)
    assert kept["hr@1"] == pytest.approx(0.25)
    assert 0 < metrics["coverage@10"] <= 1


def test_notebook_recipe_is_the_original_model():
    config = notebook_recipe_config(num_items=100, num_users=10)
    assert config.max_position_embeddings == 3
    assert config.position_embedding_type == "sinusoidal"
    assert config.user_conditioning == "concat"
    assert all(getattr(config, k) == v for k, v in NOTEBOOK_RECIPE.items())
    assert np.isclose(config.hidden_dropout_prob, 0.1)
