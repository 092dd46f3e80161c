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
    with pytest.raises(UnknownItemError, match="item id 999"):
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
    # each kind refuses the other's file and dict: the shared loader checks the subclass's own format tag
    items.save(tmp_path / ITEM_VOCAB_FILE)
    with pytest.raises(ValueError, match=r"not a hf_recsys\.UserVocab"):
        UserVocab.load(tmp_path / ITEM_VOCAB_FILE)
    with pytest.raises(ValueError, match=r"not a hf_recsys\.ItemVocab vocabulary"):
        ItemVocab.from_dict(users.to_dict())
    # a file must carry its format tag; a newer version is refused once, with the file named
    (tmp_path / "untagged.json").write_text(json.dumps({k: v for k, v in items.to_dict().items() if k != "format"}))
    with pytest.raises(ValueError, match=r"untagged\.json: not a hf_recsys\.ItemVocab file \(no 'format' field\)"):
        ItemVocab.load(tmp_path / "untagged.json")
    (tmp_path / "newer.json").write_text(json.dumps({**items.to_dict(), "version": 4}))
    with pytest.raises(ValueError, match=r"newer\.json: vocabulary format version 4 is newer than supported \(3\)"):
        ItemVocab.load(tmp_path / "newer.json")
    with pytest.raises(ValueError, match=r"version must be an integer, got '2'"):
        ItemVocab.from_dict({**items.to_dict(), "version": "2"})


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
    with pytest.raises(UnknownItemError, match=f"item id {missing} "):
        vocab.encode_many(np.r_[queries, missing])
    with pytest.raises(UnknownItemError, match="item id 10000000 "):
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
    with pytest.raises(UnknownItemError, match="item id 4 "):
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
    with pytest.raises(ValueError, match="version 4 is newer"):
        ItemVocab.from_dict({**grown.to_dict(), "version": 4})


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


# --------------------------------------------------------------------------------------------------------
# String ids (e-commerce logs): one id type per vocabulary, kept through save and load
# --------------------------------------------------------------------------------------------------------
ASINS = ["B07J3GH1W1", "B000AAA111", "B0CZZZ9999"]


def test_string_item_ids_encode_decode_and_lookups() -> None:
    vocab = ItemVocab(ASINS, titles=["Lego set", "Teddy bear", "Puzzle"])
    assert vocab.id_type == "str" and ItemVocab([1]).id_type == "int"
    ids = vocab.item_ids
    assert ids.dtype.kind == "U" and ids.tolist() == sorted(ASINS)  # tokens follow ascending (lexicographic) id
    assert all(type(m) is str for m in ids.tolist())
    assert [vocab.encode(m) for m in ASINS] == [2, 1, 3]
    assert vocab.decode(2) == "B07J3GH1W1" and type(vocab.decode(2)) is str
    np.testing.assert_array_equal(vocab.encode_many(ASINS), [2, 1, 3])
    np.testing.assert_array_equal(vocab.encode_many(np.array(ASINS)), [2, 1, 3])
    np.testing.assert_array_equal(vocab.encode_many(np.array(ASINS, dtype=object)), [2, 1, 3])
    assert vocab.decode_many([3, 1]).tolist() == ["B0CZZZ9999", "B000AAA111"]
    assert "B07J3GH1W1" in vocab and np.str_("B07J3GH1W1") in vocab and vocab.encode(np.str_("B000AAA111")) == 1
    with pytest.raises(UnknownItemError, match="item id 'B0NOPE' is not in the catalogue"):
        vocab.encode("B0NOPE")
    with pytest.raises(UnknownItemError, match="item id 'B0NOPE'"):
        vocab.encode_many(["B07J3GH1W1", "B0NOPE"])
    with pytest.raises(ValueError, match="duplicate movie id 'B07J3GH1W1'"):
        ItemVocab([*ASINS, "B07J3GH1W1"])


