"""hf_recsys.data.sources: every input form, time units, chronological order, bad input, and the real shared files."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_recsys.data.sources import (
    InteractionDataError,
    InteractionLog,
    SourceNotFoundError,
    chronological,
    read_interactions,
)

DATA_DIR = Path(os.environ.get("HF_RECSYS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
CSV = "user_id,item_id,rating,timestamp\nu1,a,5,1600000000000\nu2,b,3,1600000100000\nu1,c,4,1600000050000\n"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def col(log: InteractionLog, name: str) -> list:
    return log.table[name].to_pylist()


# ---------------------------------------------------------------------------------------------------------
# Input forms
# ---------------------------------------------------------------------------------------------------------
def test_csv_string_ids_ms_timestamps(tmp_path):
    log = read_interactions(write(tmp_path / "log.csv", CSV), time_column="timestamp", keep_columns=["rating"])
    assert log.table.column_names == ["user_id", "item_id", "timestamp", "rating", "row"]
    assert col(log, "user_id") == ["u1", "u2", "u1"] and log.table.schema.field("user_id").type == pa.string()
    assert col(log, "timestamp") == [1600000000, 1600000100, 1600000050]
    assert col(log, "rating") == [5, 3, 4] and col(log, "row") == [0, 1, 2]
    assert log.time_unit == "ms" and log.format == "csv" and log.source.endswith("log.csv")
    info = log.info()
    assert info["num_rows"] == 3 and info["num_users"] == 2 and info["num_items"] == 3 and info["time_unit"] == "ms"
    json.dumps(info)


def test_text_ids_become_int64_only_when_canonical(tmp_path):
    ints = read_interactions(write(tmp_path / "a.csv", "user_id,item_id\n1,10\n2,-3\n"))
    assert ints.table.schema.field("user_id").type == pa.int64() and col(ints, "item_id") == [10, -3]
    zeros = read_interactions(write(tmp_path / "b.csv", "user_id,item_id\n1,007\n2,8\n"))
    assert col(zeros, "item_id") == ["007", "8"] and col(zeros, "user_id") == [1, 2]
    assert ints.time_unit is None and col(ints, "timestamp") == [None, None]


def test_tsv_gzip_and_custom_columns(tmp_path):
    import gzip

    text = "uid\tiid\twhen\n7\t1\t2021-03-04\n8\t2\t2021-03-05T00:00:10Z\n"
    for path in (write(tmp_path / "log.tsv", text), write(tmp_path / "log.tsv.gz", gzip.compress(text.encode()))):
        log = read_interactions(path, user_column="uid", item_column="iid", time_column="when")
        assert col(log, "user_id") == [7, 8] and col(log, "timestamp") == [1614816000, 1614902410]
        assert log.time_unit == "iso" and log.format == "tsv"


def test_parquet_with_datetime_column_and_projection(tmp_path):
    times = pd.to_datetime(["2021-03-04 05:06:07", "2021-03-04 05:06:08"]).tz_localize("Europe/Paris")
    table = pa.table({"user": [1, 2], "item": ["x", "y"], "when": pa.array(times), "text": ["long", "text"]})
    pq.write_table(table, tmp_path / "log.parquet")
    log = read_interactions(tmp_path / "log.parquet", user_column="user", item_column="item", time_column="when")
    assert col(log, "timestamp") == [1614830767, 1614830768]  # 05:06:07 in Paris is 04:06:07 UTC
    assert log.time_unit == "datetime" and "text" not in log.table.column_names
    assert log.table.schema.field("item_id").type == pa.string()


def test_jsonl_iso_strings_and_zones(tmp_path):
    rows = [
        {"user_id": 1, "item_id": 5, "t": "2021-03-04T05:06:07.123456789Z", "review": "x" * 50},
        {"user_id": 1, "item_id": 6, "t": "2021-03-04T07:06:07+02:00"},
        {"user_id": 2, "item_id": 5, "t": "2021-03-04 05:06:07"},
    ]
    path = write(tmp_path / "log.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    log = read_interactions(path, time_column="t")
    assert col(log, "timestamp") == [1614834367] * 3 and log.time_unit == "iso" and log.format == "jsonl"
    assert log.table.num_columns == 4


def test_glob_and_list_of_files(tmp_path):
    write(tmp_path / "part-0.csv", "user_id,item_id\n1,a\n2,b\n")
    write(tmp_path / "part-1.csv", "user_id,item_id\n1,c\n")
    log = read_interactions(str(tmp_path / "part-*.csv"))
    assert col(log, "item_id") == ["a", "b", "c"] and col(log, "row") == [0, 1, 2]
    same = read_interactions([tmp_path / "part-0.csv", tmp_path / "part-1.csv"])
    assert col(same, "item_id") == ["a", "b", "c"]
    write(tmp_path / "part-1.csv", "user_id,item_id\n1,\n")
    with pytest.raises(InteractionDataError, match=r"part-1\.csv, row 0 \(line 2\), column 'item_id': missing id"):
        read_interactions(str(tmp_path / "part-*.csv"))


@pytest.fixture
def http_root(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url(http_root):
    folder, url = http_root
    write(folder / "log.csv", CSV)
    pq.write_table(pa.table({"user_id": ["u1"], "item_id": [3], "timestamp": [1600000000]}), folder / "log.parquet")
    log = read_interactions(f"{url}/log.csv", time_column="timestamp")
    assert col(log, "user_id") == ["u1", "u2", "u1"] and log.time_unit == "ms"
    log = read_interactions(f"{url}/log.parquet", time_column="timestamp")
    assert col(log, "item_id") == [3] and log.time_unit == "s"


def test_dataframe():
    df = pd.DataFrame(
        {
            "user": pd.Categorical(["b", "a", "b"]),
            "item": [3, 1, 2],
            "when": pd.to_datetime(["2021-01-01", "2021-01-02", "2021-01-03"]),
            "event": ["view", "buy", "view"],
        }
    )
    log = read_interactions(df, user_column="user", item_column="item", time_column="when", keep_columns=["event"])
    assert col(log, "user_id") == ["b", "a", "b"] and col(log, "item_id") == [3, 1, 2]
    assert col(log, "timestamp") == [1609459200, 1609545600, 1609632000] and log.time_unit == "datetime"
    assert col(log, "event") == ["view", "buy", "view"] and log.format == "dataframe"
    other = read_interactions(df.assign(item=[3, 1, 4]), user_column="user", item_column="item", time_column="when")
    again = read_interactions(df.copy(), user_column="user", item_column="item", time_column="when")
    assert log.fingerprint != other.fingerprint and again.fingerprint != other.fingerprint
    assert (
        again.fingerprint
        == read_interactions(df, user_column="user", item_column="item", time_column="when").fingerprint
    )


def test_dataset_and_dataset_dict():
    ds = datasets.Dataset.from_dict({"user_id": [1, 2], "item_id": ["x", "y"], "ts": [10, 20], "extra": [0.5, 1.5]})
    log = read_interactions(ds, time_column="ts")
    assert col(log, "item_id") == ["x", "y"] and col(log, "timestamp") == [10, 20] and log.format == "dataset"
    assert log.fingerprint == read_interactions(ds, time_column="ts").fingerprint
    both = datasets.DatasetDict(train=ds, test=ds.select([0]))
    assert read_interactions(both, split="test").num_rows == 1
    with pytest.raises(InteractionDataError, match=r"has the splits \['train', 'test'\].*split="):
        read_interactions(both)


def test_hub_id_through_load_dataset_on_a_local_folder(tmp_path):
    folder = tmp_path / "my-org" / "my-log"
    (folder / "data").mkdir(parents=True)
    table = pa.table({"user_id": ["u1", "u2", "u1"], "item_id": [1, 2, 3], "ts": [1.5e9, 1.6e9, 1.7e9]})
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    log = read_interactions(str(folder), time_column="ts")
    assert log.format == "hub" and log.num_rows == 3 and log.time_unit == "s"
    assert col(log, "timestamp") == [1500000000, 1600000000, 1700000000]
    with pytest.raises(SourceNotFoundError, match="no-such-org/no-such-dataset: cannot load"):
        read_interactions("no-such-org/no-such-dataset")


def test_sasrec_and_s3rec_text_formats(tmp_path):
    log = read_interactions(write(tmp_path / "seq.txt", "1 10\n1 11\n\n2 10\r\n"), format="sasrec")
    assert col(log, "user_id") == [1, 1, 2] and col(log, "item_id") == [10, 11, 10] and log.time_unit is None
    log = read_interactions(write(tmp_path / "s3.txt", "1 5 6 7\n2  8\t9\n"), format="s3rec")
    assert col(log, "user_id") == [1, 1, 1, 2, 2] and col(log, "item_id") == [5, 6, 7, 8, 9]
    assert col(log, "row") == [0, 1, 2, 3, 4]
    with pytest.raises(InteractionDataError, match=r"seq\.txt, line 2: found 3 field\(s\) in '1 2 3'.*'user item'"):
        read_interactions(write(tmp_path / "seq.txt", "1 2\n1 2 3\n"), format="sasrec")
    with pytest.raises(InteractionDataError, match=r"s3\.txt, line 1: found 1 field\(s\)"):
        read_interactions(write(tmp_path / "s3.txt", "1\n"), format="s3rec")
    with pytest.raises(ValueError, match="no time_column or keep_columns"):
        read_interactions(tmp_path / "s3.txt", format="s3rec", time_column="t")


# ---------------------------------------------------------------------------------------------------------
# Time units
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "unit", "detected"),
    [
        ([1_600_000_000, 1_600_000_001], "auto", "s"),
        ([1_600_000_000_999, 1_600_000_001_000], "auto", "ms"),
        ([1_600_000_000_999_999, 1_600_000_001_000_000], "auto", "us"),
        ([1_600_000_000_999_999_999, 1_600_000_001_000_000_000], "auto", "ns"),
        ([1_600_000_000.9, 1_600_000_001.0], "auto", "s"),
        ([1_600_000_000_999, 1_600_000_001_000], "ms", "ms"),
        ([1_600_000_000, 1_600_000_001], "s", "s"),
    ],
)
def test_numeric_time_units(values, unit, detected):
    log = read_interactions(pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "t": values}), time_column="t",
                            time_unit=unit)  # fmt: skip
    assert col(log, "timestamp") == [1_600_000_000, 1_600_000_001] and log.time_unit == detected


def test_explicit_unit_on_text_numbers_and_iso(tmp_path):
    path = write(tmp_path / "t.csv", "user_id,item_id,t\n1,1,1600000000000000\n")
    assert col(read_interactions(path, time_column="t", time_unit="us"), "timestamp") == [1_600_000_000]
    path = write(tmp_path / "iso.csv", "user_id,item_id,t\n1,1,2020-09-13T12:26:40Z\n")
    assert col(read_interactions(path, time_column="t", time_unit="iso"), "timestamp") == [1_600_000_000]
    with pytest.raises(InteractionDataError, match="column 't': cannot parse timestamp '2020-09-13T12:26:40Z'"):
        read_interactions(path, time_column="t", time_unit="s")
    with pytest.raises(InteractionDataError, match=r"holds numbers.*ISO 8601 strings"):
        read_interactions(pd.DataFrame({"user_id": [1], "item_id": [1], "t": [5]}), time_column="t", time_unit="iso")
    with pytest.raises(ValueError, match="time_unit='ms' needs a time_column"):
        read_interactions(path, time_unit="ms")
    with pytest.raises(ValueError, match="time_unit='minutes'"):
        read_interactions(path, time_column="t", time_unit="minutes")


# ---------------------------------------------------------------------------------------------------------
# chronological
# ---------------------------------------------------------------------------------------------------------
def test_chronological_is_stable_by_user_and_time(tmp_path):
    text = "user_id,item_id,t\nb,1,20\na,2,30\nb,3,10\na,4,30\nb,5,20\na,6,5\n"
    log = chronological(read_interactions(write(tmp_path / "log.csv", text), time_column="t"))
    assert col(log, "user_id") == ["a", "a", "a", "b", "b", "b"]
    assert col(log, "item_id") == [6, 2, 4, 3, 1, 5]  # ties (a: 30, b: 20) keep file order
    assert log.is_chronological and chronological(log) is log
    no_time = chronological(read_interactions(write(tmp_path / "n.csv", "user_id,item_id\n2,9\n1,8\n2,7\n1,6\n")))
    assert col(no_time, "user_id") == [1, 1, 2, 2] and col(no_time, "item_id") == [8, 6, 9, 7]


def test_chronological_falls_back_to_lexsort():
    df = pd.DataFrame({"user_id": [2**62, -(2**62), 2**62, -(2**62)], "item_id": [1, 2, 3, 4], "t": [7, 7, 5, 7]})
    log = read_interactions(df, time_column="t")  # user span x time span overflows the combined int64 key
    assert col(chronological(log), "item_id") == [2, 4, 3, 1]
    shuffled = log.replace(table=log.table.take([3, 2, 1, 0]))  # rows out of source order: ties go by row
    assert col(chronological(shuffled), "item_id") == [2, 4, 3, 1]


def test_fingerprint_follows_content_and_options(tmp_path):
    path = write(tmp_path / "log.csv", CSV)
    first = read_interactions(path, time_column="timestamp")
    assert read_interactions(path, time_column="timestamp").fingerprint == first.fingerprint
    assert read_interactions(path).fingerprint != first.fingerprint
    write(path, CSV + "u3,d,1,1600000200000\n")
    os.utime(path, ns=(1, 1))
    assert read_interactions(path, time_column="timestamp").fingerprint != first.fingerprint


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------
def test_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "log.csv", CSV)
    with pytest.raises(
        InteractionDataError,
        match=r"log\.csv, column 'parent_asin': no such column; the columns are \['user_id', 'item_id', 'rating', "
        r"'timestamp'\]",
    ) as err:
        read_interactions(path, item_column="parent_asin")
    assert err.value.column == "parent_asin" and err.value.source == str(path)
    with pytest.raises(InteractionDataError, match=r"column 'user_id'.*is the separator right"):
        read_interactions(write(tmp_path / "tabs.csv", "user_id\titem_id\n1\t2\n"))
    with pytest.raises(InteractionDataError, match=r"DataFrame, column 'stars': no such column"):
        read_interactions(pd.DataFrame({"user_id": [1], "item_id": [2]}), keep_columns=["stars"])


def test_null_ids_name_the_row(tmp_path):
    with pytest.raises(InteractionDataError, match=r"log\.csv, row 1 \(line 3\), column 'user_id': missing id") as err:
        read_interactions(write(tmp_path / "log.csv", "user_id,item_id\n1,2\n,3\n"))
    assert err.value.row == 1 and err.value.line == 3
    with pytest.raises(InteractionDataError, match=r"DataFrame, row 2, column 'item_id': missing id"):
        read_interactions(pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1.0, 2.0, np.nan]}))
    with pytest.raises(InteractionDataError, match=r"row 0 \(line 1\), column 'user_id': missing id"):
        read_interactions(write(tmp_path / "log.jsonl", '{"item_id": 1}\n{"user_id": 1, "item_id": 2}\n'))


def test_mixed_id_types_name_the_row(tmp_path):
    lines = [json.dumps({"user_id": k, "item_id": 1}) for k in range(3000)]
    lines[2500] = json.dumps({"user_id": "u2500", "item_id": 1})
    path = write(tmp_path / "log.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(InteractionDataError, match=r"row 2500 \(line 2501\), column 'user_id': holds a string where"):
        read_interactions(path)
    pq.write_table(pa.table({"user_id": [1], "item_id": [1]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"user_id": ["u"], "item_id": [1]}), tmp_path / "b.parquet")
    with pytest.raises(
        InteractionDataError, match=r"b\.parquet, column 'user_id': holds string where .*a\.parquet holds int64"
    ):
        read_interactions(str(tmp_path / "*.parquet"))
    df = pd.DataFrame({"user_id": [1, 2, "c"], "item_id": [1, 2, 3]})
    with pytest.raises(InteractionDataError, match=r"row 2, column 'user_id': mixed types: row 0 holds int 1, this"):
        read_interactions(df)
    with pytest.raises(InteractionDataError, match=r"row 1, column 'item_id': id 2.5 is not an integer"):
        read_interactions(pd.DataFrame({"user_id": [1, 2], "item_id": [1.0, 2.5]}))


def test_unparsable_timestamps_show_value_and_row(tmp_path):
    text = "user_id,item_id,t\n1,1,2021-03-04\n1,2,2021-13-45\n"
    with pytest.raises(
        InteractionDataError, match=r"row 1 \(line 3\), column 't': cannot parse timestamp '2021-13-45'"
    ):
        read_interactions(write(tmp_path / "iso.csv", text), time_column="t")
    text = "user_id,item_id,t\n1,1,1600000000\n1,2,1600000001\n1,3,soon\n"
    with pytest.raises(InteractionDataError, match=r"row 2 \(line 4\), column 't': cannot parse timestamp 'soon'"):
        read_interactions(write(tmp_path / "num.csv", text), time_column="t")
    with pytest.raises(InteractionDataError, match=r"row 1 \(line 3\), column 't': missing timestamp"):
        read_interactions(write(tmp_path / "gap.csv", "user_id,item_id,t\n1,1,5\n1,2,\n"), time_column="t")
    df = pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "t": [1.0, float("inf")]})
    with pytest.raises(InteractionDataError, match=r"row 1, column 't': cannot parse timestamp inf"):
        read_interactions(df, time_column="t")


def test_file_not_what_its_extension_says(tmp_path):
    with pytest.raises(
        InteractionDataError, match=r"fake\.parquet: this is text starting 'user_id,item_id.*not Parquet"
    ):
        read_interactions(write(tmp_path / "fake.parquet", CSV))
    pq.write_table(pa.table({"user_id": [1], "item_id": [2]}), tmp_path / "real.parquet")
    parquet = (tmp_path / "real.parquet").read_bytes()
    with pytest.raises(InteractionDataError, match=r"fake\.csv: this is Parquet data, not CSV"):
        read_interactions(write(tmp_path / "fake.csv", parquet))
    with pytest.raises(InteractionDataError, match=r"fake\.jsonl: this is a JSON array, not JSON Lines"):
        read_interactions(write(tmp_path / "fake.jsonl", '[{"user_id": 1, "item_id": 2}]'))
    with pytest.raises(InteractionDataError, match=r"csv\.jsonl: this is text starting 'user_id,item_id"):
        read_interactions(write(tmp_path / "csv.jsonl", CSV))
    with pytest.raises(InteractionDataError, match=r"fake\.txt: this is Parquet data, not SASRec text"):
        read_interactions(write(tmp_path / "fake.txt", parquet), format="sasrec")
    with pytest.raises(InteractionDataError, match=r"cannot tell the format from the extension '\.txt'"):
        read_interactions(write(tmp_path / "log.txt", "1 2\n"))


@pytest.mark.parametrize("name", ["empty.csv", "empty.tsv", "empty.parquet", "empty.jsonl", "empty.txt"])
def test_empty_file(tmp_path, name):
    fmt = "s3rec" if name.endswith(".txt") else None
    with pytest.raises(InteractionDataError, match=rf"{name}: file is empty"):
        read_interactions(write(tmp_path / name, b""), format=fmt)


def test_no_data_rows(tmp_path):
    with pytest.raises(InteractionDataError, match=r"header\.csv: no interactions \(the file has no data rows\)"):
        read_interactions(write(tmp_path / "header.csv", "user_id,item_id\n"))
    with pytest.raises(InteractionDataError, match=r"blank\.txt: no interactions"):
        read_interactions(write(tmp_path / "blank.txt", "\n \n"), format="sasrec")


def test_missing_sources_and_bad_arguments(tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"nope\.csv: no such file"):
        read_interactions(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match=r"\*\.parquet: no file matches"):
        read_interactions(str(tmp_path / "*.parquet"))
    with pytest.raises(TypeError, match="cannot read interactions from int"):
        read_interactions(42)
    with pytest.raises(ValueError, match="keep_columns"):
        read_interactions(tmp_path / "x.csv", keep_columns=["row"])


# ---------------------------------------------------------------------------------------------------------
# The real shared files (skipped where ../shared/data is absent)
# ---------------------------------------------------------------------------------------------------------
def shared(relative: str) -> Path:
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"{path} not found (set HF_RECSYS_DATA_DIR)")
    return path


def test_amazon_2023_sample():
    path = shared("amazon-reviews-2023-sample/All_Beauty.csv")
    log = read_interactions(path, item_column="parent_asin", time_column="timestamp", keep_columns=["rating"])
    info = log.info()
    assert (info["num_rows"], info["num_users"], info["num_items"]) == (2535, 253, 356)
    assert info["user_id_type"] == info["item_id_type"] == "string" and log.time_unit == "ms"
    assert min(col(log, "timestamp")) > 1.0e9 and max(col(log, "timestamp")) < 1.8e9
    ordered = chronological(log)
    users, times = col(ordered, "user_id"), col(ordered, "timestamp")
    assert all((u0, t0) <= (u1, t1) for u0, t0, u1, t1 in zip(users, times, users[1:], times[1:]))


@pytest.mark.parametrize(
    ("relative", "fmt", "sizes"),
    [
        ("lastfm-s3rec/LastFM.txt", "s3rec", (52_551, 1_090, 3_646)),
        ("amazon-toys-s3rec/Toys_and_Games.txt", "s3rec", (167_597, 19_412, 11_924)),
        ("movielens-1m/sasrec_ml-1m_rebuilt.txt", "sasrec", (999_611, 6_040, 3_416)),
    ],
)
def test_research_text_files(relative, fmt, sizes):
    log = read_interactions(shared(relative), format=fmt)
    assert (log.num_rows, log.num_users(), log.num_items()) == sizes
    assert log.table.schema.field("item_id").type == pa.int64() and not log.has_time


def test_movielens_latest_small_ratings_csv():
    log = read_interactions(
        shared("movielens-latest-small/ratings.csv"), user_column="userId", item_column="movieId",
        time_column="timestamp", keep_columns=["rating"],
    )  # fmt: skip
    assert (log.num_rows, log.num_users(), log.time_unit) == (100_836, 610, "s")
