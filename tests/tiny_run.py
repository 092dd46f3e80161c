"""A tiny but complete run folder (weights, code, vocabularies, results) shared by the Hub/inference tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hf_recsys.data.vocab import ItemVocab, UserVocab, save_vocabs
from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction

TITLES = [
    "Toy Story (1995)",
    "Jumanji (1995)",
    "Grumpier Old Men (1995)",
    "Heat (1995)",
    "Sabrina (1995)",
    "Sabrina (1954)",
    "GoldenEye (1995)",
    "Casino (1995)",
    "Star Wars: Episode IV - A New Hope (1977)",
    "Star Wars: Episode V - The Empire Strikes Back (1980)",
    "Fargo (1996)",
    "Braveheart (1995)",
]
GENRES = [["Animation", "Comedy"], ["Adventure"], ["Comedy"], ["Action"], ["Romance"], ["Romance"]] * 2
MOVIE_IDS = [1, 2, 3, 6, 7, 915, 10, 16, 260, 1196, 608, 110]
USER_IDS = [11, 22, 33]
# The same catalogue with string ids (e-commerce style); ascending string order = ascending MOVIE_IDS order,
# so tokens (and the popularity order) are the same as for the int run.
STRING_MOVIE_IDS = [f"B{m:06d}X" for m in MOVIE_IDS]
STRING_USER_IDS = ["AFSKPY37N3C43SOI5IEXEK5JSIYA", "AGZZ22", "AHZZ33"]


def make_tiny_run(folder: Path, user_conditioning: str = "add", seed: int = 0, string_ids: bool = False) -> Path:
    """Write a run folder like training does (untrained weights, real file layout); return its path.

    ``string_ids`` gives items the ids of ``STRING_MOVIE_IDS`` and users those of ``STRING_USER_IDS``.
    """
    torch.manual_seed(seed)
    items = ItemVocab(
        STRING_MOVIE_IDS if string_ids else MOVIE_IDS,
        titles=TITLES,
        years=[int(t[-5:-1]) for t in TITLES],
        genres=GENRES,
    )
    users = UserVocab(
        STRING_USER_IDS if string_ids else USER_IDS,
        gender=["M", "F", "M"],
        age=["18", "25", "35"],
        occupation=["1", "2", "3"],
    )
    config = RecTransformerConfig(
        num_items=items.num_items,
        num_users=users.num_users,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=8,
        user_conditioning=user_conditioning,
        exclude_seen_in_loss=True,
    )
    model = RecTransformerForNextItemPrediction(config).eval()
    model.set_item_popularity(torch.arange(items.num_items + 1, dtype=torch.float32).flip(0) * (torch.arange(13) > 0))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    save_vocabs(folder, items, users)
    metrics = {"ndcg@10": 0.21, "hr@10": 0.35, "mrr@10": 0.15, "coverage@10": 0.5}
    results = {
        "model": "rec-transformer-tiny",
        "dataset": "ml-1m",
        "protocol": "leave-one-out",
        "metrics": {"validation": metrics, "test": {k: v * 0.9 for k, v in metrics.items()}},
        "baselines": {"popularity": {"validation": {"ndcg@10": 0.02, "hr@10": 0.04}, "test": {"ndcg@10": 0.019}}},
        "published": {"SASRec (CE)": {"ndcg@10": 0.182, "hr@10": 0.315}},
        "history": [{"epoch": 1, "valid_ndcg@10": 0.1, "loss": 7.0}, {"epoch": 2, "valid_ndcg@10": 0.21, "loss": 6.0}],
        "training": {"learning_rate": 1e-3, "num_train_epochs": 2, "per_device_train_batch_size": 128, "seed": seed},
        "train_seconds": 1.0,
        "git_commit": "0000000",
        "date": "2026-11-28T00:00:00",
    }
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    return folder
