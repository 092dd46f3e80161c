"""hf_recsys.data.filters: each filter and its report entry, k-core against a brute-force reference, apply_filters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hf_recsys.data.filters import (
    EmptyFilterResultError,
    FilterReport,
    FilterStep,
    apply_filters,
    drop_consecutive_duplicates,
    k_core,
    keep_events,
    min_history,
    min_rating,
)
from hf_recsys.data.sources import InteractionDataError, InteractionLog, read_interactions


def make_log(rows: list[tuple], columns=("user_id", "item_id", "t", "rating", "event")) -> InteractionLog:
    df = pd.DataFrame(rows, columns=list(columns)[: len(rows[0])])
    keep = [c for c in ("rating", "event") if c in df.columns]
    return read_interactions(df, time_column="t" if "t" in df.columns else None, keep_columns=keep)


@pytest.fixture
def log() -> InteractionLog:
    return make_log(
        [
            ("u1", "a", 1, 5.0, "buy"),
            ("u1", "b", 2, 2.0, "view"),
            ("u2", "a", 1, 4.0, "view"),
            ("u2", "c", 3, None, "buy"),
            ("u3", "b", 9, 1.0, "view"),
        ]
    )


def pairs(log: InteractionLog) -> list[tuple]:
    return list(zip(log.table["user_id"].to_pylist(), log.table["item_id"].to_pylist()))


def test_min_rating_and_its_report_entry(log):
    out, step = min_rating(log, "rating", 4)
    assert pairs(out) == [("u1", "a"), ("u2", "a")]
    assert isinstance(step, FilterStep) and step.name == "min_rating"
    assert step.params == {"column": "rating", "threshold": 4}
    assert (step.rows_before, step.rows_after, step.rows_removed) == (5, 2, 3)
    assert (step.users_before, step.users_after, step.items_before, step.items_after) == (3, 2, 3, 1)
    assert step.details == {"null_rows_dropped": 1}
    assert out.fingerprint != log.fingerprint and out.source == log.source
    assert "min_rating(column='rating', threshold=4): rows 5 -> 2" in str(step)


def test_filters_name_a_missing_or_unsuitable_column(log):
    with pytest.raises(
        InteractionDataError, match=r"column 'stars': min_rating needs a column.*keep_columns=\['stars'\]"
    ):
        min_rating(log, "stars", 4)
    with pytest.raises(
        InteractionDataError, match=r"column 'event': min_rating needs numbers, this column holds string"
    ):
        min_rating(log, "event", 4)
    with pytest.raises(InteractionDataError, match=r"keep_events values \[1, 2\] do not match the column's type"):
        keep_events(log, "event", [1, 2])


def test_keep_events(log):
    out, step = keep_events(log, "event", ["buy"])
    assert pairs(out) == [("u1", "a"), ("u2", "c")] and step.params == {"column": "event", "values": ["buy"]}
    same, _ = keep_events(log, "event", "buy")  # one value need not be a list
    assert pairs(same) == pairs(out)


def test_drop_consecutive_duplicates_after_chronological_sort():
    log = make_log(
        [("u2", "x", 5), ("u1", "a", 3), ("u1", "a", 1), ("u1", "b", 2), ("u2", "x", 6), ("u1", "a", 4), ("u3", "x", 1)]
    )
    out, step = drop_consecutive_duplicates(log)
    # u1 in time order: a(1) b(2) a(3) a(4) -> a b a; u2: x x -> x; u3's x is another user's
    assert pairs(out) == [("u1", "a"), ("u1", "b"), ("u1", "a"), ("u2", "x"), ("u3", "x")]
    assert out.table["timestamp"].to_pylist() == [1, 2, 3, 5, 1] and out.is_chronological
    assert (step.rows_before, step.rows_after) == (7, 5)


def reference_k_core(edges: list[tuple], user_k: int, item_k: int) -> list[tuple]:
    edges = list(edges)
    while True:
        users = pd.Series([u for u, _ in edges]).value_counts()
        items = pd.Series([i for _, i in edges]).value_counts()
        kept = [(u, i) for u, i in edges if users[u] >= user_k and items[i] >= item_k]
        if len(kept) == len(edges) or not kept:
            return kept
        edges = kept


def test_k_core_cascades_until_stable():
    # item z has 2 users; dropping u3 (1 row after y is gone) leaves z with one user, which then drops u2's z
    rows = [("u1", "x"), ("u1", "w"), ("u2", "x"), ("u2", "w"), ("u2", "z"), ("u3", "z"), ("u3", "y")]
    log = make_log(rows, columns=("user_id", "item_id"))
    out, step = k_core(log, user_k=2, item_k=2)
    assert pairs(out) == [("u1", "x"), ("u1", "w"), ("u2", "x"), ("u2", "w")]
    assert step.details["rounds"] >= 2 and pairs(out) == reference_k_core(rows, 2, 2)


@pytest.mark.parametrize(("user_k", "item_k"), [(2, 2), (3, 2), (2, 4), (1, 3)])
def test_k_core_matches_brute_force(user_k, item_k):
    rng = np.random.default_rng(user_k * 10 + item_k)
    rows = [(int(u), int(i)) for u, i in zip(rng.zipf(1.6, 600) % 80, rng.zipf(1.4, 600) % 60)]
    out, _ = k_core(make_log(rows, columns=("user_id", "item_id")), user_k, item_k)
    assert pairs(out) == reference_k_core(rows, user_k, item_k)


def test_k_core_rejects_bad_k(log):
    with pytest.raises(ValueError, match=r"user_k=0, expected an integer >= 1"):
        k_core(log, 0, 5)


def test_min_history_marks_short_users_instead_of_dropping_them(log):
    out, step = min_history(log, 2)
    assert out.num_rows == log.num_rows and out.train_only_users.to_pylist() == ["u3"]
    assert step.details == {"train_only_users": 1} and out.info()["train_only_users"] == 1
    dropped, _ = keep_events(out, "event", ["view"])  # a later filter forgets users it removed
    assert dropped.train_only_users.to_pylist() == ["u3"]
    gone, _ = keep_events(out, "event", ["buy"])
    assert gone.train_only_users.to_pylist() == []
    with pytest.raises(EmptyFilterResultError, match=r"min_history\(n=9\): all 3 users have fewer than 9 interactions"):
        min_history(log, 9)


def test_empty_result_names_the_filter_and_what_it_removed(log):
    with pytest.raises(
        EmptyFilterResultError, match=r"filter min_rating\(column='rating', threshold=6\) removed all 5"
    ):
        min_rating(log, "rating", 6)
    with pytest.raises(EmptyFilterResultError, match=r"k_core\(user_k=5, item_k=5\) removed all 5 rows"):
        apply_filters(log, [{"name": "k_core", "user_k": 5, "item_k": 5}])


def test_apply_filters_runs_a_declared_sequence_and_reports_it(log):
    spec = [
        {"name": "min_rating", "column": "rating", "threshold": 2},
        {"keep_events": {"column": "event", "values": ["buy", "view"]}},
        "drop_consecutive_duplicates",
        ("k_core", {"user_k": 1, "item_k": 1}),
        {"name": "min_history", "n": 2},
    ]
    out, report = apply_filters(log, spec)
    assert [s.name for s in report.steps] == [
        "min_rating",
        "keep_events",
        "drop_consecutive_duplicates",
        "k_core",
        "min_history",
    ]
    assert pairs(out) == [("u1", "a"), ("u1", "b"), ("u2", "a")] and out.train_only_users.to_pylist() == ["u2"]
    stored = json.loads(report.to_json())  # what a dataset's info holds
    assert stored["filters"][0]["rows_before"] == 5 and stored["filters"][0]["rows_after"] == 3
    assert FilterReport.from_json(report.to_json()) == report
    assert "min_history(n=2)" in str(report)


def test_apply_filters_checks_the_whole_spec_first(log):
    with pytest.raises(ValueError, match=r"entry 1: unknown filter 'kcore'; the filters are \['drop_consecutive"):
        apply_filters(log, [{"name": "min_rating", "column": "rating", "threshold": 9}, {"kcore": {}}])
    with pytest.raises(
        ValueError, match=r"entry 0 \(k_core\): unknown parameter\(s\) \['users_k'\]; its parameters are \['user_k'"
    ):
        apply_filters(log, [{"k_core": {"users_k": 5, "item_k": 5}}])
    with pytest.raises(ValueError, match=r"entry 0 \(min_rating\): missing parameter\(s\) \['threshold'\]"):
        apply_filters(log, [{"name": "min_rating", "column": "rating"}])
    with pytest.raises(ValueError, match="min_history must be the last filter"):
        apply_filters(log, [{"name": "min_history", "n": 2}, "drop_consecutive_duplicates"])
    with pytest.raises(TypeError, match="list of filter entries"):
        apply_filters(log, {"name": "k_core"})