def test_no_conversion_between_int_and_string_ids() -> None:
    ints, strs = ItemVocab([260, 1]), ItemVocab(["260", "1"])
    assert "260" not in ints and 260 not in strs and np.int64(260) not in strs
    with pytest.raises(UnknownItemError, match="item id '260'"):
        ints.encode("260")
    with pytest.raises(UnknownItemError, match="item id '260'"):
        ints.encode_many([1, "260"])  # not silently stringified / parsed
    with pytest.raises(UnknownItemError, match="item id 260 "):
        strs.encode_many(["1", 260])
    with pytest.raises(UnknownItemError, match="item id 260 "):
        strs.encode(260)
    users = UserVocab(["AFSKPY37N3C43SOI5IEXEK5JSIYA", "u2"])
    assert users.encode("u2") == 2 and users.encode(2) == 0 and UserVocab([2]).encode("2") == 0
    np.testing.assert_array_equal(users.encode_many(["u2", 7, "nope", "AFSKPY37N3C43SOI5IEXEK5JSIYA"]), [2, 0, 0, 1])


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([7, "B07J3GH1W1"], r"not a mix: id 7 at position 0 is an int, id 'B07J3GH1W1' at position 1 is a str"),
        (["a", "b", 3], r"not a mix: id 'a' at position 0 is a str, id 3 at position 2 is an int"),
        (["a", None], r"id None at position 1 is a NoneType"),
        ([1, 2.5], r"id 2\.5 at position 1 is a float"),
        ([None, 1], r"all integers or all strings: id None at position 0"),
        ([True, 1], r"id True at position 0 is a bool"),
        (np.array([1.0, 2.0]), r"array of dtype float64"),
        (np.array(["a", 1], dtype=object), r"id 1 at position 1 is an int"),
    ],
)
def test_mixed_or_bad_id_types_are_refused(ids, message) -> None:
    with pytest.raises(ValueError, match=message):
        ItemVocab(ids)
    with pytest.raises(ValueError, match=message.replace("movie", "user")):
        UserVocab(ids)


def test_numpy_ids_count_as_ints_and_strings() -> None:
    assert ItemVocab(np.array([3, 1], dtype=np.uint16)).item_ids.dtype == np.int64
    assert ItemVocab([np.int32(3), 1]).item_ids.tolist() == [1, 3]
    assert ItemVocab([np.str_("b"), "a"]).item_ids.tolist() == ["a", "b"]


def test_string_vocabs_round_trip_with_their_type(tmp_path) -> None:
    items = ItemVocab(ASINS, titles=["Lego set", "Teddy bear", "Puzzle"], genres=[["Toys"], ["Plush"], []])
    users = UserVocab(["AFSKPY37N3C43SOI5IEXEK5JSIYA", "u1", "0042"], gender=["F", None, "M"])
    save_vocabs(tmp_path, items, users)
    stored = json.loads((tmp_path / ITEM_VOCAB_FILE).read_text())
    assert stored["version"] == 3 and stored["id_type"] == "str" and stored["item_ids"] == sorted(ASINS)
    stored_users = json.loads((tmp_path / USER_VOCAB_FILE).read_text())
    assert stored_users["version"] == 3 and stored_users["id_type"] == "str"
    it, us = load_vocabs(tmp_path)
    assert it == items and us == users and it.id_type == "str" and us.id_type == "str"
    assert it.item_ids.tolist() == items.item_ids.tolist() and it.title(it.encode("B07J3GH1W1")) == "Lego set"
    assert us.user_ids.tolist() == ["0042", "AFSKPY37N3C43SOI5IEXEK5JSIYA", "u1"]  # "0042" stays a string
    assert us.decode(1) == "0042" and us.features(1) == [2] and us.encode(42) == 0
    # an empty string vocabulary keeps its type too
    empty = ItemVocab([], id_type="str")
    assert ItemVocab.from_dict(empty.to_dict()).id_type == "str" and ItemVocab([]).id_type == "int"
    with pytest.raises(ValueError, match="needs 'id_type'"):
        ItemVocab.from_dict({k: v for k, v in stored.items() if k != "id_type"})


