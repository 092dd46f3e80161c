"""Item/user feature tables -> feature fields (hf_recsys.data.features): kinds, inference, encoding, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_recsys.data.features import (
    MAPPING_COLUMN,
    MAX_BUCKETS,
    FeatureField,
    FeatureTableError,
    build_feature_fields,
    load_feature_fields,
    read_feature_table,
    save_feature_fields,
)
from hf_recsys.data.movielens import DataFormatError

DATA_DIR = Path(os.environ.get("HF_RECSYS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def rows_as_sets(matrix: np.ndarray, field: FeatureField) -> list[set[str]]:
    """Each matrix row as the set of its values' names (0 = padding dropped)."""
    names = ["", *field.values]
    return [{names[i] for i in row if i} for row in matrix]


@pytest.fixture
def items_csv(tmp_path: Path) -> Path:
    path = tmp_path / "items.csv"
    path.write_text(
        "item_id,title,brand,genres,price,zip\n"
        "30,Gamma,acme,Action|Comedy,9.5,02139\n"
        "10,Alpha, zeta ,Drama,1.0,10001\n"
        "20,Beta,,,,\n"
        "40,Delta,acme,Comedy| Action |Comedy,4.25,02139\n"
    )
    return path


# --------------------------------------------------------------------------------------------------------
# kinds
# --------------------------------------------------------------------------------------------------------
def test_categorical_and_multi_fields_in_token_order(items_csv: Path) -> None:
    table = read_feature_table(
        items_csv,
        "item_id",
        title_column="title",
        kinds={"brand": "categorical", "genres": "multi", "zip": "categorical"},
    )
    assert table.kinds == {"brand": "categorical", "genres": "multi", "price": "categorical", "zip": "categorical"}
    assert list(table.inferred) == ["price"]  # only the column left to "auto" is inferred; 3 values: categorical
    feats = build_feature_fields(table, [10, 20, 30, 40])
    brand, genres, zip_code = feats.fields["brand"], feats.fields["genres"], feats.fields["zip"]
    assert brand.vocabulary == {"acme": 1, "zeta": 2}  # trimmed, sorted, empty = missing
    assert zip_code.values == ["02139", "10001"]  # a declared categorical column keeps leading zeros
    b = feats.matrices["brand"]
    assert b.dtype == np.int32 and b.shape == (5, 1)
    assert b[:, 0].tolist() == [0, 2, 0, 1, 1]  # row 0 = padding; item 20 has no brand
    g = feats.matrices["genres"]
    assert g.shape == (5, 2) and g[0].tolist() == [0, 0]
    assert rows_as_sets(g, genres) == [set(), {"Drama"}, set(), {"Action", "Comedy"}, {"Action", "Comedy"}]
    # repeats merge and come first: item 40 lists Comedy twice
    assert g[4].tolist() == [genres.vocabulary["Comedy"], genres.vocabulary["Action"]]
    assert feats.titles == ["Alpha", "Beta", "Gamma", "Delta"]
    assert feats.report["fields"]["genres"] == {
        "kind": "multi", "size": 4, "max_values": 2, "truncated_rows": 0, "rows_without_value": 1,
    }  # fmt: skip


