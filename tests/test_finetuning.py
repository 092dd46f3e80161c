"""Fine-tuning: vocabulary growth, remapping new data into pretrained tokens, model growth, freezing, and an
end-to-end `hf-recsys train --model_name_or_path` run on synthetic data with new movies and users (< 60 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_run import MOVIE_IDS, USER_IDS, make_tiny_run

from hf_recsys.data import ROW_FEATURES
from hf_recsys.data.vocab import ItemVocab, UnknownItemError, UserVocab, load_vocabs, save_vocabs
from hf_recsys.finetuning import (
    align_to_pretrained,
    item_token_map,
    load_pretrained_vocabs,
    prepare_model_for_finetuning,
    remap_dataset,
    trainable_parameter_names,
)
from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction
from hf_recsys.training import RecTrainingArguments, make_trainer, with_lengths

REPO_ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("single_thread")


@dataclass
class Data:
    """The part of MovieLensData that align_to_pretrained reads."""

    dataset: datasets.DatasetDict
    items: ItemVocab
    users: UserVocab


def pretrained_vocabs() -> tuple[ItemVocab, UserVocab]:
    items = ItemVocab([10, 20, 30, 40], titles=["A", "B", "C", "D"], genres=[["Drama"]] * 4)
    users = UserVocab([1, 2, 3], gender=["F", "M", "F"])
    return items, users


def new_data() -> Data:
    """New interactions tokenized with their own vocabularies (as load_movielens does): movies 20, 40 known,
    5, 25, 50 new; user 2 known, users 7, 9 new."""
    items = ItemVocab([5, 20, 25, 40, 50], titles=["E", "B2", "F", "D2", "G"], genres=[["Noir"], [], [], [], []])
    users = UserVocab([2, 7, 9], gender=["M", "X", None])
    movie_rows = {  # user -> (history movie ids, target movie id)
        "train": [(2, [20, 40], 5), (7, [5, 25], 50), (9, [40], 20)],
        "validation": [(2, [20, 40, 5], 25)],
        "test": [(7, [5, 25, 50], 40), (9, [40, 20], 50)],
    }
    splits = {}
    for split, rows in movie_rows.items():
        splits[split] = datasets.Dataset.from_dict(
            {
                "user_id": [u for u, _, _ in rows],
                "user_index": users.encode_many([u for u, _, _ in rows]).tolist(),
                "input_ids": [items.encode_many(h).tolist() for _, h, _ in rows],
                "target": items.encode_many([t for _, _, t in rows]).tolist(),
                "timestamp": [0] * len(rows),
            },
            features=ROW_FEATURES,
        )
    return Data(datasets.DatasetDict(splits), items, users)


def movies_of(dataset: datasets.Dataset, items: ItemVocab) -> list[tuple[int, list[int], int]]:
    return [
        (row["user_id"], items.decode_many(row["input_ids"]).tolist(), items.decode(row["target"])) for row in dataset
    ]


# --------------------------------------------------------------------------------------------------------
# Vocabulary growth and remapping
# --------------------------------------------------------------------------------------------------------
def test_align_grows_vocabularies_and_remaps_every_split(tmp_path) -> None:
    items, users = pretrained_vocabs()
    data = new_data()
    aligned, new_items, new_users, report = align_to_pretrained(data, items, users)

    # old ids keep their tokens, new ones are appended in ascending id order, metadata comes from the new data
    assert new_items.item_ids.tolist() == [10, 20, 30, 40, 5, 25, 50]
    assert [new_items.encode(m) for m in (10, 20, 30, 40)] == [1, 2, 3, 4]
    assert new_items.title(2) == "B" and new_items.title(5) == "E" and new_items.genres(5) == ["Noir"]
    assert new_items.genre_names == ["Drama", "Noir"]
    assert new_users.user_ids.tolist() == [1, 2, 3, 7, 9] and new_users.encode(2) == 2
    assert new_users.categories("gender") == ["F", "M", "X"] and new_users.features(4) == [3]
    assert aligned.items is new_items and aligned.users is new_users

    # every row names the same movies and users as before, in the extended tokens
    for split in ("train", "validation", "test"):
        before, after = data.dataset[split], aligned.dataset[split]
        assert after.features == before.features
        assert movies_of(after, new_items) == movies_of(before, data.items)
        np.testing.assert_array_equal(after["user_index"], new_users.encode_many(after["user_id"]))
    assert aligned.dataset["train"]["input_ids"][0] == [2, 4]  # movies 20, 40: their pretrained tokens

    assert report.num_new_items == 3 and report.new_item_ids == [5, 25, 50]
    assert report.num_new_users == 2 and report.new_user_ids == [7, 9]
    assert report.rows == {"train": 3, "validation": 1, "test": 2}
    assert report.rows_new_target == {"train": 2, "validation": 1, "test": 1}
    assert report.rows_new_user == {"train": 2, "validation": 0, "test": 2}
    assert "items: 4 pretrained + 3 new" in report.summary()
    json.dumps(report.to_dict())

    # the run folder's vocabularies round-trip exactly
    save_vocabs(tmp_path, new_items, new_users)
    it, us = load_vocabs(tmp_path)
    assert it == new_items and us == new_users and it.item_ids.tolist() == [10, 20, 30, 40, 5, 25, 50]
    # aligning again to the grown vocabularies changes nothing (idempotent)
    again, it2, us2, report2 = align_to_pretrained(aligned, new_items, new_users)
    assert it2 == new_items and us2 == new_users and report2.num_new_items == 0
    assert again.dataset["test"]["input_ids"] == aligned.dataset["test"]["input_ids"]


def string_data() -> Data:
    """new_data() with e-commerce string ids: items "B0020", "B0040" known, "A0005", "B0025", "C0050" new; user
    "u2" known, "AFSKPY37N3C43SOI5IEXEK5JSIYA" and "u9" new."""
    items = ItemVocab(["A0005", "B0020", "B0025", "B0040", "C0050"], titles=["E", "B2", "F", "D2", "G"])
    users = UserVocab(["u2", "AFSKPY37N3C43SOI5IEXEK5JSIYA", "u9"], gender=["M", "X", None])
    new_user = "AFSKPY37N3C43SOI5IEXEK5JSIYA"
    movie_rows = {
        "train": [
            ("u2", ["B0020", "B0040"], "A0005"),
            (new_user, ["A0005", "B0025"], "C0050"),
            ("u9", ["B0040"], "B0020"),
        ],
        "test": [(new_user, ["A0005", "B0025", "C0050"], "B0040")],
    }
    features = datasets.Features({**ROW_FEATURES, "user_id": datasets.Value("string")})
    splits = {
        split: datasets.Dataset.from_dict(
            {
                "user_id": [u for u, _, _ in rows],
                "user_index": users.encode_many([u for u, _, _ in rows]).tolist(),
                "input_ids": [items.encode_many(h).tolist() for _, h, _ in rows],
                "target": items.encode_many([t for _, _, t in rows]).tolist(),
                "timestamp": [0] * len(rows),
            },
            features=features,
        )
        for split, rows in movie_rows.items()
    }
    return Data(datasets.DatasetDict(splits), items, users)


def test_align_with_string_ids(tmp_path) -> None:
    items = ItemVocab(["B0010", "B0020", "B0030", "B0040"], titles=["A", "B", "C", "D"])
    users = UserVocab(["u1", "u2", "u3"], gender=["F", "M", "F"])
    data = string_data()
    aligned, new_items, new_users, report = align_to_pretrained(data, items, users)
    assert new_items.id_type == "str" and new_users.id_type == "str"
    assert new_items.item_ids.tolist() == ["B0010", "B0020", "B0030", "B0040", "A0005", "B0025", "C0050"]
    assert [new_items.encode(m) for m in ("B0010", "B0020", "B0030", "B0040")] == [1, 2, 3, 4]
    assert new_items.title(2) == "B" and new_items.title(5) == "E"
    assert new_users.user_ids.tolist() == ["u1", "u2", "u3", "AFSKPY37N3C43SOI5IEXEK5JSIYA", "u9"]
    for split in ("train", "test"):
        before, after = data.dataset[split], aligned.dataset[split]
        assert movies_of(after, new_items) == movies_of(before, data.items)
        np.testing.assert_array_equal(after["user_index"], new_users.encode_many(after["user_id"]))
    assert aligned.dataset["train"]["input_ids"][0] == [2, 4]  # "B0020", "B0040": their pretrained tokens
    assert report.new_item_ids == ["A0005", "B0025", "C0050"] and all(type(m) is str for m in report.new_item_ids)
    assert report.new_user_ids == ["AFSKPY37N3C43SOI5IEXEK5JSIYA", "u9"]
    assert report.rows_new_target == {"train": 2, "test": 0} and report.rows_new_user == {"train": 2, "test": 1}
    json.dumps(report.to_dict())
    save_vocabs(tmp_path, new_items, new_users)
    it, us = load_vocabs(tmp_path)
    assert it == new_items and us == new_users and it.id_type == "str"
    again, it2, _, report2 = align_to_pretrained(aligned, it, us)
    assert it2 == new_items and report2.num_new_items == 0 and report2.num_new_users == 0
    assert again.dataset["test"]["input_ids"] == aligned.dataset["test"]["input_ids"]
    # a pretrained model with int ids cannot take data with string ids (no silent conversion)
    with pytest.raises(ValueError, match=r"movie ids must be integers \(this vocabulary's id type\)"):
        align_to_pretrained(data, *pretrained_vocabs())
    with pytest.raises(UnknownItemError, match="item id 'A0005'"):
        item_token_map(data.items, items)


def test_remap_dataset_bad_input() -> None:
    data = new_data()
    with pytest.raises(ValueError, match="item token 5 is outside the source vocabulary"):
        remap_dataset(data.dataset["test"], np.arange(5))  # a table for 4 movies; the data has token 5
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['target'\]"):
        remap_dataset(data.dataset["test"].remove_columns("target"), np.arange(6))
    with pytest.raises(UnknownItemError, match="item id 5 "):
        item_token_map(data.items, ItemVocab([20]))  # the target vocabulary must contain every source movie
    with pytest.raises(TypeError, match=r"needs data with \.dataset"):
        align_to_pretrained(data.dataset, *pretrained_vocabs())
    # a dataset with a select() indices mapping and an empty split remap fine
    picked = remap_dataset(data.dataset["train"].select([2, 0]), np.arange(6) + 10)
    assert picked["target"] == [12, 11]
    empty = data.dataset["train"].select([])
    assert len(remap_dataset(empty, np.arange(6))) == 0


def test_load_pretrained_vocabs_from_folder_and_hub(tmp_path, monkeypatch) -> None:
    run = make_tiny_run(tmp_path / "run")
    model = RecTransformerForNextItemPrediction.from_pretrained(run)
    items, users = load_pretrained_vocabs(run, model)
    assert items.item_ids.tolist() == sorted(MOVIE_IDS) and users.user_ids.tolist() == USER_IDS

    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    def fake_download(repo_id: str, filename: str, **kwargs: object) -> str:
        assert repo_id == "someone/rec-model"
        if (run / filename).is_file():
            return str(run / filename)
        raise EntryNotFoundError(f"{filename} not found")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert load_pretrained_vocabs("someone/rec-model", model)[0] == items
    (run / "user_vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"someone/rec-model has no user_vocab\.json"):
        load_pretrained_vocabs("someone/rec-model")
    with pytest.raises(FileNotFoundError, match=r"user_vocab\.json"):
        load_pretrained_vocabs(run)
    save_vocabs(run, ItemVocab([1, 2]), UserVocab(USER_IDS))
    with pytest.raises(ValueError, match="has 2 movies but the model scores 12"):
        load_pretrained_vocabs(run, model)


# --------------------------------------------------------------------------------------------------------
# Model growth and freezing
# --------------------------------------------------------------------------------------------------------
GENDER = {"name": "gender", "size": 3, "max_values": 1}


def tiny_model(**overrides) -> RecTransformerForNextItemPrediction:
    torch.manual_seed(0)
    kwargs = {
        "num_items": 40, "num_users": 6, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 10, "hidden_dropout_prob": 0.0,
        "user_conditioning": "add", "user_feature_fields": [GENDER],
    }  # fmt: skip
    kwargs.update(overrides)
    return RecTransformerForNextItemPrediction(RecTransformerConfig(**kwargs)).eval()


def vocabs_for(model: RecTransformerForNextItemPrediction) -> tuple[ItemVocab, UserVocab]:
    items = ItemVocab(np.arange(1, model.config.num_items + 1) * 10)
    users = UserVocab(np.arange(1, model.config.num_users + 1), gender=(["F", "M"] * 10)[: model.config.num_users])
    return items, users


HISTORIES = torch.tensor([[1, 5, 9, 0, 0], [2, 3, 4, 5, 6], [40, 0, 0, 0, 0], [7, 7, 8, 0, 0]])
USERS = torch.tensor([1, 0, 6, 3])


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_grown_model_keeps_old_recommendations(tied: bool) -> None:
    model = tiny_model(tie_word_embeddings=tied)
    items, users = vocabs_for(model)
    model.set_user_features({"gender": torch.tensor([[0], [1], [2], [1], [2], [1], [2]])})  # the known users'
    before = model(HISTORIES, user_ids=USERS).logits
    top_before = model.recommend(HISTORIES, user_ids=USERS, k=10)
    old_state = {k: v.clone() for k, v in model.state_dict().items()}

    grown_items = items.extend([5, 7, 1000, 10])  # 3 new movies (10 is known)
    grown_users = users.extend([9, 8, 1], gender=["X", "F", None])  # 2 new users, a new gender category
    prepare_model_for_finetuning(model, grown_items, grown_users, freeze_transformer=False)
    # the fields' tables do not grow: a category the model never saw is "unknown" (0)
    assert model.config.num_items == 43 and model.config.num_users == 8 and model.config.user_feature_fields == [GENDER]
    assert model.rec_transformer.user.user_features.bags[0].num_embeddings == 3

    after = model(HISTORIES, user_ids=USERS).logits
    assert after.shape == (4, 44)
    assert torch.equal(after[:, :41], before)  # old movies: the very same scores
    # a new movie starts at the mean embedding: its score is the mean old score (never above the old top-k)
    torch.testing.assert_close(after[:, 41:], before[:, 1:].mean(1, keepdim=True).expand(-1, 3))
    top_after = model.recommend(HISTORIES, user_ids=USERS, k=10)
    assert torch.equal(top_after.item_ids, top_before.item_ids)
    assert torch.equal(top_after.scores, top_before.scores)
    # old rows bit-identical (the users' stored feature values included); new users are served as the unknown
    # user, with unknown features until they are given
    state = model.state_dict()
    for name, old in old_state.items():
        assert torch.equal(state[name][: old.shape[0]], old), name
    assert not model.rec_transformer.user.user_feature_values[7:].any()
    as_new_user = model(HISTORIES, user_ids=torch.tensor([7, 8, 7, 8])).logits
    as_stranger = model(HISTORIES, user_ids=torch.zeros(4, dtype=torch.long)).logits
    torch.testing.assert_close(as_new_user[:, :41], as_stranger[:, :41], rtol=0, atol=0)
    # a request may still pass a new user's own values
    with_gender = model(HISTORIES, user_ids=torch.tensor([7, 8, 7, 8]), user_features=torch.tensor([[2]] * 4))
    assert not torch.allclose(with_gender.logits[:, 1:41], as_stranger[:, 1:41])
    assert all(p.requires_grad for p in model.parameters())


def item_table(ids: list[int], genres: list[str | None], years: list[float | None]):
    """EncodedFeatures of items ``ids`` (in token order): genres (multi), decade (categorical), year (numeric)."""
    import pandas as pd

    from hf_recsys.data.features import build_feature_fields, read_feature_table

    decades = [None if y is None else f"{int(y) // 10 * 10}s" for y in years]
    table = pd.DataFrame({"movie_id": ids, "genres": genres, "decade": decades, "year": years})
    kinds = {"genres": "multi", "decade": "categorical", "year": "numeric"}
    return build_feature_fields(read_feature_table(table, "movie_id", kinds=kinds), ids)


def test_new_movies_get_their_features_in_the_pretrained_fields_while_old_rows_hold() -> None:
    """feature_rows re-encodes the new data's features with the pretrained model's own fields (by value name,
    numeric by bucket) in the extended vocabulary's rows; prepare_model_for_finetuning writes the new movies' rows
    only: the old movies keep theirs bit-identical, values the model never saw are unknown (0)."""
    from hf_recsys.finetuning import feature_rows

    old_ids = [10, 20, 30]
    pretrained = item_table(old_ids, ["A", "B", "A|B"], [1975.0, 1983.0, 1999.0])
    fields = list(pretrained.fields.values())
    config_fields = [{"name": f.name, "size": f.size, "max_values": f.max_values} for f in fields]
    model = tiny_model(num_items=3, item_feature_fields=config_fields, user_conditioning="none", user_feature_fields=[])
    model.set_item_features(pretrained.matrices)
    old_values = model.rec_transformer.embeddings.item_feature_values.clone()
    old_logits = model(HISTORIES.clamp_max(3)).logits

    # new data, tokenized with its own vocabulary: movie 20 known (its genres changed), 40 and 5 new
    items = ItemVocab(old_ids)
    new_items = ItemVocab([5, 20, 40])
    new = item_table([5, 20, 40], ["B|C", "C", "A|C|B"], [2005.0, 1983.0, 1978.0])
    grown = items.extend(new_items.item_ids)  # tokens: 10, 20, 30 | 5, 40
    rows = feature_rows(new, fields, item_token_map(new_items, grown), len(grown))
    assert set(rows) == {"genres", "decade", "year"} and all(m.shape[0] == 6 for m in rows.values())
    genres, decade = pretrained.fields["genres"], pretrained.fields["decade"]
    a, b = genres.vocabulary["A"], genres.vocabulary["B"]
    assert rows["genres"][4].tolist() == [b, 0]  # movie 5: B, C (C has no row in the model)
    assert rows["genres"][5].tolist() == [a, b]  # movie 40: A, B
    assert rows["decade"][4, 0] == 0 and rows["decade"][5, 0] == decade.vocabulary["1970s"]  # 2000s: unknown
    assert pretrained.fields["year"].edges == [1983.0, 1999.0]  # buckets < 1983 | [1983, 1999) | >= 1999
    assert rows["year"][:, 0].tolist()[4:] == [3, 1]  # 2005 -> >= 1999; 1978 -> < 1983
    assert not rows["genres"][0].any() and not rows["genres"][3].any()  # padding; movie 30 is not in the new data

    prepare_model_for_finetuning(model, grown, UserVocab([1]), item_features=rows)
    table = model.rec_transformer.embeddings.item_feature_values
    assert table.shape == (6, old_values.shape[1])
    assert torch.equal(table[:4], old_values)  # old movies bit-identical, even movie 20 whose genres changed
    expected_new = np.concatenate([rows["genres"][4:], rows["decade"][4:], rows["year"][4:]], axis=1)
    assert table[4:].tolist() == expected_new.tolist()
    assert torch.equal(model(HISTORIES.clamp_max(3)).logits[:, :4], old_logits)
    # the new movies' features shape their vectors: same id embedding, different features, different vectors
    emb = model.rec_transformer.embeddings
    assert emb.side_vectors(torch.tensor([4, 5])).abs().sum(-1).gt(0).all()


def test_new_users_get_their_features_in_the_pretrained_fields() -> None:
    """feature_rows + prepare_model_for_finetuning(user_features=...) for users: new users' rows are written in
    the model's fields (a category it never saw is 0), the known users' rows stay."""
    import pandas as pd

    from hf_recsys.data.features import build_feature_fields, read_feature_table
    from hf_recsys.finetuning import feature_rows, user_index_map

    def user_table(ids, genders):
        table = pd.DataFrame({"user_id": ids, "gender": genders})
        return build_feature_fields(read_feature_table(table, "user_id", kinds="categorical"), ids)

    pretrained = user_table([1, 2, 3, 4, 5, 6], ["F", "M"] * 3)
    gender = pretrained.fields["gender"]
    model = tiny_model(user_feature_fields=[{"name": "gender", "size": gender.size, "max_values": 1}])
    model.set_user_features(pretrained.matrices)
    old_values = model.rec_transformer.user.user_feature_values.clone()
    users = UserVocab([1, 2, 3, 4, 5, 6])
    new_users = UserVocab([2, 7, 9])
    grown = users.extend(new_users.user_ids)  # 7 -> index 7, 9 -> index 8
    rows = feature_rows(user_table([2, 7, 9], ["F", "M", "X"]), [gender], user_index_map(new_users, grown), len(grown))
    assert rows["gender"][:, 0].tolist() == [0, 0, gender.vocabulary["F"], 0, 0, 0, 0, gender.vocabulary["M"], 0]
    items = ItemVocab(np.arange(1, 41) * 10)
    prepare_model_for_finetuning(model, items, grown, user_features=rows)
    values = model.rec_transformer.user.user_feature_values
    assert torch.equal(values[:7], old_values)  # user 2 keeps the value the model was trained with
    assert values[7:, 0].tolist() == [gender.vocabulary["M"], 0]
    # the model serves a new user with the stored features (no request values needed)
    known = model(HISTORIES, user_ids=torch.tensor([7, 7, 7, 7])).logits
    given = model(HISTORIES, user_ids=torch.tensor([7, 7, 7, 7]), user_features=values[[7, 7, 7, 7]].long()).logits
    torch.testing.assert_close(known, given)


def test_pretrained_feature_fields_are_read_beside_the_model(tmp_path) -> None:
    from hf_recsys.data.features import save_feature_fields
    from hf_recsys.finetuning import pretrained_feature_fields

    run = make_tiny_run(tmp_path / "run")
    assert pretrained_feature_fields(run) == (None, None)
    fields = list(item_table([10, 20], ["A|B", "B"], [1990.0, 2001.0]).fields.values())
    save_feature_fields(run / "item_fields.json", fields)
    item_fields, user_fields = pretrained_feature_fields(run)
    assert item_fields == fields and user_fields is None


def test_fields_of_a_hub_model_are_none_only_when_the_file_is_absent(monkeypatch) -> None:
    """A Hub repo without a fields file has no fields; a network or access error is raised, not read as 'none'
    (fine-tuning would re-encode the new data's features without the model's fields)."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    from hf_recsys.finetuning import pretrained_feature_fields

    def absent(repo_id, filename, **kwargs):
        raise EntryNotFoundError(f"{filename} not in {repo_id}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", absent)
    assert pretrained_feature_fields("someone/model") == (None, None)

    def unreachable(repo_id, filename, **kwargs):
        raise ConnectionError("503 Service Unavailable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(ConnectionError, match="503"):
        pretrained_feature_fields("someone/model")


def test_prepare_model_bad_input() -> None:
    model = tiny_model()
    items, users = vocabs_for(model)
    with pytest.raises(ValueError, match="has 39 movies but the model already has 40"):
        prepare_model_for_finetuning(model, ItemVocab(range(1, 40)), users)
    with pytest.raises(ValueError, match="has 5 users but the model already has 6"):
        prepare_model_for_finetuning(model, items, UserVocab(range(1, 6)))
    with pytest.raises(ValueError, match="gender"):  # feature values that are not the model's fields
        prepare_model_for_finetuning(
            model, items, users.extend([99]), user_features={"age": np.zeros((8, 1), np.int32)}
        )
    with pytest.raises(TypeError, match="ItemVocab and a UserVocab"):
        prepare_model_for_finetuning(model, [1, 2], users)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tied", "bias"), [(True, False), (False, False), (True, True)], ids=["tied", "untied", "tied-bias"]
)
def test_freezing_trains_only_the_embedding_tables(tmp_path, tied: bool, bias: bool) -> None:
    model = tiny_model(tie_word_embeddings=tied, user_feature_fields=[], output_item_bias=bias).train()
    items, users = vocabs_for(model)
    grown_items = items.extend([5, 7, 1000])
    grown_users = users.extend([9])
    prepare_model_for_finetuning(model, grown_items, grown_users, freeze_transformer=True)
    expected = {"rec_transformer.embeddings.item_embeddings.weight", "rec_transformer.user.user_embeddings.weight"}
    if not tied:
        expected.add("output_embeddings.weight")
    if bias:  # a per-item table, like the embeddings: new movies need theirs
        expected.add("output_bias")
    assert set(trainable_parameter_names(model)) == expected
    before = {k: v.clone() for k, v in model.state_dict().items()}

    rows = {  # new movies (41-43) and the new user (7) take part
        "user_id": [1, 2, 9, 3], "user_index": [1, 2, 7, 3], "input_ids": [[1, 2, 41], [5, 6, 7], [42, 3], [8, 9]],
        "target": [43, 8, 41, 10], "timestamp": [0] * 4,
    }  # fmt: skip
    train = with_lengths(datasets.Dataset.from_dict(rows, features=ROW_FEATURES), 10)
    args = RecTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=3, learning_rate=0.05, per_device_train_batch_size=4,
        eval_strategy="no", save_strategy="no", load_best_model_at_end=False, compile_loss=False, use_cpu=True,
        report_to="none", disable_tqdm=True, logging_strategy="no",
    )  # fmt: skip
    make_trainer(model, args, train, None, 10).train()

    after = model.state_dict()
    changed = {name for name, old in before.items() if not torch.equal(after[name], old)}
    # the item/user tables moved (the state dict lists a tied output matrix under both names); blocks, norms,
    # positions and buffers are bit-identical
    assert changed == expected | {"output_embeddings.weight"}
    new_rows = after["rec_transformer.embeddings.item_embeddings.weight"][41:]
    assert not torch.equal(new_rows, before["rec_transformer.embeddings.item_embeddings.weight"][41:])