def test_int_vocab_files_of_every_older_version_still_load(tmp_path, items: ItemVocab, users: UserVocab) -> None:
    """Files written before string ids (no id_type; versions 1 and 2, and version-less) load as int, unchanged."""
    assert "id_type" not in items.to_dict() and items.to_dict()["version"] == 1  # int files are written as before
    v1 = {
        "format": "hf_recsys.ItemVocab",
        "version": 1,
        "special_tokens": ["[PAD]"],
        "num_items": 3,
        "item_ids": [1200, 7, 50],
        "titles": ["Aliens (1986)", "Sabrina (1995)", "Star Wars (1977)"],
        "years": None,
        "genres": None,
        "genre_names": [],
    }
    no_version = {k: v for k, v in v1.items() if k != "version"}
    v2 = {**v1, "version": 2, "item_ids": [50, 7, 1200], "titles": None}
    for data, order in ((v1, [7, 50, 1200]), (no_version, [7, 50, 1200]), (v2, [50, 7, 1200])):
        path = tmp_path / "item_vocab.json"
        path.write_text(json.dumps(data))
        vocab = ItemVocab.load(path)
        assert vocab.id_type == "int" and vocab.item_ids.dtype == np.int64 and vocab.item_ids.tolist() == order
        assert type(vocab.decode(1)) is int and vocab.to_dict()["version"] == (2 if data is v2 else 1)
    u1 = {"format": "hf_recsys.UserVocab", "version": 1, "unknown_index": 0, "num_users": 2, "user_ids": [9, 3]}
    u2 = {**u1, "version": 2, "features": {"gender": ["M", "F"]}, "categories": {"gender": ["M", "F"]}}
    for data, order in ((u1, [3, 9]), (u2, [9, 3])):
        path = tmp_path / "user_vocab.json"
        path.write_text(json.dumps(data))
        vocab = UserVocab.load(path)
        assert vocab.id_type == "int" and vocab.user_ids.tolist() == order and type(vocab.decode(1)) is int
    assert UserVocab.load(path).categories("gender") == ["M", "F"]
    with pytest.raises(ValueError, match="version 4 is newer than supported \\(3\\)"):
        ItemVocab.from_dict({**v1, "version": 4})


def test_string_vocab_extend_keeps_old_tokens() -> None:
    items = ItemVocab(ASINS, titles=["Lego set", "Teddy bear", "Puzzle"])
    grown = items.extend(["B0NEW2", "B07J3GH1W1", "A0NEW1"], titles=["New two", "ignored", "New one"])
    assert grown.id_type == "str" and not grown.is_sorted
    assert grown.item_ids.tolist() == [*sorted(ASINS), "A0NEW1", "B0NEW2"]  # old tokens first, new ones sorted
    assert [grown.encode(m) for m in ASINS] == [items.encode(m) for m in ASINS]
    assert grown.encode("A0NEW1") == 4 and grown.title(4) == "New one" and grown.title(2) == "Lego set"
    np.testing.assert_array_equal(grown.encode_many(["B0NEW2", "B000AAA111"]), [5, 1])
    again = ItemVocab.from_dict(json.loads(json.dumps(grown.to_dict())))
    assert again == grown and again.item_ids.tolist() == grown.item_ids.tolist()
    with pytest.raises(
        ValueError, match=r"movie ids must be strings \(this vocabulary's id type\): id 5 at position 1"
    ):
        items.extend(["B0NEW2", 5])
    with pytest.raises(ValueError, match=r"must be integers \(this vocabulary's id type\): id 'x' at position 0"):
        ItemVocab([1, 2]).extend(["x"])
    users = UserVocab(["u2", "u1"], gender=["M", "F"])
    grown_users = users.extend(["u0", "u1"], gender=["X", "M"])
    assert grown_users.user_ids.tolist() == ["u1", "u2", "u0"] and grown_users.encode("u0") == 3
    assert grown_users.features(1) == users.features(1) and grown_users.categories("gender") == ["F", "M", "X"]
    assert UserVocab.from_dict(grown_users.to_dict()) == grown_users
    with pytest.raises(ValueError, match="user ids must be strings"):
        users.extend([3])