def test_multi_lists_from_parquet_per_column_delimiter_and_max_values(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    pq.write_table(
        pa.table({
            "id": ["b", "a", "c"],
            "tags": [["x", "y", "z"], ["y"], None],
            "cats": ["toys;games", "games", "toys;games;kids"],
        }),
        path,
    )  # fmt: skip
    table = read_feature_table(path, "id", kinds={"cats": "multi"}, delimiter={"cats": ";"})
    assert table.kinds == {"tags": "multi", "cats": "multi"}
    feats = build_feature_fields(table, ["a", "b", "c"], max_values={"tags": 2})
    tags = feats.fields["tags"]
    assert tags.max_values == 2 and feats.report["fields"]["tags"]["truncated_rows"] == 1
    assert rows_as_sets(feats.matrices["tags"], tags) == [set(), {"y"}, {"x", "y"}, set()]  # first two values kept
    cats = feats.fields["cats"]
    assert cats.values == ["games", "kids", "toys"] and cats.max_values == 3
    assert rows_as_sets(feats.matrices["cats"], cats)[3] == {"toys", "games", "kids"}


def test_numeric_buckets_follow_the_quantile_rule() -> None:
    rng = np.random.default_rng(0)
    prices = rng.permutation(np.arange(1, 161, dtype=float))  # 160 distinct values
    df = pd.DataFrame({"id": np.arange(160), "price": prices, "few": np.arange(160) % 5, "tied": np.r_[np.zeros(150), np.arange(10)]})  # fmt: skip
    df.loc[3, "price"] = np.nan
    feats = build_feature_fields(read_feature_table(df, "id", kinds="numeric"), np.arange(160))
    price = feats.fields["price"]
    assert price.size == MAX_BUCKETS + 1 and len(price.edges) == MAX_BUCKETS - 1
    buckets = feats.matrices["price"][1:, 0]
    assert buckets[3] == 0 and buckets.min() == 0 and buckets.max() == MAX_BUCKETS  # NaN = missing = 0
    counts = np.bincount(buckets[buckets > 0])[1:]
    assert counts.min() >= 9 and counts.max() <= 11  # quantiles: equal-sized buckets
    assert np.all(np.diff([prices[buckets == b].min() for b in range(1, 17)]) > 0)  # ordered by value
    few = feats.fields["few"]  # 5 distinct values: one bucket each
    assert few.edges == [1.0, 2.0, 3.0, 4.0] and feats.matrices["few"][1:6, 0].tolist() == [1, 2, 3, 4, 5]
    tied = feats.fields["tied"]  # 150 zeros: the quantile cut points collapse, fewer buckets
    assert 2 <= tied.size - 1 < MAX_BUCKETS and feats.matrices["tied"][1, 0] == 1
    assert price.encode_values(-5) == [1] and price.encode_values(1e9) == [MAX_BUCKETS]  # out of range: clamped
    assert price.encode_values(None) == [0] and price.encode_values("80.5") == price.encode_values(80.5)


# --------------------------------------------------------------------------------------------------------
# kinds="auto"
# --------------------------------------------------------------------------------------------------------
def test_auto_inference_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "users.jsonl"
    with open(path, "w") as f:
        for u in range(60):
            rec = {"user": f"u{u}", "age": 18 + u, "occupation": u % 21, "gender": "MF"[u % 2], "topics": [u % 3]}
            rec["likes"] = "a|b" if u % 2 else "c"
            f.write(json.dumps(rec) + "\n")
    table = read_feature_table(path, "user")
    assert table.kinds == {
        "age": "numeric", "occupation": "categorical", "gender": "categorical", "topics": "multi", "likes": "multi",
    }  # fmt: skip
    assert "60 > 32 distinct" in table.inferred["age"] and "21 <= 32 distinct" in table.inferred["occupation"]
    assert "'|'" in table.inferred["likes"] and "list" in table.inferred["topics"]
    feats = build_feature_fields(table, [f"u{u}" for u in range(60)])
    assert feats.report["inferred"] == table.inferred
    assert feats.fields["occupation"].values[:3] == ["0", "1", "2"]  # numbers in numeric order, as text


# --------------------------------------------------------------------------------------------------------
# JSON round trip and new items
# --------------------------------------------------------------------------------------------------------
def test_fields_round_trip_through_json(items_csv: Path, tmp_path: Path) -> None:
    feats = build_feature_fields(read_feature_table(items_csv, "item_id", title_column="title"), [10, 20, 30, 40])
    path = save_feature_fields(tmp_path / "model" / "item_fields.json", feats.fields)
    loaded = load_feature_fields(path)
    assert loaded == list(feats.fields.values())
    raw = pd.read_csv(items_csv)  # zip: read as numbers here and there (kind "auto": leading zeros are lost)
    for f in loaded:
        got = f.encode_many(raw[f.name].tolist())
        np.testing.assert_array_equal(got, feats.matrices[f.name][[3, 1, 2, 4]])
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match=r"not a hf_recsys\.FeatureFields"):
        load_feature_fields(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="kind"):
        FeatureField("f", "ordinal", {})


