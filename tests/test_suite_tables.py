"""The every-dataset × seed tables of issue 23 (`hf_recsys/benchmark_tables/datasets.py`: `suite_table`,
`suite_seeds_table`) on small synthetic rows. The package is loaded from its folder, as `render_tables.py` does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RENDER_TABLES = Path(__file__).resolve().parents[1] / "benchmarks" / "render_tables.py"
_spec = importlib.util.spec_from_file_location("_render_tables_suite_under_test", RENDER_TABLES)
render_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_tables)
tables = render_tables._tables_module("_benchmark_tables_suite_under_test")  # the renderer's own loader

RECIPE = {
    "max_length": 200,
    "hidden_dropout_prob": 0.2,
    "per_device_train_batch_size": 32,
    "loss_type": "ce",
    "learning_rate": 7.5e-4,
}


def _row(dataset: str, seed: int | None, ndcg: float, hr: float = 0.1, model: str = "rec-transformer", **extra):
    row = {
        "model": model,
        "dataset": dataset,
        "protocol": "leave-one-out",
        "test_ndcg@10": ndcg,
        "test_hr@10": hr,
        "valid_ndcg@10": ndcg + 0.001,
        "epochs": 10.0,
        "train_seconds": 300.0,
        "git_commit": "abc1234",
        "date": "2026-12-01T00:00:00+00:00",
    }
    if seed is not None:
        row["seed"] = seed
    row.update(extra)
    return row


def _cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |")
    return [cell.strip() for cell in line[2:-2].split(" | ")]


def _suite_lines(rows, datasets=None) -> dict[str, dict[str, str]]:
    """{dataset: {column name: cell}} of suite_table."""
    table = tables.suite_table(rows) if datasets is None else tables.suite_table(rows, datasets)
    lines = table.splitlines()
    names = _cells(lines[0])
    return {cells[0]: dict(zip(names, cells)) for cells in map(_cells, lines[2:])}


def test_suite_declares_each_dataset_in_order_with_published_figures_from_one_place() -> None:
    assert list(tables.SUITE) == ["ml-100k", "lastfm", "amazon-toys", "ml-1m"]
    assert [e.minutes for e in tables.SUITE.values()] == [5, 10, 20, 30]
    assert [e.target_ndcg for e in tables.SUITE.values()] == [0.10, 0.050, 0.060, 0.200]
    lastfm = tables.SUITE["lastfm"].anchors
    assert lastfm["SASRec (S3-Rec paper)"] is tables.PUBLISHED_S3REC["lastfm"]["SASRec"]
    assert lastfm["S3-Rec (S3-Rec paper)"] is tables.PUBLISHED_S3REC["lastfm"]["S3-Rec"]
    toys = tables.SUITE["amazon-toys"].anchors
    assert toys == {"SASRec (S3-Rec paper)": tables.PUBLISHED_S3REC["amazon-toys"]["SASRec"]}
    ml1m = tables.SUITE["ml-1m"].anchors
    assert ml1m["SASRec (full CE), published"] is tables.PUBLISHED_ML1M["SASRec (full CE)"]
    assert ml1m["LRURec (converged, GPU)"] == {"ndcg@10": 0.193}
    assert tables.SUITE["ml-100k"].anchors == {"RecBole SASRec, 10 min on this CPU": {"ndcg@10": 0.053}}


def test_mean_and_sample_spread_over_three_seeds() -> None:
    rows = [
        _row("lastfm", 1, 0.04, 0.07, recipe=RECIPE),
        _row("lastfm", 2, 0.05, 0.08, recipe=RECIPE),
        _row("lastfm", 3, 0.06, 0.09, recipe=RECIPE),
        _row("lastfm", 1, 0.02, model="popularity"),
        _row("lastfm", 2, 0.03, model="popularity"),
    ]
    line = _suite_lines(rows)["lastfm"]
    assert line["test NDCG@10"] == "**0.0500 ± 0.0100**"  # sample standard deviation (n - 1)
    assert line["test HR@10"] == "0.0800 ± 0.0100"
    assert line["seeds"] == "3"
    assert line["popularity NDCG@10"] == "0.0250"
    assert line["CPU budget"] == "10 min"
    assert line["best published / anchor NDCG@10"] == "S3-Rec (S3-Rec paper): 0.0427"
    assert line["target NDCG@10"] == "0.050"


def test_latest_row_of_each_seed_wins() -> None:
    rows = [
        _row("amazon-toys", 7, 0.01, recipe=RECIPE),
        _row("amazon-toys", 8, 0.07, recipe=RECIPE),
        _row("amazon-toys", 7, 0.05, recipe=RECIPE),  # a rerun of seed 7
    ]
    line = _suite_lines(rows)["amazon-toys"]
    assert line["seeds"] == "2"
    assert line["test NDCG@10"].startswith("**0.0600 ± ")  # (0.05 + 0.07) / 2, the first 0.01 replaced
    seeds = tables.suite_seeds_table(rows).splitlines()[2:]
    assert [(_cells(s)[1], _cells(s)[2]) for s in seeds] == [("7", "0.0500"), ("8", "0.0700")]


@pytest.mark.parametrize("dataset", ["ml-100k", "lastfm", "amazon-toys"])
def test_rows_without_a_recipe_do_not_count_on_the_new_recipe_datasets(dataset: str) -> None:
    rows = [
        _row(dataset, 42, 0.9, train_seconds=3600.0),  # the old recipe, however long it trained
        _row(dataset, 43, 0.9, model="rec-transformer-ids-only", recipe=RECIPE),  # another model
        _row(dataset, 44, 0.9, protocol="seed-windows", recipe=RECIPE),  # another protocol
    ]
    line = _suite_lines(rows)[dataset]
    assert (line["test NDCG@10"], line["seeds"], line["target met"]) == ("", "0", "")
    rows.append(_row(dataset, 42, 0.03, recipe=RECIPE))
    line = _suite_lines(rows)[dataset]
    assert (line["test NDCG@10"], line["seeds"]) == ("**0.0300**", "1")


def test_ml1m_falls_back_to_long_runs_on_the_sasrec_file_for_seeds_without_a_recipe_row() -> None:
    rows = [
        _row("ml-1m", None, 0.180, train_seconds=1810.0),  # recorded before rows carried a seed: seed 42
        _row("ml-1m", None, 0.185, train_seconds=1805.0, data_variant="sasrec-benchmark"),
        _row("ml-1m", 43, 0.300, train_seconds=600.0),  # too short to stand in
        _row("ml-1m", 44, 0.300, train_seconds=1800.0, data_variant="official"),  # another file
        _row("ml-1m", 45, 0.195, train_seconds=1520.0),  # 25.3 min: counts
    ]
    counted = tables.suite_rows(rows, "ml-1m")
    assert sorted(counted) == [42, 45] and counted[42]["test_ndcg@10"] == 0.185
    line = _suite_lines(rows)["ml-1m"]
    assert line["seeds"] == "2" and line["test NDCG@10"].startswith("**0.1900 ± ")
    assert line["best published / anchor NDCG@10"] == "LRURec (converged, GPU): 0.193"

    # a seed's row with a recipe replaces its long run; the other seeds keep theirs
    rows.append(_row("ml-1m", 45, 0.21, train_seconds=1800.0, recipe=RECIPE))
    rows.append(_row("ml-1m", 46, 0.21, train_seconds=1800.0, recipe=RECIPE))
    counted = tables.suite_rows(rows, "ml-1m")
    assert sorted(counted) == [42, 45, 46] and counted[45]["test_ndcg@10"] == 0.21
    assert counted[42]["test_ndcg@10"] == 0.185
    rows.append(_row("ml-1m", 42, 0.205, train_seconds=1800.0, recipe=RECIPE))
    line = _suite_lines(rows)["ml-1m"]
    assert (line["seeds"], line["target met"]) == ("3", "yes")
    assert line["test NDCG@10"].startswith("**0.2083 ± ")


def test_target_met_and_unmet() -> None:
    rows = [
        _row("ml-100k", 1, 0.11, recipe=RECIPE),
        _row("ml-100k", 2, 0.12, recipe=RECIPE),
        _row("amazon-toys", 1, 0.059, recipe=RECIPE),
        _row("amazon-toys", 2, 0.060, recipe=RECIPE),
    ]
    lines = _suite_lines(rows)
    assert lines["ml-100k"]["target met"] == "yes"
    assert lines["amazon-toys"]["target met"] == "no"  # mean 0.0595 < 0.060


def test_empty_datasets_keep_their_lines_without_measured_numbers() -> None:
    table = tables.suite_table([])
    lines = _suite_lines([])
    assert list(lines) == list(tables.SUITE) and len(table.splitlines()) == 2 + len(tables.SUITE)
    for dataset, line in lines.items():
        assert line["test NDCG@10"] == line["test HR@10"] == line["popularity NDCG@10"] == line["target met"] == ""
        assert line["seeds"] == "0"
        assert line["target NDCG@10"] == f"{tables.SUITE[dataset].target_ndcg:.3f}"
    assert tables.suite_seeds_table([]).count("\n") == 1  # the header alone


def test_seeds_table_settings_popularity_and_order() -> None:
    rows = [
        _row("ml-1m", 42, 0.19, train_seconds=1800.0, config={"hidden_dropout_prob": 0.2}),  # fallback row
        _row("lastfm", 2, 0.045, recipe=RECIPE, per_device_train_batch_size=64, epochs=65.4, all_windows=True),
        _row("lastfm", 1, 0.044, recipe={"loss_type": "ce"}, per_device_train_batch_size=128, max_length=50),
        _row("lastfm", 1, 0.021, model="popularity"),
    ]
    lines = tables.suite_seeds_table(rows).splitlines()
    names = _cells(lines[0])
    got = [dict(zip(names, _cells(line))) for line in lines[2:]]
    assert [(g["dataset"], g["seed"]) for g in got] == [("lastfm", "1"), ("lastfm", "2"), ("ml-1m", "42")]
    one, two, ml1m = got
    # the recipe first, then the row's own fields, then its model config, else blank
    assert (one["batch size"], one["dropout"], one["max length"]) == ("128", "", "50")
    assert (two["batch size"], two["dropout"], two["max length"]) == ("32", "0.2", "200")
    assert (ml1m["batch size"], ml1m["dropout"], ml1m["max length"]) == ("", "0.2", "")
    # a row without `all_windows` predates the option: it trained the most recent window of a long history
    assert (one["windows"], two["windows"]) == ("most recent", "all")
    # a learning rate prints in its shortest form; a row recorded before the rule derived it has none
    assert (two["learning rate"], ml1m["learning rate"]) == ("0.00075", "")
    assert (one["popularity NDCG@10"], two["popularity NDCG@10"]) == ("0.0210", "")
    assert (two["test NDCG@10"], two["valid NDCG@10"], two["epochs"], two["training"]) == (
        "0.0450",
        "0.0460",
        "65",
        "5.0 min",
    )
    assert one["commit"] == "`abc1234`"


def test_suite_tables_are_registered_markers(tmp_path: Path) -> None:
    (tmp_path / "lastfm.json").write_text(
        '[{"model": "rec-transformer", "dataset": "lastfm", "protocol": "leave-one-out", "seed": 1,'
        ' "test_ndcg@10": 0.05, "test_hr@10": 0.08, "recipe": {}}]'
    )
    text = (
        "<!-- suite-table:start -->\n<!-- suite-table:end -->\n<!-- suite-seeds:start -->\n<!-- suite-seeds:end -->\n"
    )
    rendered = tables.render_markers(text, tmp_path)
    assert "| lastfm | 10 min | **0.0500** | 0.0800 | 1 |" in rendered
    assert "| lastfm | 1 | 0.0500 | 0.0800 |" in rendered
    assert tables.render_markers(rendered, tmp_path) == rendered
