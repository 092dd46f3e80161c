"""A tiny but complete run folder (weights, code, vocabularies, results) shared by the Hub/inference tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hf_recsys.data.feature_fields import FeatureField, save_feature_fields
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
# Item and user feature fields of the ``fields=True`` run (item_fields.json / user_fields.json, model buffers).
DECADES = [f"{int(t[-5:-1]) // 10 * 10}s" for t in TITLES]
PRICES = [1.0, 2.5, 3.0, 4.5, 5.0, 9.0, None, 2.0, 7.5, 3.5, 4.0, 6.0]  # edges 3 and 5; GoldenEye has none
USER_AGES = ["18", "25", "35"]


def _fields() -> tuple[list[FeatureField], list[FeatureField]]:
    def vocab(values: list[str]) -> dict[str, int]:
        return {v: i for i, v in enumerate(values, start=1)}

    genres = sorted({g for gs in GENRES for g in gs})
    item = [
        FeatureField("genres", "multi", vocab(genres), max_values=2, delimiter="|"),
        FeatureField("decade", "categorical", vocab(sorted(set(DECADES)))),
        FeatureField("price", "numeric", vocab(["< 3.0", "[3.0, 5.0)", ">= 5.0"]), edges=[3.0, 5.0]),
    ]
    user = [
        FeatureField("age", "categorical", vocab(["18", "25", "35", "45"])),
        FeatureField("gender", "categorical", vocab(["F", "M"])),
    ]
    return item, user


def _with_fields(model: RecTransformerForNextItemPrediction, items: ItemVocab, ids: list, folder: Path) -> None:
    """Give ``model`` the item and user fields of ``_fields()`` (values in token / user index order) and save them."""
    item, user = _fields()
    order = [ids.index(items.decode(t)) for t in range(1, items.num_items + 1)]  # token order of the item lists
    prices = [np.nan if p is None else p for p in PRICES]
    raw_item = {"genres": GENRES, "decade": DECADES, "price": prices}
    raw_item = {name: [values[i] for i in order] for name, values in raw_item.items()}
    raw_user = {"age": USER_AGES, "gender": ["M", "F", "M"]}  # USER_IDS are ascending: index order
    pad = np.zeros((1, 1), dtype=np.int32)
    item_values = {
        f.name: np.concatenate([np.zeros((1, f.max_values), np.int32), f.encode_many(raw_item[f.name])]) for f in item
    }
    user_values = {f.name: np.concatenate([pad, f.encode_many(raw_user[f.name])]) for f in user}
    model.set_item_features(item_values)
    model.set_user_features(user_values)
    save_feature_fields(folder / "item_fields.json", item)
    save_feature_fields(folder / "user_fields.json", user)


def make_tiny_run(
    folder: Path, user_conditioning: str = "add", seed: int = 0, string_ids: bool = False, fields: bool = False
) -> Path:
    """Write a run folder like training does (untrained weights, real file layout); return its path.

    ``string_ids`` gives items the ids of ``STRING_MOVIE_IDS`` and users those of ``STRING_USER_IDS``; ``fields``
    gives the model item fields genres (multi), decade (categorical) and price (numeric, edges 3 and 5) and user
    fields age and gender, saved as item_fields.json / user_fields.json.
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
    extra = {}
    if fields:
        item_fields, user_fields = _fields()
        extra = {
            f"{side}_feature_fields": [{"name": f.name, "size": f.size, "max_values": f.max_values} for f in table]
            for side, table in (("item", item_fields), ("user", user_fields))
        }
    config = RecTransformerConfig(
        **extra,
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
    if fields:
        _with_fields(model, items, STRING_MOVIE_IDS if string_ids else MOVIE_IDS, folder)
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