def test_encoding_new_items_with_unseen_values(items_csv: Path) -> None:
    table = read_feature_table(items_csv, "item_id", title_column="title", kinds={"zip": "categorical"})
    fields = build_feature_fields(table, [10, 20, 30, 40]).fields
    fields = [FeatureField.from_dict(json.loads(json.dumps(f.to_dict()))) for f in fields.values()]  # as served
    by = {f.name: f for f in fields}
    assert by["brand"].encode_values("acme") == [1] and by["brand"].encode_values("newbrand") == [0]
    assert by["brand"].encode_values(None) == [0] and by["brand"].encode_values("  acme ") == [1]
    genres = by["genres"]
    assert genres.encode_values("Comedy|Horror") == [genres.vocabulary["Comedy"]]  # unseen Horror -> dropped (0)
    assert genres.encode_values(["Horror"]) == [0] and genres.encode_values(None) == [0]
    assert genres.encode_many(["Action|Comedy|Drama"]).shape == (1, genres.max_values)  # the trained width
    # a new catalogue through the same fields: new ids, new values, a wider genre list
    new = pd.DataFrame({"item_id": [50, 10], "brand": ["other", "acme"], "genres": ["Drama|Western|Action", "Drama"],
                        "price": [100.0, 1.0], "zip": ["99999", "02139"]})  # fmt: skip
    feats = build_feature_fields(read_feature_table(new, "item_id"), [10, 30, 50], fields=fields)
    assert feats.matrices["brand"][:, 0].tolist() == [0, 1, 0, 0]
    assert feats.matrices["genres"].shape == (4, genres.max_values)
    assert rows_as_sets(feats.matrices["genres"], genres)[3] == {"Drama", "Action"}
    assert feats.matrices["zip"][:, 0].tolist() == [0, 1, 0, 0]
    assert feats.report["missing_from_table"] == 1 and feats.report["fields"]["genres"]["truncated_rows"] == 0
    other = read_feature_table(new.assign(genres=["Drama;Action", "Drama"]), "item_id", delimiter=";")
    again = build_feature_fields(other, [10, 30, 50], fields=fields)  # the new table's own delimiter splits it
    np.testing.assert_array_equal(again.matrices["genres"], feats.matrices["genres"])


def test_matrices_feed_a_mean_embedding_bag(items_csv: Path) -> None:
    torch = pytest.importorskip("torch")
    feats = build_feature_fields(read_feature_table(items_csv, "item_id", title_column="title"), [10, 20, 30, 40])
    genres = feats.fields["genres"]
    bag = torch.nn.EmbeddingBag(genres.size, 4, mode="mean", padding_idx=0)
    out = bag(torch.as_tensor(feats.matrices["genres"], dtype=torch.long))
    w = bag.weight.detach()
    assert torch.all(out[0] == 0) and torch.all(out[2] == 0)  # padding and an item without genres
    g = genres.vocabulary
    torch.testing.assert_close(out[3], (w[g["Action"]] + w[g["Comedy"]]) / 2)


def test_fields_are_deterministic_whatever_the_row_order(items_csv: Path) -> None:
    df = pd.read_csv(items_csv, dtype={"zip": str})
    a = build_feature_fields(read_feature_table(df, "item_id"), [40, 30, 20, 10])
    b = build_feature_fields(read_feature_table(df.iloc[::-1], "item_id"), [40, 30, 20, 10])
    assert a.fields == b.fields
    for name in a.matrices:
        np.testing.assert_array_equal(a.matrices[name], b.matrices[name])


