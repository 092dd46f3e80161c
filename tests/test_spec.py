"""Dataset spec files and presets: every preset parses into known data options, user specs in JSON or YAML resolve
their data path next to the file, options given explicitly win, and bad specs fail with one clear message."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hf_recsys.data.spec import PRESETS_DIR, DatasetSpecError, preset_names, read_spec
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


def test_movielens_presets_pick_the_release():
    assert DataArguments(spec="ml-100k").dataset == "ml-100k" and DataArguments(spec="ml-100k").data is None


def test_data_presets_read_the_local_data_folder(shared_data_dir, monkeypatch):
    monkeypatch.setenv("HF_RECSYS_DATA_DIR", str(shared_data_dir))
    args = DataArguments(spec="lastfm")
    assert args.data == str(shared_data_dir / "lastfm-s3rec" / "LastFM.txt")
    assert (args.data_format, args.dataset_name) == ("s3rec", "lastfm")
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