# --------------------------------------------------------------------------------------------------------
# End to end: hf-recsys train --model_name_or_path <run> on new data with new movies and users
# --------------------------------------------------------------------------------------------------------
NEW_MOVIES = list(range(5000, 5016))  # > 20 movies in all: evaluation ranks top 20


def write_new_period(folder: Path, seed: int = 0) -> Path:
    """ML-20M-format files (ratings.csv, movies.csv): 2 known users + 6 new ones, 8 known movies + 16 new."""
    rng = np.random.default_rng(seed)
    known = [m for m in MOVIE_IDS if m not in (915, 1196, 608, 110)]
    catalogue = np.array(known + NEW_MOVIES)
    lines = ["userId,movieId,rating,timestamp"]
    for user in [11, 22, 50, 51, 52, 53, 54, 55]:
        movies = rng.permutation(catalogue)[: int(rng.integers(8, 15))]
        lines += [f"{user},{m},4.0,{1_000_000 + 100 * i + user}" for i, m in enumerate(movies)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"] + [f"{m},New Movie {m} (2024),Drama|Sci-Fi" for m in NEW_MOVIES]
    movies += [f"{m},Old {m} (1995),Comedy" for m in known]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return folder


def test_finetune_end_to_end_with_train_script(tmp_path) -> None:
    pretrained = make_tiny_run(tmp_path / "pretrained")
    data_root = tmp_path / "data"
    write_new_period(data_root / "ml-20m")
    out = tmp_path / "finetuned"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }  # fmt: skip
    env.pop("HF_RECSYS_DATA_DIR", None)
    args = [
        sys.executable, "-m", "hf_recsys", "train", "--model_name_or_path", str(pretrained),
        "--freeze_transformer", "True", "--dataset", "ml-20m", "--data_dir", str(data_root),
        "--cache_dir", str(tmp_path / "cache"), "--output_dir", str(out), "--num_train_epochs", "2",
        "--per_device_train_batch_size", "8", "--learning_rate", "0.01", "--compile_loss", "False",
        "--use_cpu", "True", "--report_to", "none", "--disable_tqdm", "True", "--seed", "3",
    ]  # fmt: skip
    proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"train.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"

    # vocabularies: the pretrained tokens first, unchanged; new movies and users appended in ascending id order
    old_items, old_users = load_vocabs(pretrained)
    items, users = load_vocabs(out)
    assert items.item_ids.tolist() == [*old_items.item_ids.tolist(), *NEW_MOVIES]
    assert users.user_ids.tolist() == [*old_users.user_ids.tolist(), 50, 51, 52, 53, 54, 55]
    assert items.title(items.encode(5001)) == "New Movie 5001 (2024)"
    assert items.title(items.encode(260)) == old_items.title(old_items.encode(260))
    config = json.loads((out / "config.json").read_text())
    assert config["num_items"] == 28 and config["num_users"] == 9

    # frozen transformer: every block/norm/position weight is the pretrained one; the item table trained
    before, after = load_file(pretrained / "model.safetensors"), load_file(out / "model.safetensors")
    for name, tensor in before.items():
        if "item_embeddings" in name or "user_embeddings" in name or "item_counts" in name:
            continue
        assert torch.equal(after[name], tensor), name
    name = "rec_transformer.embeddings.item_embeddings.weight"
    assert after[name].shape == (29, 16) and not torch.equal(after[name][:13], before[name])

    results = json.loads((out / "results.json").read_text())
    assert 0.0 <= results["metrics"]["test"]["ndcg@10"] <= 1.0
    # the fine-tuned folder loads and recommends the new movies by id
    model = RecTransformerForNextItemPrediction.from_pretrained(out)
    history = torch.as_tensor([items.encode_many([1, 5000, 260]).tolist()])
    assert model.recommend(history, k=25).item_ids.shape == (1, 25)


def test_freeze_transformer_needs_a_pretrained_model(tmp_path, monkeypatch) -> None:
    from hf_recsys.training import DataArguments, ModelArguments, run_training

    monkeypatch.delenv("HF_RECSYS_DATA_DIR", raising=False)
    write_new_period(tmp_path / "data" / "ml-20m")
    data_args = DataArguments(dataset="ml-20m", data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    args = RecTrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True, report_to="none", compile_loss=False)
    with pytest.raises(ValueError, match="--freeze_transformer needs --model_name_or_path"):
        run_training(ModelArguments(freeze_transformer=True), data_args, args)