# --------------------------------------------------------------------------------------------------------
# id matching
# --------------------------------------------------------------------------------------------------------
def test_id_matching_report(items_csv: Path) -> None:
    table = read_feature_table(pd.read_csv(items_csv), "item_id", title_column="title")  # integer keys
    feats = build_feature_fields(table, [10, 99, 30, 98])  # 99, 98: not in the table; 20, 40: not in the log
    r = feats.report
    assert (r["ids"], r["table_rows"], r["matched"]) == (4, 4, 2)
    assert (r["missing_from_table"], r["unused_table_rows"]) == (2, 2)
    assert r["missing_examples"] == [99, 98] and r["unused_examples"] == [20, 40] and r["key_match"] == "exact"
    assert feats.matrices["brand"][:, 0].tolist() == [0, 2, 0, 1, 0] and feats.titles == ["Alpha", None, "Gamma", None]
    assert feats.fields["genres"].values == ["Action", "Comedy", "Drama"]  # fitted on the matched rows only
    as_text = build_feature_fields(table, np.array(["10", "20", "30", "40"]))  # string log ids, integer keys
    assert as_text.report["key_match"] == "as text" and as_text.report["matched"] == 4
    csv_keys = build_feature_fields(read_feature_table(items_csv, "item_id"), [10, 99])  # CSV keys are read as text
    assert csv_keys.report["key_match"] == "as text" and csv_keys.report["missing_examples"] == [99]
    assert csv_keys.report["unused_examples"] == ["30", "20", "40"]  # in table order
    with pytest.raises(FeatureTableError, match="none of the 2 ids"):
        build_feature_fields(table, ["B001", "B002"])
    with pytest.raises(FeatureTableError, match="appears again"):
        build_feature_fields(table, [10, 10])


# --------------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------------
def test_missing_columns_list_the_columns_present(items_csv: Path) -> None:
    with pytest.raises(FeatureTableError, match=r"no column 'movie_id'; columns present: \['item_id', 'title'") as e:
        read_feature_table(items_csv, "movie_id")
    assert str(items_csv) in str(e.value) and e.value.column == "movie_id"
    assert isinstance(e.value, DataFormatError) and isinstance(e.value, ValueError)
    with pytest.raises(FeatureTableError, match="no column 'color'"):
        read_feature_table(items_csv, "item_id", feature_columns=["brand", "color"])
    with pytest.raises(FeatureTableError, match="no column 'name'"):
        read_feature_table(pd.DataFrame({"item_id": [1]}), "item_id", title_column="name")


def test_duplicate_and_null_keys_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "items.tsv"
    path.write_text("item_id\tbrand\nA1\tx\n\nB2\ty\nA1\tz\n")  # a blank line: line numbers still exact
    with pytest.raises(FeatureTableError, match=r"line 5: column 'item_id': id 'A1' appears again \(first in row 1\)"):
        read_feature_table(path, "item_id")
    df = pd.DataFrame({"item_id": [1.0, None, 3.0], "brand": ["x", "y", "z"]}, index=["a", "b", "c"])
    with pytest.raises(FeatureTableError, match=r"row 2 \(index 'b'\), column 'item_id': null id") as e:
        read_feature_table(df, "item_id")
    assert e.value.row == 2
    with pytest.raises(FeatureTableError, match=r"id 1\.5 is not an integer"):
        read_feature_table(pd.DataFrame({"item_id": [1.0, 1.5]}), "item_id")


def test_multi_columns_in_an_unexpected_shape(tmp_path: Path) -> None:
    dicts = pd.DataFrame({"id": [1, 2], "genres": [None, {"name": "Action"}]})
    with pytest.raises(FeatureTableError, match=r"row 2, column 'genres': a struct") as e:
        read_feature_table(dicts, "id", kinds={"genres": "multi"})
    assert "expected a list of scalars" in str(e.value)
    nested = pd.DataFrame({"id": [1, 2, 3], "genres": [["a"], [], [["b", "c"]]]})
    with pytest.raises(FeatureTableError, match=r"row 3, column 'genres': nested values \(a list inside"):
        read_feature_table(nested, "id")
    mixed = pd.DataFrame({"id": [1, 2, 3], "genres": [["a"], None, "b|c"]})
    with pytest.raises(FeatureTableError, match=r"row 3, column 'genres': a str in a column of lists"):
        read_feature_table(mixed, "id")
    path = tmp_path / "item2attributes.json"
    path.write_text(json.dumps({"1": [1, 2], "2": {"brand": 3}}))
    with pytest.raises(FeatureTableError, match=rf"{path.name}.*row 2 \(key '2'\), column 'attributes': a dict"):
        read_feature_table(path, "item_id")
    path.write_text(json.dumps({"1": [1, [2, 3]]}))
    with pytest.raises(FeatureTableError, match=r"row 1 \(key '1'\), column 'attributes': nested values"):
        read_feature_table(path, "item_id")


