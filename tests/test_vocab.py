"""Item/user vocabularies: the token layout of docs/INTERFACES.md, determinism and JSON round trips."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from hf_recsys.data.vocab import (
    ITEM_VOCAB_FILE,
    USER_VOCAB_FILE,
    ItemVocab,
    UnknownItemError,
    UserVocab,
    atomic_write_json,
    load_vocabs,
    save_vocabs,
)


@pytest.fixture
def items() -> ItemVocab:
    # deliberately unsorted input: tokens must follow ascending movie id
    return ItemVocab(
        [50, 7, 1200],
        titles=["Star Wars (1977)", "Sabrina (1995)", "Aliens (1986)"],
        years=[1977, 1995, 1986],
        genres=[["Action", "Sci-Fi"], ["Comedy", "Romance"], ["Action", "Sci-Fi", "Thriller"]],
        genre_names=["Action", "Comedy", "Romance", "Sci-Fi", "Thriller"],
    )


@pytest.fixture
def users() -> UserVocab:
    return UserVocab([30, 10, 20], gender=["M", "F", None], age=["25-34", "18-24", "25-34"], occupation=None)


def test_item_tokens_follow_ascending_movie_id(items: ItemVocab) -> None:
    assert ItemVocab.NUM_SPECIAL == 1 and ItemVocab.PAD_TOKEN_ID == 0
    assert items.num_items == 3 and len(items) == 4
    assert [items.encode(m) for m in (7, 50, 1200)] == [1, 2, 3]
    assert [items.decode(t) for t in (1, 2, 3)] == [7, 50, 1200]
    assert items.title(1) == "Sabrina (1995)" and items.year(3) == 1986
    assert items.genres(2) == ["Action", "Sci-Fi"]
    assert items.title(0) == "[PAD]" and items.genres(0) == [] and items.year(0) is None
    np.testing.assert_array_equal(items.encode_many([1200, 7]), [3, 1])
    np.testing.assert_array_equal(items.decode_many([3, 1]), [1200, 7])


def test_unknown_item_and_bad_tokens(items: ItemVocab) -> None:
    with pytest.raises(UnknownItemError, match="movie id 999"):
        items.encode(999)
    with pytest.raises(KeyError):  # UnknownItemError is KeyError-like
        items.encode(999)
    with pytest.raises(UnknownItemError, match="999"):
        items.encode_many([7, 999])
    with pytest.raises(ValueError, match="PAD"):
        items.decode(0)
    with pytest.raises(ValueError, match="out of range"):
        items.decode(4)
    with pytest.raises(ValueError, match="duplicate movie id 7"):
        ItemVocab([7, 7])
    with pytest.raises(ValueError, match="titles has 1 entries"):
        ItemVocab([1, 2], titles=["x"])


def test_genre_matrix_and_year_buckets(items: ItemVocab) -> None:
    mat = items.genre_matrix()
    assert mat.shape == (4, 5) and mat.dtype == np.float32
    assert mat[0].sum() == 0  # [PAD]
    np.testing.assert_array_equal(mat[1], [0, 1, 1, 0, 0])  # Sabrina: Comedy, Romance
    buckets = items.year_buckets()  # decades from 1970: 1977 -> 1, 1986 -> 2, 1995 -> 3
    np.testing.assert_array_equal(buckets, [0, 3, 1, 2])
    np.testing.assert_array_equal(items.year_buckets(width=5, min_year=1980), [0, 4, 1, 2])
    no_meta = ItemVocab([3, 1])
    assert no_meta.title(1) is None and no_meta.genre_matrix().shape == (3, 0)
    np.testing.assert_array_equal(no_meta.year_buckets(), [0, 0, 0])


def test_item_vocab_is_deterministic_and_round_trips(tmp_path, items: ItemVocab) -> None:
    ids = list(range(1, 200))
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    assert ItemVocab(ids).to_dict() == ItemVocab(shuffled).to_dict()
    path = tmp_path / "v" / "item_vocab.json"
    items.save(path)
    again = ItemVocab.load(path)
    assert again == items and again.title(3) == "Aliens (1986)"
    assert json.loads(path.read_text())["special_tokens"] == ["[PAD]"]
    assert os.listdir(path.parent) == ["item_vocab.json"]  # no temp file left behind


def test_user_vocab_layout_and_features(users: UserVocab) -> None:
    assert UserVocab.UNKNOWN_INDEX == 0
    assert users.num_users == 3 and len(users) == 4
    assert [users.encode(u) for u in (10, 20, 30, 99)] == [1, 2, 3, 0]
    assert users.decode(1) == 10 and users.decode(0) is None
    np.testing.assert_array_equal(users.encode_many([30, 5]), [3, 0])
    assert users.feature_names == ["gender", "age"]
    assert users.categories("gender") == ["F", "M"] and users.feature_sizes == [3, 3]
    assert users.features(0) == [0, 0]  # unknown user
    assert users.features(1) == [1, 1]  # user 10: F, 18-24
    assert users.features(2) == [0, 2]  # user 20: gender unknown, 25-34
    assert users.feature_matrix().shape == (4, 2)
    assert users.feature_values(3) == {"gender": "M", "age": "25-34"}
    assert users.encode_features(gender="M", age="65+") == [2, 0]
    with pytest.raises(ValueError, match="out of range"):
        users.decode(4)
    with pytest.raises(ValueError, match="unknown user features"):
        users.encode_features(zip="x")
    bare = UserVocab([2, 1])
    assert bare.feature_names == [] and bare.feature_sizes == [] and bare.features(1) == []


def test_save_and_load_vocabs(tmp_path, items: ItemVocab, users: UserVocab) -> None:
    paths = save_vocabs(tmp_path, items, users)
    assert [p.name for p in paths] == [ITEM_VOCAB_FILE, USER_VOCAB_FILE]
    it, us = load_vocabs(tmp_path)
    assert it == items and us == users and us.features(1) == [1, 1]
    (tmp_path / USER_VOCAB_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"user_vocab\.json"):
        load_vocabs(tmp_path)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match=r"not a hf_recsys\.ItemVocab"):
        ItemVocab.load(tmp_path / "bad.json")


def test_atomic_write_keeps_old_file_on_failure(tmp_path) -> None:
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})  # not serialisable: fails mid-write
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_encode_many_large_inputs_use_the_same_mapping() -> None:
    """Above 100k lookups encode_many switches to a lookup table: same tokens, same error."""
    rng = np.random.default_rng(0)
    ids = np.unique(rng.integers(1, 200_000, 5_000))
    vocab = ItemVocab(ids)
    queries = rng.choice(ids, 150_000)
    expected = np.searchsorted(ids, queries) + 1
    np.testing.assert_array_equal(vocab.encode_many(queries), expected)
    np.testing.assert_array_equal(vocab.encode_many(queries[:10]), expected[:10])  # binary-search path
    missing = int(np.setdiff1d(np.arange(1, 200_000), ids)[0])
    with pytest.raises(UnknownItemError, match=f"movie id {missing} "):
        vocab.encode_many(np.r_[queries, missing])
    with pytest.raises(UnknownItemError, match="movie id 10000000 "):
        vocab.encode_many(np.r_[queries, 10_000_000])


# --------------------------------------------------------------------------------------------------------
# Growth (fine-tuning): old tokens never move, new ids are appended
# --------------------------------------------------------------------------------------------------------
def test_item_extend_keeps_old_tokens_and_appends_new_ones(items: ItemVocab) -> None:
    grown = items.extend(
        [1300, 7, 3, 50, 2],  # known ids (7, 50) mixed with new ones, unsorted
        titles=["New B (2001)", "ignored", "New A (1999)", "ignored", None],
        years=[2001, 1, 1999, 1, None],
        genres=[["Horror"], ["Comedy"], ["Action"], [], ["Animation", "Horror"]],
    )
    assert items.num_items == 3 and items.item_ids.tolist() == [7, 50, 1200]  # the original is untouched
    assert grown.item_ids.tolist() == [7, 50, 1200, 2, 3, 1300]  # old tokens first, new ones in ascending id order
    assert [grown.encode(m) for m in (7, 50, 1200)] == [items.encode(m) for m in (7, 50, 1200)]
    assert [grown.encode(m) for m in (2, 3, 1300)] == [4, 5, 6]
    np.testing.assert_array_equal(grown.encode_many([1300, 7, 2, 1200, 3]), [6, 1, 4, 3, 5])
    np.testing.assert_array_equal(grown.decode_many([4, 5, 6, 1]), [2, 3, 1300, 7])
    assert grown.title(1) == "Sabrina (1995)"  # old metadata kept ("ignored" was not read)
    assert grown.title(5) == "New A (1999)" and grown.year(6) == 2001 and grown.title(4) is None
    assert grown.genre_names == ["Action", "Comedy", "Romance", "Sci-Fi", "Thriller", "Animation", "Horror"]
    np.testing.assert_array_equal(grown.genre_matrix()[:4], np.c_[items.genre_matrix(), np.zeros((4, 2))])
    assert grown.genres(4) == ["Animation", "Horror"] and not grown.is_sorted and items.is_sorted
    assert 1300 in grown and 1300 not in items and "x" not in grown
    with pytest.raises(UnknownItemError, match="movie id 4 "):
        grown.encode_many([2, 4])
    # deterministic, and extending with nothing new gives an equal copy
    again = items.extend(
        [2, 3, 1300, 7],
        titles=[None, "New A (1999)", "New B (2001)", "x"],
        years=[None, 1999, 2001, 0],
        genres=[["Animation", "Horror"], ["Action"], ["Horror"], []],
    )
    assert again == grown
    assert items.extend([7, 1200]) == items


def test_item_extend_bad_input(items: ItemVocab) -> None:
    with pytest.raises(ValueError, match="duplicate movie id 3"):
        items.extend([3, 3])
    with pytest.raises(ValueError, match="titles has 1 entries, expected 2"):
        items.extend([3, 4], titles=["x"])
    bare = ItemVocab([5, 1]).extend([9], titles=["Nine (1999)"])  # metadata only for the new movie
    assert bare.title(1) is None and bare.title(3) == "Nine (1999)"


def test_extended_item_vocab_round_trips_exactly(tmp_path, items: ItemVocab) -> None:
    grown = items.extend([1, 5000, 3])
    path = tmp_path / "item_vocab.json"
    grown.save(path)
    stored = json.loads(path.read_text())
    assert stored["version"] == 2 and stored["item_ids"] == [7, 50, 1200, 1, 3, 5000]  # token order, verbatim
    again = ItemVocab.load(path)
    assert again == grown and again.item_ids.tolist() == grown.item_ids.tolist()
    assert again.encode(1) == 4 and again.encode(5000) == 6
    # a never-extended vocabulary is still written as version 1 (unchanged files) and a v1 file still sorts
    assert items.to_dict()["version"] == 1
    old = {
        **items.to_dict(),
        "item_ids": [1200, 7, 50],
        "titles": ["Aliens (1986)", "Sabrina (1995)", "Star Wars (1977)"],
    }
    old.update(years=None, genres=None)
    assert ItemVocab.from_dict(old).item_ids.tolist() == [7, 50, 1200]
    assert ItemVocab.from_dict(old).title(1) == "Sabrina (1995)"
    with pytest.raises(ValueError, match="version 3 is newer"):
        ItemVocab.from_dict({**grown.to_dict(), "version": 3})


def test_extended_lookup_table_path_uses_token_order() -> None:
    """encode_many's dense lookup table (> 100k queries) must follow token order, not id order."""
    rng = np.random.default_rng(1)
    base = ItemVocab(np.arange(100, 2_000))
    grown = base.extend(np.r_[np.arange(1, 100), np.arange(2_000, 2_500)])
    queries = rng.choice(grown.item_ids, 150_000)
    expected = np.array([grown.encode(int(q)) for q in queries[:1000]])
    np.testing.assert_array_equal(grown.encode_many(queries)[:1000], expected)
    np.testing.assert_array_equal(grown.encode_many(queries[:1000]), expected)  # binary-search path
    np.testing.assert_array_equal(grown.decode_many(grown.encode_many(queries)), queries)


