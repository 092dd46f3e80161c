"""Item and user tables through load_interactions (hf_recsys.data.interaction_tables): fields and matrices in token
/ user-index order, titles in the item vocabulary, the prepared files and their cache key, the matching report in
describe(), and clear errors. Small files written by the tests, plus the S3-Rec Toys mapping through its preset
when the shared data is present. No training."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_recsys.data import interactions as interactions_module
from hf_recsys.data.features import MAPPING_COLUMN, FeatureTableError
from hf_recsys.data.interaction_tables import fields_file, matrices_file
from hf_recsys.data.interactions import load_interactions

DATA_DIR = Path(os.environ.get("HF_RECSYS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
# user 10: 20, 10, 40, 30; user 7: 20, 50, 30 (in time order) -> items 10..50 are tokens 1..5, users 7, 10 are 1, 2
LOG = "user_id,item_id,ts\n10,30,4\n7,20,1\n10,20,1\n10,40,3\n7,50,2\n10,10,2\n7,30,3\n"
ITEMS = (
    "item_id,title,brand,genres,price\n"
    "10,Ten,acme,Action|Comedy,1.5\n20,Twenty,acme,Comedy,2.5\n30,Thirty,zeta,Drama,3.5\n40,Forty,,Action,\n"
    "99,Ninety-nine,zeta,Horror,9\n"
)  # item 50 is not in the table, item 99 is not in the log


@pytest.fixture
def log_csv(tmp_path: Path) -> Path:
    path = tmp_path / "shop.csv"
    path.write_text(LOG)
    return path


@pytest.fixture
def items_csv(tmp_path: Path) -> Path:
    path = tmp_path / "items.csv"
    path.write_text(ITEMS)
    return path


@pytest.fixture
def table_reads(monkeypatch) -> list[int]:
    """Counts the reads of a table: a cached reload must not read it again."""
    calls = [0]
    real = interactions_module._tables.TableOptions.read

    def counting(self):
        calls[0] += 1
        return real(self)

    monkeypatch.setattr(interactions_module._tables.TableOptions, "read", counting)
    return calls


def load(log_csv: Path, tmp_path: Path, **kwargs):
    return load_interactions(log_csv, time_column="ts", cache_dir=tmp_path / "cache", **kwargs)


def values(data, field: str, token: int) -> set[str]:
    f = data.item_features.fields[field]
    return {f.values[i - 1] for i in data.item_features.matrices[field][token] if i}


def test_csv_item_table_categorical_multi_numeric_and_titles(log_csv, items_csv, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_recsys.data.features"):
        data = load(log_csv, tmp_path, item_table=items_csv, item_title_column="title",
                    item_feature_kinds={"price": "numeric"})  # fmt: skip
    assert "1 of 5 ids are not in the table" in caplog.text
    feats = data.item_features
    kinds = {n: f.kind for n, f in feats.fields.items()}
    assert kinds == {"brand": "categorical", "genres": "multi", "price": "numeric"}
    assert all(m.dtype == np.int32 and m.shape[0] == 6 and not m[0].any() for m in feats.matrices.values())
    assert [values(data, "genres", t) for t in range(1, 6)] == [{"Action", "Comedy"}, {"Comedy"}, {"Drama"},
                                                                  {"Action"}, set()]  # fmt: skip
    assert [values(data, "brand", t) for t in range(1, 6)] == [{"acme"}, {"acme"}, {"zeta"}, set(), set()]
    assert feats.matrices["price"][1:, 0].tolist() == [1, 2, 3, 0, 0]  # 3 distinct prices: a bucket each
    assert [data.items.title(t) for t in range(1, 6)] == ["Ten", "Twenty", "Thirty", "Forty", None]
    assert feats.titles == ["Ten", "Twenty", "Thirty", "Forty", None]
    described = data.describe()["item_features"]
    assert described == {
        "source_file": "items.csv", "id_column": "item_id",
        "fields": {"brand": {"kind": "categorical", "size": 3, "max_values": 1},
                   "genres": {"kind": "multi", "size": 4, "max_values": 2},
                   "price": {"kind": "numeric", "size": 4, "max_values": 1}},
        "ids": 5, "matched": 4, "missing_from_table": 1, "unused_table_rows": 1,
    }  # fmt: skip
    assert data.describe()["user_features"] is None and data.user_features is None
    for name in (fields_file("item"), matrices_file("item")):
        assert (data.cache_dir / name).is_file()
    assert not (data.cache_dir / fields_file("user")).exists()
    assert feats.report["missing_examples"] == [50] and feats.report["unused_examples"] == ["99"]


def test_feature_columns_pick_the_fields(log_csv, items_csv, tmp_path):
    data = load(log_csv, tmp_path, item_table=items_csv, item_feature_columns=["genres"], item_title_column="title")
    assert list(data.item_features.fields) == ["genres"]
    no_title = load(log_csv, tmp_path, item_table=items_csv, item_feature_columns=["brand"], item_id_column="item_id")
    assert no_title.items.title(1) is None and no_title.item_features.titles is None


def test_dataframe_item_table_with_string_ids_and_its_content_in_the_key(tmp_path, table_reads):
    log = pd.DataFrame({"user": ["a", "a", "a", "b", "b", "b"], "sku": ["x", "y", "z", "y", "z", "x"]})
    table = pd.DataFrame({"sku": ["x", "y", "z"], "tags": [["red", "big"], ["red"], []], "name": ["X", "Y", "Z"]})
    kwargs = {"user_column": "user", "item_column": "sku", "cache_dir": tmp_path, "item_title_column": "name"}
    data = load_interactions(log, item_table=table, **kwargs)
    field = data.item_features.fields["tags"]
    assert field.kind == "multi" and field.values == ["big", "red"]
    assert data.item_features.matrices["tags"].tolist() == [[0, 0], [2, 1], [2, 0], [0, 0]]
    assert data.items.title(data.items.encode("y")) == "Y"
    assert data.describe()["item_features"]["source_file"] == "pandas DataFrame"
    again = load_interactions(log, item_table=table.copy(), **kwargs)
    assert again.cache_dir == data.cache_dir and table_reads[0] == 1
    changed = load_interactions(log, item_table=table.assign(name=["X", "Y", "Zed"]), **kwargs)
    assert changed.cache_dir != data.cache_dir and changed.items.title(3) == "Zed"


def test_s3rec_mapping_dict_as_item_table(tmp_path):
    log = tmp_path / "seqs.txt"
    log.write_text("1 1 2 3\n2 2 3 4\n")
    mapping = {"1": [5, 7], "2": [7], "3": [], "9": [1]}
    data = load_interactions(log, format="s3rec", cache_dir=tmp_path, item_table=mapping)
    feats = data.item_features
    assert list(feats.fields) == [MAPPING_COLUMN] and feats.fields[MAPPING_COLUMN].values == ["5", "7"]
    r = feats.report
    assert (r["ids"], r["matched"], r["missing_from_table"], r["unused_table_rows"]) == (4, 3, 1, 1)


def test_user_table_rows_follow_the_user_index(log_csv, tmp_path):
    users = tmp_path / "users.csv"
    users.write_text("user_id,gender,age\n10,F,25\n7,M,40\n11,F,33\n")
    data = load(log_csv, tmp_path, user_table=users, user_feature_kinds="categorical")
    feats = data.user_features
    assert feats.matrices["gender"].shape == (len(data.users), 1) and not feats.matrices["gender"][0].any()
    gender = feats.fields["gender"]
    for user, want in ((7, "M"), (10, "F")):
        assert gender.values[feats.matrices["gender"][data.users.encode(user), 0] - 1] == want
    described = data.describe()["user_features"]
    assert (described["matched"], described["unused_table_rows"]) == (2, 1)
    assert data.item_features is None and feats.titles is None
    reloaded = load(log_csv, tmp_path, user_table=users, user_feature_kinds="categorical")
    assert all(np.array_equal(feats.matrices[n], reloaded.user_features.matrices[n]) for n in feats.matrices)
    assert reloaded.user_features.fields == feats.fields and reloaded.user_features.report == feats.report


def test_cache_changing_the_table_rebuilds_nothing_else_does(log_csv, items_csv, tmp_path, table_reads):
    kwargs = {"item_table": items_csv, "item_title_column": "title"}
    first = load(log_csv, tmp_path, **kwargs)
    assert table_reads[0] == 1
    again = load(log_csv, tmp_path, **kwargs)
    assert table_reads[0] == 1, "a cached reload read the table again"  # counted, not timed
    assert again.cache_dir == first.cache_dir and again.describe() == first.describe()
    assert again.item_features.fields == first.item_features.fields
    assert again.item_features.titles == first.item_features.titles
    assert load(log_csv, tmp_path).cache_dir != first.cache_dir  # without the table: another preparation
    other = load(log_csv, tmp_path, **kwargs, item_feature_columns=["brand"])
    assert table_reads[0] == 2 and other.cache_dir != first.cache_dir
    items_csv.write_text(ITEMS.replace("Ten,", "Ten (new),"))
    changed = load(log_csv, tmp_path, **kwargs)
    assert table_reads[0] == 3 and changed.cache_dir != first.cache_dir and changed.items.title(1) == "Ten (new)"
    assert first.items.title(1) == "Ten" and load(log_csv, tmp_path, **kwargs).cache_dir == changed.cache_dir


def test_ids_that_match_nothing_name_the_file_and_column_and_leave_no_cache(log_csv, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("item_id,brand\nA,x\nB,y\n")
    with pytest.raises(FeatureTableError, match=r"other\.csv.*column 'item_id'.*none of the 5 ids"):
        load(log_csv, tmp_path, item_table=other)
    assert not list((tmp_path / "cache").rglob("dataset_info.json"))


def test_a_missing_column_names_the_file_and_lists_the_columns(log_csv, items_csv, tmp_path):
    with pytest.raises(FeatureTableError, match=r"items\.csv.*no column 'sku'.*\['item_id', 'title', 'brand'"):
        load(log_csv, tmp_path, item_table=items_csv, item_id_column="sku")
    with pytest.raises(FeatureTableError, match=r"items\.csv.*no column 'color'"):
        load(log_csv, tmp_path, item_table=items_csv, item_feature_columns=["brand", "color"])
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv.*item table"):
        load(log_csv, tmp_path, item_table=tmp_path / "nowhere.csv")
    assert not list((tmp_path / "cache").rglob("dataset_info.json"))


def test_bad_table_options_fail_before_reading(log_csv, tmp_path):
    with pytest.raises(ValueError, match="item_id_column given without item_table"):
        load(log_csv, tmp_path, item_id_column="sku")
    with pytest.raises(ValueError, match="kind 'ordinal'"):
        load(log_csv, tmp_path, user_table=log_csv, user_feature_kinds="ordinal")
    with pytest.raises(TypeError, match="item_table"):
        load(log_csv, tmp_path, item_table=3)


# --------------------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------------------
def test_toys_preset_reads_the_s3rec_item2attributes(tmp_path, monkeypatch):
    from hf_recsys.training import DataArguments

    mapping = DATA_DIR / "amazon-toys-s3rec" / "Toys_and_Games_item2attributes.json"
    if not (mapping.is_file() and (DATA_DIR / "amazon-toys-s3rec" / "Toys_and_Games.txt").is_file()):
        pytest.skip(f"{mapping} not found (set HF_RECSYS_DATA_DIR)")
    monkeypatch.setenv("HF_RECSYS_DATA_DIR", str(DATA_DIR))
    args = DataArguments(spec="amazon-toys", cache_dir=str(tmp_path))
    assert args.item_table == str(mapping)
    data = args.load(seed=42)
    field = data.item_features.fields[MAPPING_COLUMN]
    assert field.kind == "multi" and field.size == 1027 + 1
    assert data.item_features.matrices[MAPPING_COLUMN].shape == (11924 + 1, field.max_values)
    described = data.describe()["item_features"]
    assert described["source_file"] == mapping.name and described["fields"][MAPPING_COLUMN]["size"] == 1028
    assert (described["ids"], described["matched"], described["missing_from_table"]) == (11924, 11924, 0)
    raw = json.loads(mapping.read_text())
    token = data.items.num_items // 2
    row = data.item_features.matrices[MAPPING_COLUMN][token]
    assert {field.values[i - 1] for i in row if i} == {str(a) for a in raw[str(data.items.decode(token))]}


def test_data_arguments_pass_the_tables_through(log_csv, items_csv, tmp_path):
    from hf_recsys.training import DataArguments

    args = DataArguments(data=str(log_csv), time_column="ts", item_table=str(items_csv), item_title_column="title",
                         item_feature_columns="genres,brand", cache_dir=str(tmp_path))  # fmt: skip
    data = args.load(seed=0)
    assert list(data.item_features.fields) == ["genres", "brand"] and data.items.title(2) == "Twenty"