def test_numeric_column_with_text_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,price\n1,9.5\n2,\n3,cheap\n")
    with pytest.raises(FeatureTableError, match=r"items.csv, line 4: column 'price': 'cheap' is not a number") as e:
        read_feature_table(path, "item_id", kinds={"price": "numeric"})
    assert e.value.row == 3 and e.value.line == 4 and e.value.expected == "a number"
    field = FeatureField("price", "numeric", {"< 2": 1, ">= 2": 2}, [2.0])
    with pytest.raises(FeatureTableError, match="'n/a' is not a number"):
        field.encode_values("n/a")


def test_files_that_are_not_what_they_claim(tmp_path: Path) -> None:
    fake = tmp_path / "items.parquet"
    fake.write_text("item_id,brand\n1,x\n")
    with pytest.raises(FeatureTableError, match="cannot read as Parquet"):
        read_feature_table(fake, "item_id")
    with pytest.raises(FeatureTableError, match=r"unknown extension '\.xlsx'"):
        (tmp_path / "items.xlsx").write_text("x")
        read_feature_table(tmp_path / "items.xlsx", "item_id")
    with pytest.raises(FileNotFoundError, match="file not found"):
        read_feature_table(tmp_path / "nope.csv", "item_id")
    (tmp_path / "broken.json").write_text('{"1": [1, 2')
    with pytest.raises(FeatureTableError, match="not valid JSON"):
        read_feature_table(tmp_path / "broken.json", "item_id")
    with pytest.raises(ValueError, match="kind 'ordinal'"):
        read_feature_table(tmp_path / "items.csv", "item_id", kinds="ordinal")


