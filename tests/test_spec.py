"""Dataset spec files and presets: every preset parses into known data options, user specs in JSON or YAML resolve
their data path next to the file, options given explicitly win, and bad specs fail with one clear message."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hf_recsys.data.spec import PATH_OPTIONS, PRESETS_DIR, DatasetSpecError, preset_names, read_spec
from hf_recsys.training import DataArguments

DATA_OPTIONS = {f.name for f in dataclasses.fields(DataArguments)} - {"spec"}


def test_every_preset_names_known_data_options(monkeypatch):
    assert {"ml-1m", "ml-100k", "sasrec-ml-1m", "amazon-toys", "lastfm"} <= set(preset_names())
    for path in PRESETS_DIR.glob("*.json"):
        spec = json.loads(path.read_text())
        assert spec.pop("description"), path.name
        assert set(spec) <= DATA_OPTIONS, path.name
        if "data" in spec:
            assert not Path(spec["data"]).is_absolute() and "data_name" in spec, path.name
        assert not any(Path(spec[k]).is_absolute() for k in PATH_OPTIONS if k in spec), path.name


def test_movielens_presets_pick_the_release():
    assert DataArguments(spec="ml-100k").dataset == "ml-100k" and DataArguments(spec="ml-100k").data is None


def test_data_presets_read_the_local_data_folder(shared_data_dir, monkeypatch):
    monkeypatch.setenv("HF_RECSYS_DATA_DIR", str(shared_data_dir))
    args = DataArguments(spec="lastfm")
    assert args.data == str(shared_data_dir / "lastfm-s3rec" / "LastFM.txt")
    assert (args.data_format, args.dataset_name) == ("s3rec", "lastfm")
    assert args.item_table == str(shared_data_dir / "lastfm-s3rec" / "LastFM_item2attributes.json")
    toys = DataArguments(spec="amazon-toys")
    assert toys.item_table == str(shared_data_dir / "amazon-toys-s3rec" / "Toys_and_Games_item2attributes.json")
    beauty = DataArguments(spec="amazon-beauty-2023-sample")
    assert (beauty.item_column, beauty.time_column) == ("parent_asin", "timestamp")


def test_a_data_preset_without_a_data_folder_says_what_to_set(monkeypatch):
    monkeypatch.delenv("HF_RECSYS_DATA_DIR", raising=False)
    with pytest.raises(DatasetSpecError, match="set HF_RECSYS_DATA_DIR"):
        DataArguments(spec="amazon-toys")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_spec_file_resolves_its_data_next_to_it_and_explicit_options_win(tmp_path, suffix):
    (tmp_path / "events.csv").write_text("customer,sku,when\nu1,a,1\nu1,b,2\n")
    values = {"data": "events.csv", "user_column": "customer", "item_column": "sku", "time_column": "when"}
    path = tmp_path / f"shop{suffix}"
    path.write_text(json.dumps(values) if suffix == ".json" else "".join(f"{k}: {v}\n" for k, v in values.items()))
    args = DataArguments(spec=str(path))
    assert args.data == str(tmp_path / "events.csv") and args.user_column == "customer"
    explicit = DataArguments(spec=str(path), item_column="product")
    assert explicit.item_column == "product" and explicit.time_column == "when"


def test_bad_specs_fail_with_one_clear_message(tmp_path):
    with pytest.raises(DatasetSpecError, match="no such preset"):
        read_spec("no-such-preset")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "data": "x.csv",\n  oops\n}')
    with pytest.raises(DatasetSpecError, match=r"bad.json, line 3: not valid JSON"):
        read_spec(bad)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"item_col": "sku"}))
    with pytest.raises(DatasetSpecError, match="unknown option 'item_col'"):
        DataArguments(spec=str(unknown))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"data": "nowhere.csv"}))
    with pytest.raises(DatasetSpecError, match=r"nowhere\.csv was not found"):
        read_spec(missing)
    listed = tmp_path / "list.yaml"
    listed.write_text("- data\n")
    with pytest.raises(DatasetSpecError, match="a mapping of data options"):
        read_spec(listed)
    (tmp_path / "events.csv").write_text("user_id,item_id\n1,2\n")
    no_table = tmp_path / "no_table.json"
    no_table.write_text(json.dumps({"data": "events.csv", "item_table": "tables/items.csv"}))
    with pytest.raises(
        DatasetSpecError, match=r"no_table\.json: its item_table file .*tables/items\.csv was not found"
    ):
        read_spec(no_table)


def test_a_spec_file_resolves_its_tables_next_to_it(tmp_path):
    (tmp_path / "tables").mkdir()
    for name in ("events.csv", "tables/items.csv", "tables/users.parquet"):
        (tmp_path / name).write_text("")
    values = {"data": "events.csv", "item_table": "tables/items.csv", "user_table": "tables/users.parquet",
              "item_title_column": "title", "item_feature_columns": ["genres", "brand"]}  # fmt: skip
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(values))
    args = DataArguments(spec=str(path))
    assert (args.item_table, args.user_table) == (
        str(tmp_path / "tables/items.csv"),
        str(tmp_path / "tables/users.parquet"),
    )
    kwargs = args.table_kwargs()
    assert kwargs["item_feature_columns"] == ["genres", "brand"] and kwargs["item_title_column"] == "title"
    assert DataArguments(item_feature_columns="genres, brand").table_kwargs()["item_feature_columns"] == [
        "genres",
        "brand",
    ]


def test_table_options_on_the_command_line(tmp_path):
    from transformers import HfArgumentParser

    argv = ["--data", "log.csv", "--item_table", "items.csv", "--item_id_column", "sku", "--item_title_column",
            "name", "--item_feature_columns", "genres,brand", "--user_table", "users.csv", "--user_id_column",
            "customer", "--user_feature_columns", "age"]  # fmt: skip
    (args,) = HfArgumentParser(DataArguments).parse_args_into_dataclasses(args=argv)
    assert args.table_kwargs() == {
        "item_table": "items.csv", "item_id_column": "sku", "item_title_column": "name",
        "item_feature_columns": ["genres", "brand"], "user_table": "users.csv", "user_id_column": "customer",
        "user_feature_columns": ["age"],
    }  # fmt: skip
    with pytest.raises(ValueError, match="--item_table: item and user tables go with --data"):
        DataArguments(item_table="items.csv", cache_dir=str(tmp_path)).load(seed=0)
