"""hf_recsys.data.interactions.load_interactions: any log -> cached Arrow splits + vocabularies (issue 21).

Small files written by the tests (CSV and S3-Rec text, integer and string ids, times in seconds and milliseconds or
none), the three protocols, train-only users, filters in the info, the cache (hit vs rebuild), and the real shared
files when present: LastFM (S3-Rec), the Amazon 2023 sample (string ids, ms) and the SASRec-format ML-1M against
``load_movielens``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_recsys.data import interactions as interactions_module
from hf_recsys.data import splits
from hf_recsys.data.filters import EmptyFilterResultError
from hf_recsys.data.interactions import INFO_FILE, InteractionData, load_interactions
from hf_recsys.data.sources import InteractionDataError, read_interactions, source_fingerprint

DATA_DIR = Path(os.environ.get("HF_RECSYS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
DESCRIBE_KEYS = {
    "name", "title", "variant", "source_file", "description", "num_users", "num_items", "num_interactions", "url",
    "license", "protocol", "filters", "time_unit", "item_features", "user_features", "repeat_consumption",
}  # fmt: skip


def rows_of(data: InteractionData, split: str) -> list[tuple]:
    d = data.dataset[split]
    return list(zip(d["user_id"], d["input_ids"], d["target"], d["timestamp"]))


def write_csv(path: Path, rows: list[tuple], header: str = "user_id,item_id,ts") -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n")
    return path


@pytest.fixture
def read_counter(monkeypatch) -> list[int]:
    """Counts the reads of a source: a cached reload must not read it again."""
    calls = [0]
    real = interactions_module.read_interactions

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(interactions_module, "read_interactions", counting)
    return calls


# user 10: items 30, 20, 40, 10 at times 4, 1, 3, 2 -> chronological 20, 10, 40, 30; user 7: 20, 50, 30 (t 1, 2, 3)
LOG = [(10, 30, 4), (7, 20, 1), (10, 20, 1), (10, 40, 3), (7, 50, 2), (10, 10, 2), (7, 30, 3)]


@pytest.fixture
def small_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "shop.csv", LOG)


def test_csv_integer_ids_leave_one_out(small_csv, tmp_path):
    data = load_interactions(small_csv, time_column="ts", cache_dir=tmp_path / "cache")
    # tokens 1..n in ascending item id order: 10->1, 20->2, 30->3, 40->4, 50->5
    assert data.items.num_items == 5 and [data.items.decode(t) for t in range(1, 6)] == [10, 20, 30, 40, 50]
    assert [data.users.decode(i) for i in (1, 2)] == [7, 10]
    assert rows_of(data, "test") == [(7, [2, 5], 3, 3), (10, [2, 1, 4], 3, 4)]
    assert rows_of(data, "validation") == [(7, [2], 5, 2), (10, [2, 1], 4, 3)]
    assert rows_of(data, "train") == [(10, [2], 1, 2)]  # user 7 has 3 items: nothing left before validation
    assert data.dataset["test"]["user_index"] == [1, 2]
    features = data.dataset["train"].features
    assert {k: str(v) for k, v in features.items()} == {k: str(v) for k, v in splits.ROW_FEATURES.items()}
    info = data.describe()
    assert set(info) == DESCRIBE_KEYS
    assert info | {"description": None, "filters": None} == {
        "name": "shop", "title": "shop", "variant": "interactions", "source_file": "shop.csv", "description": None,
        "num_users": 2, "num_items": 5, "num_interactions": 7, "url": None, "license": None,
        "protocol": "leave-one-out", "filters": None, "time_unit": "s", "item_features": None, "user_features": None,
        "repeat_consumption": {"repeat_share": 0.0, "repeats": False},
    }  # fmt: skip
    assert data.interactions_count == 7 and data.protocol == "leave-one-out"
    text = json.dumps(data.info) + json.dumps(info)
    assert "movielens" not in text.lower() and "movie" not in info["description"].lower()
    folder = data.cache_dir
    assert (folder / INFO_FILE).is_file() and (folder / "item_vocab.json").is_file()
    assert not list(folder.glob("*.tmp")) and not list(folder.parent.glob("*.incomplete"))


def test_name_and_license(small_csv, tmp_path):
    data = load_interactions(small_csv, time_column="ts", cache_dir=tmp_path, name="my-shop", license="CC-BY-4.0")
    assert data.describe()["name"] == "my-shop" and data.describe()["license"] == "CC-BY-4.0"


def test_s3rec_format_matches_csv_in_file_order(tmp_path):
    s3rec = tmp_path / "Toy.txt"
    s3rec.write_text("1 5 3 9 2\n2 3 5 7\n3 9 1\n")
    csv = write_csv(tmp_path / "toy.csv", [(1, 5), (2, 3), (1, 3), (3, 9), (1, 9), (2, 5), (1, 2), (2, 7), (3, 1)],
                    "user_id,item_id")  # fmt: skip
    a = load_interactions(s3rec, format="s3rec", cache_dir=tmp_path / "c")
    b = load_interactions(csv, cache_dir=tmp_path / "c")
    assert a.describe()["name"] == "Toy" and a.describe()["time_unit"] is None
    for split in splits.SPLITS:
        assert rows_of(a, split) == rows_of(b, split)
    # items 1, 2, 3, 5, 7, 9 -> tokens 1..6; user 1: 5 3 9 2 -> 4 3 6 2; timestamps unknown: 0
    assert rows_of(a, "test")[0] == (1, [4, 3, 6], 2, 0)
    assert rows_of(a, "train") == [(1, [4], 3, 0), (3, [6], 1, 0)]  # user 3 (2 items) is train-only
    assert a.info["num_train_only_users"] == 1


def test_time_in_milliseconds(tmp_path):
    rows = [("1", 100, 1_600_000_002_500), ("1", 200, 1_600_000_001_000), ("1", 300, 1_600_000_003_000)]
    path = write_csv(tmp_path / "ms.csv", rows)
    data = load_interactions(path, time_column="ts", cache_dir=tmp_path / "c")
    assert data.describe()["time_unit"] == "ms"
    assert rows_of(data, "test") == [(1, [2, 1], 3, 1_600_000_003)]  # 200, 100 -> 300; target time in seconds
    forced = load_interactions(path, time_column="ts", time_unit="ms", cache_dir=tmp_path / "c")
    assert rows_of(forced, "test") == rows_of(data, "test") and forced.cache_dir != data.cache_dir


def test_no_time_column_keeps_file_order(small_csv, tmp_path):
    data = load_interactions(small_csv, cache_dir=tmp_path)  # ts ignored: file order is the time order
    # user 10 in file order: 30, 20, 40, 10 -> tokens 3, 2, 4, 1
    assert rows_of(data, "test") == [(7, [2, 5], 3, 0), (10, [3, 2, 4], 1, 0)]
    assert data.describe()["time_unit"] is None and "order of the rows" in data.describe()["description"]


def test_dataframe_source(tmp_path):
    df = pd.DataFrame(LOG, columns=["user_id", "item_id", "ts"])
    data = load_interactions(df, time_column="ts", cache_dir=tmp_path)
    assert rows_of(data, "test") == [(7, [2, 5], 3, 3), (10, [2, 1, 4], 3, 4)]
    assert data.describe()["name"] == "dataframe"


def test_filters_are_reported(tmp_path):
    rows = [(u, i, t, r) for u in range(1, 6) for t, (i, r) in enumerate([(1, 5), (2, 4), (3, 1), (4, 5), (u + 4, 5)])]
    path = write_csv(tmp_path / "rated.csv", rows, "user_id,item_id,ts,rating")
    data = load_interactions(
        path,
        time_column="ts",
        filters=[{"name": "min_rating", "column": "rating", "threshold": 4}, {"k_core": {"user_k": 2, "item_k": 2}}],
        cache_dir=tmp_path,
    )
    steps = data.describe()["filters"]["filters"]
    assert [s["name"] for s in steps] == ["min_rating", "k_core", "min_history"]
    assert (steps[0]["rows_before"], steps[0]["rows_after"]) == (25, 20)
    assert steps[1]["items_after"] == 3  # items 1, 2, 4 (items 5..9 are rated by one user each)
    assert steps[1]["rows_after"] == data.interactions_count == 15
    assert data.info["filters"] == data.describe()["filters"]
    assert "min_rating, k_core" in data.describe()["description"]
    with pytest.raises(EmptyFilterResultError, match="min_rating"):
        load_interactions(
            path, filters=[{"name": "min_rating", "column": "rating", "threshold": 9}], cache_dir=tmp_path
        )
    with pytest.raises(ValueError, match="unknown filter"):
        load_interactions(path, filters=["no_such_filter"], cache_dir=tmp_path)


def test_train_only_users(tmp_path):
    # user 1: 5 items (evaluated); user 2: 2 items; user 3: 1 item (nothing to learn from)
    rows = [(1, i) for i in (1, 2, 3, 4, 5)] + [(2, 6), (2, 7), (3, 8)]
    path = write_csv(tmp_path / "short.csv", rows, "user_id,item_id")
    data = load_interactions(path, cache_dir=tmp_path)
    assert rows_of(data, "train") == [(1, [1, 2], 3, 0), (2, [6], 7, 0)]  # user 2: its whole sequence
    assert rows_of(data, "validation") == [(1, [1, 2, 3], 4, 0)]
    assert rows_of(data, "test") == [(1, [1, 2, 3, 4], 5, 0)]
    assert data.info["num_train_only_users"] == 2 and data.users.num_users == 3
    step = data.describe()["filters"]["filters"][-1]
    assert step["name"] == "min_history" and step["details"] == {"train_only_users": 2}
    off = load_interactions(path, min_history=0, cache_dir=tmp_path)  # no train-only users: user 2 is tested
    assert rows_of(off, "test") == [(1, [1, 2, 3, 4], 5, 0), (2, [6], 7, 0)]
    assert rows_of(off, "train") == [(1, [1, 2], 3, 0)]


def test_leave_one_out_without_train_only_is_unchanged():
    seqs = splits.Sequences(np.array([1, 2]), np.array([0, 5]), np.array([5, 2]), np.arange(1, 8), np.zeros(7))
    marked = splits.Sequences(**{**seqs.__dict__, "train_only": np.array([False, False])})
    for split in splits.SPLITS:
        a, b = splits.leave_one_out(seqs)[split], splits.leave_one_out(marked)[split]
        assert all(np.array_equal(x, y) for x, y in zip(a.__dict__.values(), b.__dict__.values()))


@pytest.fixture
def timed_log(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    rows = [(u, int(rng.integers(1, 30)), int(t)) for u in range(1, 21) for t in rng.integers(1, 1000, size=8)]
    return write_csv(tmp_path / "timed.csv", rows)


def test_seed_windows(timed_log, tmp_path):
    data = load_interactions(timed_log, time_column="ts", protocol="seed-windows", seed=3, cache_dir=tmp_path)
    assert data.protocol == "seed-windows" and data.describe()["protocol"] == "seed-windows"
    counts = {s: len(data.dataset[s]) for s in splits.SPLITS}
    assert sum(counts.values()) == 20 * 4  # 8 items, windows of 4 every 2: 4 windows per user
    assert counts["test"] == 12  # round(80 * 0.15)
    again = load_interactions(timed_log, time_column="ts", protocol="seed-windows", seed=4, cache_dir=tmp_path)
    assert again.cache_dir != data.cache_dir and rows_of(again, "test") != rows_of(data, "test")


def test_temporal(timed_log, tmp_path):
    data = load_interactions(timed_log, time_column="ts", protocol="temporal", cache_dir=tmp_path)
    cut = data.info["test_cut"]
    assert all(t > cut for t in data.dataset["test"]["timestamp"])
    assert all(t <= data.info["validation_cut"] for t in data.dataset["train"]["timestamp"])
    with pytest.raises(InteractionDataError, match="needs a time column"):
        load_interactions(timed_log, protocol="temporal", cache_dir=tmp_path)
    s3rec = tmp_path / "x.txt"
    s3rec.write_text("1 2 3 4\n")
    with pytest.raises(InteractionDataError, match="needs a time column"):
        load_interactions(s3rec, format="s3rec", protocol="temporal", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="protocol"):
        load_interactions(timed_log, protocol="random", cache_dir=tmp_path)


def test_cache_hit_and_rebuilds(small_csv, tmp_path, read_counter):
    cache = tmp_path / "cache"
    first = load_interactions(small_csv, time_column="ts", cache_dir=cache)
    assert read_counter[0] == 1
    again = load_interactions(small_csv, time_column="ts", cache_dir=cache)
    assert read_counter[0] == 1, "a cached reload read the source again"
    assert again.cache_dir == first.cache_dir and rows_of(again, "test") == rows_of(first, "test")
    assert again.describe() == first.describe()
    # an option rebuilds
    other = load_interactions(small_csv, time_column="ts", min_history=0, cache_dir=cache)
    assert read_counter[0] == 2 and other.cache_dir != first.cache_dir
    # a changed file rebuilds, with the new content
    write_csv(small_csv, [*LOG, (7, 60, 9)])
    changed = load_interactions(small_csv, time_column="ts", cache_dir=cache)
    assert read_counter[0] == 3 and changed.cache_dir != first.cache_dir
    assert rows_of(changed, "test")[0] == (7, [2, 5, 3], 6, 9)


def test_source_fingerprint_matches_the_read(small_csv, tmp_path):
    for kwargs in ({}, {"time_column": "ts"}, {"time_column": "ts", "time_unit": "s"}):
        assert source_fingerprint(small_csv, **kwargs) == read_interactions(small_csv, **kwargs).fingerprint
    s3rec = tmp_path / "x.txt"
    s3rec.write_text("1 2 3 4\n")
    assert source_fingerprint(s3rec, format="s3rec") == read_interactions(s3rec, format="s3rec").fingerprint
    assert source_fingerprint(pd.DataFrame({"user_id": [1], "item_id": [2]})) is None


def test_bad_input_leaves_no_cache(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [(1, 2)], "user,item_id")
    with pytest.raises(InteractionDataError, match=r"bad\.csv.*'user_id'.*\['user', 'item_id'\]"):
        load_interactions(path, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("dataset_info.json"))
    assert not list((tmp_path / "cache").rglob("*.arrow"))


def test_string_ids(tmp_path):
    rows = [("u-b", "B01", 30), ("u-a", "A9", 10), ("u-b", "A9", 10), ("u-a", "C3", 20), ("u-b", "B01", 20),
            ("u-a", "B01", 30), ("u-b", "C3", 40)]  # fmt: skip
    path = write_csv(tmp_path / "strings.csv", rows)
    data = load_interactions(path, time_column="ts", cache_dir=tmp_path)
    assert str(data.dataset["test"].features["user_id"]) == str(splits.row_features("string")["user_id"])
    # items A9, B01, C3 -> tokens 1, 2, 3; users u-a, u-b -> 1, 2
    assert rows_of(data, "test") == [("u-a", [1, 3], 2, 30), ("u-b", [1, 2, 2], 3, 40)]
    assert data.items.decode(2) == "B01" and data.users.encode("u-b") == 2
    reloaded = load_interactions(path, time_column="ts", cache_dir=tmp_path)
    assert reloaded.items.decode(1) == "A9" and rows_of(reloaded, "test") == rows_of(data, "test")


# ---------------------------------------------------------------------------------------------------------
# The real shared files
# ---------------------------------------------------------------------------------------------------------
def _shared(relative: str) -> Path:
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"{path} not found (set HF_RECSYS_DATA_DIR)")
    return path


def test_lastfm_s3rec(tmp_path, read_counter):
    path = _shared("lastfm-s3rec/LastFM.txt")
    data = load_interactions(path, format="s3rec", cache_dir=tmp_path)
    info = data.describe()
    assert info["name"] == "LastFM" and info["num_users"] == 1090 and info["source_file"] == "LastFM.txt"
    first_line = path.read_text().splitlines()[0].split()
    test = data.dataset["test"][0]
    decoded = [data.items.decode(t) for t in [*test["input_ids"], test["target"]]]
    assert test["user_id"] == int(first_line[0]) and decoded == [int(i) for i in first_line[1:]]
    load_interactions(path, format="s3rec", cache_dir=tmp_path)
    assert read_counter[0] == 1


def test_amazon_2023_sample_string_ids(tmp_path):
    path = _shared("amazon-reviews-2023-sample/All_Beauty.csv")
    df = pd.read_csv(path, dtype={"user_id": str, "parent_asin": str})
    data = load_interactions(path, item_column="parent_asin", time_column="timestamp", cache_dir=tmp_path)
    info = data.describe()
    assert info["time_unit"] == "ms" and info["name"] == "All_Beauty"
    assert info["num_users"] == df["user_id"].nunique() and info["num_items"] == df["parent_asin"].nunique()
    assert data.dataset["test"].features["user_id"].dtype == "string"
    assert set(data.dataset["train"]["user_id"]) <= set(df["user_id"])
    row = data.dataset["test"][0]
    user = df[df["user_id"] == row["user_id"]].sort_values("timestamp", kind="stable")
    assert data.items.decode(row["target"]) == user["parent_asin"].iloc[-1]
    assert row["timestamp"] == user["timestamp"].iloc[-1] // 1000


def test_sasrec_ml1m_matches_load_movielens(tmp_path):
    """The SASRec-format ML-1M read as a generic log gives the leave-one-out rows of load_movielens (same
    histories and targets per user). load_movielens maps the file's ids back to the original MovieLens ids
    (sources/sas_to_original_*.txt), so the rows are compared through those maps."""
    from hf_recsys.data import load_movielens

    folder = DATA_DIR / "movielens-1m"
    path = next(iter(sorted(folder.glob("sasrec_ml-1m*.txt"))), None) if folder.is_dir() else None
    item_map, user_map = (
        folder / "sources" / "sas_to_original_items.txt",
        folder / "sources" / "sas_to_original_users.txt",
    )
    if path is None or not item_map.is_file() or not user_map.is_file():
        pytest.skip(f"SASRec-format ML-1M with its id maps not found under {folder}")
    reference = load_movielens("ml-1m", data_dir=DATA_DIR, cache_dir=tmp_path)
    if reference.describe()["variant"] != "sasrec-benchmark":
        pytest.skip("load_movielens read the official ratings, not the SASRec-format file")
    generic = load_interactions(path, format="sasrec", cache_dir=tmp_path)
    items = dict(np.loadtxt(item_map, dtype=np.int64).tolist())
    users = dict(np.loadtxt(user_map, dtype=np.int64).tolist())

    def by_user(data, split, item_of, user_of) -> dict[int, tuple[list[int], int]]:
        d = data.dataset[split]
        decode = data.items.decode_many
        return {
            user_of(u): ([item_of(i) for i in decode(np.asarray(h, dtype=np.int64)).tolist()] if h else [],
                         item_of(int(decode(np.array([t]))[0])))
            for u, h, t in zip(d["user_id"], d["input_ids"], d["target"])
        }  # fmt: skip

    for split in splits.SPLITS:
        got = by_user(generic, split, items.__getitem__, users.__getitem__)
        want = by_user(reference, split, int, int)
        assert len(got) == len(want) == 6040 and got == want, split
    assert generic.describe()["num_items"] == reference.describe()["num_items"] == 3416