# --------------------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("folder", "stem", "num_items", "num_attributes"),
    [("amazon-toys-s3rec", "Toys_and_Games", 11924, 1027), ("lastfm-s3rec", "LastFM", 3646, 388)],
)
def test_s3rec_item2attributes(folder: str, stem: str, num_items: int, num_attributes: int) -> None:
    mapping, log = DATA_DIR / folder / f"{stem}_item2attributes.json", DATA_DIR / folder / f"{stem}.txt"
    if not (mapping.is_file() and log.is_file()):
        pytest.skip(f"{mapping} not found")
    items = np.unique(np.concatenate([np.asarray(line.split()[1:], dtype=np.int64) for line in log.open()]))
    table = read_feature_table(mapping, "item_id")
    assert table.kinds == {MAPPING_COLUMN: "multi"} and table.data["item_id"].type == pa.int64()
    feats = build_feature_fields(table, items)
    r = feats.report
    assert (r["ids"], r["matched"], r["missing_from_table"], r["unused_table_rows"]) == (num_items, num_items, 0, 0)
    field = feats.fields[MAPPING_COLUMN]
    assert field.size == num_attributes + 1
    raw = json.loads(mapping.read_text())
    sets = rows_as_sets(feats.matrices[MAPPING_COLUMN], field)
    for t in (1, num_items // 2, num_items):
        assert sets[t] == {str(a) for a in raw[str(items[t - 1])]}
    assert field.max_values == max(len(set(v)) for v in raw.values())


def test_movielens_genres_match_the_genre_matrix(tmp_path: Path) -> None:
    from hf_recsys.data.movielens import read_movies
    from hf_recsys.data.vocab import ItemVocab

    u_item = DATA_DIR / "movielens-100k" / "u.item"
    if not u_item.is_file():  # a small synthetic equivalent in the same format
        u_item = tmp_path / "u.item"
        genre_flags = ["0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0", "1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0"]
        u_item.write_text("".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|{g}\n" for i, g in ((1, genre_flags[0]), (7, genre_flags[1]))))  # fmt: skip
    meta = read_movies(u_item)
    ids = sorted(meta.titles)
    vocab = ItemVocab(ids, genres=[meta.genres[i] for i in ids], genre_names=meta.genre_names)
    raw = pd.read_csv(u_item, sep="|", header=None, encoding="latin-1", dtype=str)
    flags = raw.iloc[:, 5:].to_numpy() == "1"
    names = np.asarray(meta.genre_names)
    table = pd.DataFrame({"movie_id": raw[0].astype(int), "genres": ["|".join(names[f]) for f in flags]})
    feats = build_feature_fields(read_feature_table(table, "movie_id", kinds="multi"), vocab.item_ids)
    genre_matrix = vocab.genre_matrix()
    expected = [{n for n, on in zip(vocab.genre_names, row) if on} for row in genre_matrix]
    assert rows_as_sets(feats.matrices["genres"], feats.fields["genres"]) == expected
    lists = pd.DataFrame({"movie_id": table["movie_id"], "genres": [list(names[f]) for f in flags]})
    feats_lists = build_feature_fields(read_feature_table(lists, "movie_id"), vocab.item_ids)
    np.testing.assert_array_equal(feats_lists.matrices["genres"], feats.matrices["genres"])


def test_movielens_user_table_gives_the_user_vocab_features(tmp_path: Path) -> None:
    from hf_recsys.data.movielens import read_users
    from hf_recsys.data.vocab import UserVocab

    u_user = DATA_DIR / "movielens-100k" / "u.user"
    if not u_user.is_file():  # a small synthetic equivalent in the same format
        u_user = tmp_path / "u.user"
        rng = np.random.default_rng(1)
        jobs = ["artist", "doctor", "none", "writer"]
        u_user.write_text("".join(f"{u}|{rng.integers(7, 74)}|{'MF'[u % 2]}|{jobs[u % 4]}|0{u}\n" for u in range(1, 81)))  # fmt: skip
    meta = read_users(u_user)
    ids = sorted(meta.gender)
    vocab = UserVocab(ids, **{k: [getattr(meta, k)[u] for u in ids] for k in ("gender", "age", "occupation")})
    df = pd.read_csv(u_user, sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"], encoding="latin-1")  # fmt: skip
    table = read_feature_table(df, "user_id", feature_columns=["gender", "age", "occupation"])
    assert table.kinds == {"gender": "categorical", "age": "numeric", "occupation": "categorical"}
    feats = build_feature_fields(table, vocab.user_ids)
    expected = vocab.feature_matrix()
    for j, name in enumerate(vocab.feature_names):
        if name != "age":  # UserVocab groups ages by hand; here they are quantile buckets
            np.testing.assert_array_equal(feats.matrices[name][:, 0], expected[:, j])
            assert feats.fields[name].values == vocab.categories(name)
    age = feats.matrices["age"][1:, 0]
    order = np.argsort(df.set_index("user_id").loc[vocab.user_ids, "age"].to_numpy(), kind="stable")
    assert np.all(np.diff(age[order]) >= 0) and age.min() == 1 and feats.fields["age"].size == MAX_BUCKETS + 1


# --------------------------------------------------------------------------------------------------------
# translating encoded values into another fit of the same field (a pretrained model's)
# --------------------------------------------------------------------------------------------------------
def test_translate_categorical_by_value_name() -> None:
    here = FeatureField("brand", "categorical", {"acme": 1, "zeta": 2, "new": 3})
    there = FeatureField("brand", "categorical", {"zeta": 1, "acme": 2, "old": 3})
    out = here.translate(np.array([[0], [1], [2], [3], [1]]), there)
    assert out.dtype == np.int32 and out.shape == (5, 1)
    assert out[:, 0].tolist() == [0, 2, 1, 0, 2]  # "new" is unknown there: 0; padding stays 0


def test_translate_multi_drops_unknown_values_and_repacks_the_rows() -> None:
    here = FeatureField("genres", "multi", {"Action": 1, "Comedy": 2, "Noir": 3}, max_values=3, delimiter="|")
    there = FeatureField("genres", "multi", {"Comedy": 1, "Action": 2, "Drama": 3}, max_values=2, delimiter="|")
    matrix = np.array([[0, 0, 0], [1, 2, 3], [3, 1, 0], [0, 2, 0], [3, 0, 0], [2, 1, 0]])
    out = here.translate(matrix, there)
    assert out.dtype == np.int32 and out.shape == (6, 2)  # the target's width
    # values kept in their order, unknown ones (Noir) dropped, the rest moved left, padded with 0
    assert out.tolist() == [[0, 0], [2, 1], [2, 0], [1, 0], [0, 0], [1, 2]]
    wider = FeatureField("genres", "multi", there.vocabulary, max_values=4, delimiter="|")
    assert here.translate(matrix, wider).tolist() == [[*row, 0, 0] for row in out.tolist()]
    narrow = FeatureField("genres", "multi", there.vocabulary, max_values=1, delimiter="|")
    assert here.translate(matrix, narrow)[:, 0].tolist() == [0, 2, 2, 1, 0, 1]  # the first known value


def test_translate_numeric_buckets_by_their_lower_edge() -> None:
    # here: < 1990 | [1990, 2000) | >= 2000; there: < 1980 | [1980, 2000) | [2000, 2010) | >= 2010
    here = FeatureField("year", "numeric", {"< 1990.0": 1, "[1990.0, 2000.0)": 2, ">= 2000.0": 3}, [1990.0, 2000.0])
    labels = {"< 1980.0": 1, "[1980.0, 2000.0)": 2, "[2000.0, 2010.0)": 3, ">= 2010.0": 4}
    there = FeatureField("year", "numeric", labels, [1980.0, 2000.0, 2010.0])
    out = here.translate(np.array([[0], [1], [2], [3]]), there)
    # 0 stays 0; [1990, 2000) -> [1980, 2000); >= 2000 -> [2000, 2010); the first bucket by its upper edge
    # (just below 1990) -> [1980, 2000)
    assert out[:, 0].tolist() == [0, 2, 2, 3]
    same = here.translate(np.array([[0], [1], [2], [3]]), here)  # a field translated to itself is unchanged
    assert same[:, 0].tolist() == [0, 1, 2, 3]
    # translating a fitted field agrees with bucketing the data's values where the buckets nest
    df = pd.DataFrame({"id": np.arange(6), "year": [1985.0, 1992.0, 1999.0, 2003.0, 2015.0, np.nan]})
    feats = build_feature_fields(read_feature_table(df, "id", kinds="numeric"), np.arange(6))
    direct = build_feature_fields(read_feature_table(df, "id", kinds="numeric"), np.arange(6), fields=[there])
    translated = feats.fields["year"].translate(feats.matrices["year"], there)
    np.testing.assert_array_equal(translated, direct.matrices["year"])


def test_translate_agrees_with_encoding_the_raw_values_with_the_other_field(items_csv: Path) -> None:
    old = build_feature_fields(read_feature_table(items_csv, "item_id", kinds={"brand": "categorical"}), [10, 30])
    new_table = pd.DataFrame({
        "item_id": [10, 30, 50, 60],
        "title": ["a", "b", "c", "d"],
        "brand": ["acme", "zeta", "other", None],
        "genres": ["Comedy|Action|Comedy", "Western|Drama", "Drama", "Action|Western|Comedy"],
        "price": [1.0, 2.0, 3.0, 4.0],
        "zip": ["1", "2", "3", "4"],
    })  # fmt: skip
    kinds = {"brand": "categorical", "genres": "multi", "price": "numeric", "zip": "categorical"}
    new = build_feature_fields(read_feature_table(new_table, "item_id", kinds=kinds), [10, 30, 50, 60])
    direct = build_feature_fields(
        read_feature_table(new_table, "item_id", kinds=kinds), [10, 30, 50, 60],
        fields=[old.fields["brand"], old.fields["genres"]],
    )  # fmt: skip
    for name in ("brand", "genres"):
        translated = new.fields[name].translate(new.matrices[name], old.fields[name])
        np.testing.assert_array_equal(translated, direct.matrices[name], err_msg=name)
    assert rows_as_sets(direct.matrices["genres"], old.fields["genres"])[1:] == [
        {"Action", "Comedy"}, {"Drama"}, {"Drama"}, {"Action", "Comedy"},
    ]  # fmt: skip


def test_translate_refuses_another_kind() -> None:
    here = FeatureField("brand", "categorical", {"acme": 1})
    with pytest.raises(ValueError, match="categorical here but multi"):
        here.translate(np.array([[1]]), FeatureField("brand", "multi", {"acme": 1}))


# --------------------------------------------------------------------------------------------------------
# MovieLens' side data as feature fields (hf_recsys.data.movielens_features)
# --------------------------------------------------------------------------------------------------------
def test_movielens_item_features_are_genres_and_decade_in_token_order() -> None:
    from hf_recsys.data.movielens_features import movielens_item_features
    from hf_recsys.data.vocab import ItemVocab

    items = ItemVocab(
        [50, 7, 1200, 3],  # unsorted: tokens follow ascending movie id (3, 7, 50, 1200)
        titles=["Star Wars (1977)", "Sabrina (1995)", "Aliens (1986)", "Untitled"],
        years=[1977, 1995, 1986, None],
        genres=[["Action", "Sci-Fi"], ["Comedy", "Romance"], ["Action", "Sci-Fi", "Thriller"], []],
        genre_names=["Action", "Comedy", "Romance", "Sci-Fi", "Thriller"],
    )
    feats = movielens_item_features(items)
    assert list(feats.fields) == ["genres", "decade"]
    genres, decade = feats.fields["genres"], feats.fields["decade"]
    assert (genres.kind, decade.kind) == ("multi", "categorical")
    assert decade.values == ["1970s", "1980s", "1990s"]
    assert genres.max_values == 3 and sorted(genres.values) == sorted(items.genre_names)
    for name in ("genres", "decade"):
        m = feats.matrices[name]
        assert m.dtype == np.int32 and m.shape[0] == len(items) and not m[0].any()  # row 0 = padding
    # the decade matrix matches each token's year; an unknown year is 0
    names = ["", *decade.values]
    got = [names[v] or None for v in feats.matrices["decade"][1:, 0]]
    expected = [None if items.year(t) is None else f"{items.year(t) // 10 * 10}s" for t in range(1, len(items))]
    assert got == expected == [None, "1990s", "1970s", "1980s"]
    # the genres matrix holds each token's genres (the genre matrix of the vocabulary, as sets)
    assert rows_as_sets(feats.matrices["genres"], genres) == [set(items.genres(t)) for t in range(len(items))]
    assert feats.report["matched"] == 4 and feats.report["missing_from_table"] == 0


def test_movielens_item_features_leave_out_a_field_without_values() -> None:
    from hf_recsys.data.movielens_features import movielens_item_features
    from hf_recsys.data.vocab import ItemVocab

    assert movielens_item_features(ItemVocab([3, 1])) is None  # a bare "user item" file
    only_years = movielens_item_features(ItemVocab([3, 1], years=[1999, 2001]))
    assert list(only_years.fields) == ["decade"]
    assert only_years.fields["decade"].values == ["1990s", "2000s"]
    assert only_years.matrices["decade"][:, 0].tolist() == [0, 2, 1]  # token 1 = movie 1 (2001), 2 = movie 3 (1999)


def test_movielens_user_features_are_categorical_by_user_index() -> None:
    from hf_recsys.data.movielens_features import movielens_user_features
    from hf_recsys.data.vocab import UserVocab

    users = UserVocab([30, 10, 20], gender=["M", "F", None], age=["25-34", "18-24", "25-34"], occupation=None)
    feats = movielens_user_features(users)
    assert list(feats.fields) == users.feature_names == ["gender", "age"]
    assert all(f.kind == "categorical" and f.max_values == 1 for f in feats.fields.values())
    for name, field in feats.fields.items():
        m = feats.matrices[name]
        assert m.shape == (len(users), 1) and not m[0].any()  # row 0 = the unknown user
        names = ["", *field.values]
        assert [names[v] or None for v in m[1:, 0]] == [users.feature_values(i)[name] for i in range(1, len(users))]
    assert movielens_user_features(UserVocab([1, 2])) is None  # no demographics (the CSV releases)
