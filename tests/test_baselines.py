import math

import numpy as np
import pytest
from datasets import Dataset

from hf_recsys.baselines import NOTEBOOK_RECIPE, evaluate_popularity, item_counts, notebook_recipe_config


def _rows():
    # item 1 is the most frequent in the histories, then 2, then 3
    return Dataset.from_dict(
        {
            "input_ids": [[1, 2, 1], [1, 3], [2, 1, 4], [5]],
            "target": [2, 1, 3, 1],
            "user_index": [1, 2, 3, 4],
        }
    )


def test_item_counts_histories_and_targets():
    counts = item_counts(_rows(), vocab_size=7)
    assert counts.tolist() == [0, 4, 2, 1, 1, 1, 0]
    with_targets = item_counts(_rows(), vocab_size=7, include_targets=True)
    assert with_targets.tolist() == [0, 6, 3, 2, 1, 1, 0]


def test_popularity_ranks_by_count_and_excludes_seen():
    metrics = evaluate_popularity(_rows(), num_items=6, ks=(1, 5))
    # row 1: seen {1,2} -> ranking 3,4,5,6: target 2 was seen -> miss
    # row 2: seen {1,3} -> ranking 2,4,5,6: target 1 seen -> miss
    # row 3: seen {1,2,4} -> ranking 3,5,6: target 3 at rank 1 -> hit
    # row 4: seen {5} -> ranking 1,2,3,4,6: target 1 at rank 1 -> hit
    assert metrics["hr@1"] == pytest.approx(0.5)
    assert metrics["ndcg@5"] == pytest.approx(0.5)
    kept = evaluate_popularity(_rows(), num_items=6, ks=(1, 5), exclude_seen=False)
    # without exclusion the ranking is 1,2,3,4,5,6 for everyone: targets 2,1,3,1 at ranks 2,1,3,1
    expected_ndcg5 = (1 / math.log2(3) + 1 + 1 / math.log2(4) + 1) / 4
    assert kept["ndcg@5"] == pytest.approx(expected_ndcg5)
    assert kept["hr@1"] == pytest.approx(0.5)


def test_notebook_recipe_is_the_original_model():
    config = notebook_recipe_config(num_items=100, num_users=10)
    assert config.max_position_embeddings == 3
    assert config.position_embedding_type == "sinusoidal"
    assert config.user_conditioning == "concat"
    assert all(getattr(config, k) == v for k, v in NOTEBOOK_RECIPE.items())
    assert np.isclose(config.hidden_dropout_prob, 0.1)
