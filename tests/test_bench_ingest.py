"""The ingestion benchmark runs end to end on a tiny synthetic log: its CSV, its tables and its JSON rows (no timing
assertions: speed is checked by running the benchmark, `benchmarks/ingest.md`)."""

import importlib.util
import json
from pathlib import Path

import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "benchmarks" / "bench_ingest.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_synthetic_log_has_string_ids_and_millisecond_timestamps(tmp_path):
    bench = _bench()
    summary = bench.write_synthetic_log(tmp_path / "log.csv", 2_000)
    assert (summary["rows"], summary["users"]) == (2_000, 100)
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == "user_id,parent_asin,rating,timestamp"
    table = pacsv.read_csv(tmp_path / "log.csv")
    assert table.num_rows == 2_000
    users, items = table["user_id"].to_pylist(), table["parent_asin"].to_pylist()
    assert all(u.startswith("U") and len(u) == 8 for u in users) and len(set(users)) == 100
    assert all(i.startswith("B0") and len(i) == 10 for i in items) and len(set(items)) <= 40
    stamps = table["timestamp"].to_numpy()
    assert stamps.min() >= bench.T_START_MS and stamps.max() < bench.T_END_MS  # unix milliseconds
    assert (stamps[1:] >= stamps[:-1]).all()  # an event log in time order
    assert set(table["rating"].to_pylist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_bench_ingest_main_prints_the_table_and_appends_json_rows(tmp_path, capsys):
    bench = _bench()
    out = tmp_path / "ingest.json"
    out.write_text(json.dumps([{"earlier": "row"}]))
    rows = bench.main(["--rows", "2000", "--json", str(out), "--workdir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| rows | users | items | CSV (MiB) | prepare (s) |" in printed
    assert "| 2,000 | 100 |" in printed
    assert "| rows | read | sort | filters | ids+tokens | vocabularies | splits | Arrow write | other |" in printed
    assert "not measured here" in printed  # the 10M-row target needs the real sizes
    recorded = json.loads(out.read_text())
    assert recorded[0] == {"earlier": "row"} and recorded[1:] == rows and len(rows) == 1
    row = rows[0]
    for key in ("command", "machine", "date", "git_commit", "rows", "seconds", "reload_seconds", "peak_mib"):
        assert key in row, key
    assert row["command"].startswith("python benchmarks/bench_ingest.py --rows 2000")
    assert row["rows"] == row["interactions"] == 2_000 and row["users"] == 100
    assert sum(row["split_rows"].values()) > 0 and set(row["stages"]) == set(bench.STAGES)
    assert row["seconds"] > 0 and row["reload_seconds"] > 0 and row["peak_mib"] > 0
    assert not list(tmp_path.glob("bench_ingest_*"))  # the synthetic CSV and its cache are removed