def test_user_extend_keeps_old_indices_and_categories(users: UserVocab) -> None:
    grown = users.extend(
        [40, 10, 5],
        gender=["X", "M", "F"],  # "X" is a new category; user 10's old value (F) is kept
        age=[None, "99", "50+"],
        occupation=["a", "b", "c"],  # a feature the pretrained vocabulary does not have: ignored
    )
    assert grown.user_ids.tolist() == [10, 20, 30, 5, 40]
    assert [grown.encode(u) for u in (10, 20, 30)] == [users.encode(u) for u in (10, 20, 30)]
    assert grown.encode(5) == 4 and grown.encode(40) == 5 and grown.encode(99) == 0
    np.testing.assert_array_equal(grown.encode_many([40, 5, 30, 99]), [5, 4, 3, 0])
    assert grown.feature_names == ["gender", "age"]
    assert grown.categories("gender") == ["F", "M", "X"] and grown.categories("age") == ["18-24", "25-34", "50+"]
    assert grown.feature_sizes == [4, 4]
    np.testing.assert_array_equal(grown.feature_matrix()[:4], users.feature_matrix())  # old rows unchanged
    assert grown.features(4) == [1, 3] and grown.features(5) == [3, 0]
    assert grown.feature_values(1) == {"gender": "F", "age": "18-24"}
    assert not grown.is_sorted and users.is_sorted and 5 in grown
    with pytest.raises(ValueError, match="duplicate user id 5"):
        users.extend([5, 5])
    with pytest.raises(ValueError, match="gender has 1 entries"):
        users.extend([5, 6], gender=["F"])


def test_extended_user_vocab_round_trips_exactly(tmp_path, items: ItemVocab, users: UserVocab) -> None:
    grown_users = users.extend([1, 40], gender=["X", "A"])
    grown_items = items.extend([1])
    save_vocabs(tmp_path, grown_items, grown_users)
    stored = json.loads((tmp_path / USER_VOCAB_FILE).read_text())
    assert stored["version"] == 2 and stored["user_ids"] == [10, 20, 30, 1, 40]
    assert stored["categories"]["gender"] == ["F", "M", "A", "X"]  # not re-sorted: old ids 1, 2 stay
    it, us = load_vocabs(tmp_path)
    assert it == grown_items and us == grown_users
    assert us.categories("gender") == ["F", "M", "A", "X"] and us.features(4) == [4, 0] and us.features(5) == [3, 0]
    assert "categories" not in users.to_dict() and users.to_dict()["version"] == 1
    with pytest.raises(ValueError, match=r"values \['Z'\] are not in its categories"):
        UserVocab([1], gender=["Z"], categories={"gender": ["F"]})
