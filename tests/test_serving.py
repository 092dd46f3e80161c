"""Serving with feature fields: item fields in results and filters, request-time user features, similar items,
title matching with and without rapidfuzz, the pipeline on a run with fields, and a 10,000-request fuzz test (int and string ids).

All on `tiny_run.make_tiny_run(fields=True)`: 12 items with genres (multi), decade (categorical) and price
(numeric, edges 3 and 5, one item without a price), 3 users with age and gender.
"""

from __future__ import annotations

import math
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_run import (
    DECADES,
    GENRES,
    MOVIE_IDS,
    PRICES,
    STRING_MOVIE_IDS,
    STRING_USER_IDS,
    TITLES,
    USER_IDS,
    make_tiny_run,
)
from transformers import pipeline

import hf_recsys
from hf_recsys import Recommender
from hf_recsys.data.feature_fields import FeatureField
from hf_recsys.inference import (
    PIPELINE_TASK,
    EmptyCatalogueError,
    InvalidRequestError,
    TitleMatchError,
    UnknownFilterError,
    UnknownItemError,
    UnknownItemWarning,
    save_pipeline_files,
)
from hf_recsys.modeling import titles as titles_module
from hf_recsys.modeling.fields import Field

pytestmark = pytest.mark.usefixtures("single_thread")

DOCUMENTED = (InvalidRequestError, UnknownItemError, TitleMatchError, UnknownFilterError, EmptyCatalogueError)
ITEM_KEYS = {"item_id", "title", "score", "rank", "genres", "decade", "price"}
META = {m: (GENRES[i], DECADES[i], PRICES[i]) for i, m in enumerate(MOVIE_IDS)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_tiny_run(tmp_path_factory.mktemp("serving") / "run", fields=True)
    save_pipeline_files(folder)
    return folder


@pytest.fixture(scope="module")
def rec(run_dir: Path) -> Recommender:
    return Recommender.from_pretrained(run_dir)


@pytest.fixture(scope="module")
def prepend_rec(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    folder = make_tiny_run(tmp_path_factory.mktemp("prepend") / "run", user_conditioning="prepend", fields=True)
    return Recommender.from_pretrained(folder)


def ids(result: list[dict]) -> list:
    return [item["item_id"] for item in result]


# ---------------------------------------------------------------------------------------------------------------
# Results and filters on item fields
# ---------------------------------------------------------------------------------------------------------------
def test_results_carry_the_item_fields(rec: Recommender) -> None:
    result = rec.recommend(user_id=11, history=[1, 6], k=10)
    assert len(result) == 10
    for item in result:
        assert set(item) == ITEM_KEYS
        genres, decade, price = META[item["item_id"]]
        assert item["title"] == TITLES[MOVIE_IDS.index(item["item_id"])]
        assert item["genres"] == genres and item["decade"] == decade
        expected_price = None if price is None else "< 3.0" if price < 3 else "[3.0, 5.0)" if price < 5 else ">= 5.0"
        assert item["price"] == expected_price
    assert rec.item(260) == {
        "item_id": 260,
        "title": TITLES[MOVIE_IDS.index(260)],
        "genres": ["Comedy"],
        "decade": "1970s",
        "price": ">= 5.0",
    }


def test_field_filters_are_masks_before_top_k(rec: Recommender) -> None:
    history = [1, 6]
    unfiltered = {r["item_id"]: r["score"] for r in rec.recommend(user_id=11, history=history, k=10)}
    romance = rec.recommend(user_id=11, history=history, k=3, filters={"genres": ["romance"]})  # case-insensitive
    assert len(romance) == 3 and all("Romance" in r["genres"] for r in romance)
    assert all(r["score"] == pytest.approx(unfiltered[r["item_id"]]) for r in romance)
    either = rec.recommend(history=history, k=12, filters={"genres": ["Action", "Adventure"]})
    action_or_adventure = [m for m, (g, _, _) in META.items() if {"Action", "Adventure"} & set(g)]
    assert sorted(ids(either)) == sorted(set(action_or_adventure) - set(history))
    old = rec.recommend(history=history, k=5, filters={"decade": ["1950s", "1970s"]})
    assert sorted(ids(old)) == [260, 915]  # fewer than k
    both = rec.recommend(history=history, k=12, filters={"decade": "1990s", "genres": "Romance"})
    assert sorted(ids(both)) == [7, 110, 608]
    popular_action = rec.recommend(k=2, filters={"genres": "Action"})
    assert popular_action.strategy == "popularity" and ids(popular_action) == [6, 1196]


@pytest.mark.parametrize("spec", [{"min": 5}, {"max": 2.9}, {"min": 3, "max": 4}, {"min": 4.9, "max": 5}, ["< 3.0"]])
def test_numeric_filters_keep_the_overlapping_buckets(rec: Recommender, spec: object) -> None:
    """A range keeps every item whose bucket overlaps it (the model knows buckets, not prices)."""
    buckets = {"< 3.0": (-math.inf, 3.0), "[3.0, 5.0)": (3.0, 5.0), ">= 5.0": (5.0, math.inf)}
    if isinstance(spec, dict):
        low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
        keep = {label for label, (a, b) in buckets.items() if a <= high and b > low}
    else:
        keep = set(spec)  # type: ignore[arg-type]
    label = {m: None if p is None else next(lab for lab, (a, b) in buckets.items() if a <= p < b)
             for m, (_, _, p) in META.items()}  # fmt: skip
    result = rec.recommend(history=[], k=12, filters={"price": spec})
    assert sorted(ids(result)) == sorted(m for m, lab in label.items() if lab in keep)
    assert 10 not in ids(result)  # GoldenEye has no price: never passes a price filter


@pytest.mark.parametrize(
    ("filters", "error", "match"),
    [
        ({"genre": ["Comedy"]}, UnknownFilterError, r"unknown filter 'genre'.*'genres', 'decade', 'price'"),
        ({"genres": ["Western"]}, UnknownFilterError, r"unknown value 'Western'.*'Action'"),
        ({"decade": "1960s"}, UnknownFilterError, "1990s"),
        ({"genres": [1]}, UnknownFilterError, "unknown value 1"),
        ({"genres": [None]}, InvalidRequestError, "not a value"),
        ({"genres": []}, InvalidRequestError, "genres"),
        ({"genres": True}, InvalidRequestError, "genres"),
        ({"genres": [["Comedy"]]}, InvalidRequestError, "genres"),
        ({"genres": {"min": 1}}, InvalidRequestError, "numeric field"),
        ({"price": {"min": 9, "max": 1}}, InvalidRequestError, "above max"),
        ({"price": {"low": 1}}, InvalidRequestError, "'min' and/or 'max'"),
        ({"price": {"min": "3"}}, InvalidRequestError, "number"),
        ({"price": ["cheap"]}, UnknownFilterError, "< 3.0"),
        ({"year_min": 1990}, UnknownFilterError, "year_min"),
        ({"decade": "1950s", "genres": "Action"}, EmptyCatalogueError, "no item"),
        ({"exclude_item_ids": MOVIE_IDS}, EmptyCatalogueError, "no item"),
    ],
)
def test_bad_filters_raise_the_documented_errors(rec: Recommender, filters: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        rec.recommend(history=[1], filters=filters)
    assert issubclass(error, ValueError)


def test_errors_are_importable_from_the_package() -> None:
    for error in DOCUMENTED:
        assert getattr(hf_recsys, error.__name__) is error and issubclass(error, ValueError)
    assert issubclass(UnknownItemError, KeyError) and issubclass(InvalidRequestError, TypeError)
    assert hf_recsys.data.UnknownItemError is UnknownItemError  # one class: the vocabulary raises it too


# ---------------------------------------------------------------------------------------------------------------
# Request-time user features
# ---------------------------------------------------------------------------------------------------------------
def test_field_encoding_matches_the_data_pipeline() -> None:
    """The bundle's own encoder gives the indices `FeatureField.encode_many` gives (what training used)."""
    fields = [
        FeatureField("c", "categorical", {"18": 1, "25": 2, "x": 3}),
        FeatureField("m", "multi", {"a": 1, "b": 2, "c": 3}, max_values=2, delimiter="|"),
        FeatureField("n", "numeric", {"< 3.0": 1, "[3.0, 5.0)": 2, ">= 5.0": 3}, edges=[3.0, 5.0]),
    ]
    raws = {
        "c": ["25", 25, 25.0, " x ", "nope", None, ""],
        "m": [["a", "c"], "b|a", "c|c|b|a", [], "zz", None],
        "n": [1, 3, 3.0, 4.99, 5, 7.5, "4", None, float("nan")],
    }
    for f in fields:
        served = Field(f.name, f.kind, 0, f.max_values, f.values, f.edges, f.delimiter)
        expected = [f.encode_many([raw])[0].tolist() for raw in raws[f.name]]  # one row each: mixed types
        assert [served.encode(raw) for raw in raws[f.name]] == expected, f.name


def test_user_features_describe_a_new_user(rec: Recommender) -> None:
    history = [1, 6]
    anonymous = rec.recommend(history=history, k=5)
    described = rec.recommend(history=history, k=5, user_features={"age": "35", "gender": "M"})
    assert [r["score"] for r in described] != [r["score"] for r in anonymous]
    # Exactly the model's forward pass with the encoded values (age 35 -> 3, gender M -> 2; unknown user 0).
    tokens = torch.tensor([[rec.item_vocab.encode(m) for m in history]])
    logits = rec.model(input_ids=tokens, user_ids=torch.tensor([0]), user_features=torch.tensor([[3, 2]])).logits
    top = logits[0].clone()
    top[tokens[0]] = -torch.inf
    assert [r["score"] for r in described] == pytest.approx(top.topk(5).values.tolist(), abs=1e-5)
    # Values of the same meaning encode alike; a known user's other fields keep their stored values.
    assert rec.recommend(history=history, k=5, user_features={"age": 35, "gender": "M"}) == described
    stored = rec.recommend(user_id=33, history=history, k=5)  # user 33 is 35 / M
    assert rec.recommend(user_id=33, history=history, k=5, user_features={"age": "35"}) == stored
    assert rec.recommend(user_id=33, history=history, k=5, user_features={"age": "18"}) != stored
    unseen_value = rec.recommend(history=history, k=5, user_features={"age": "99"})  # unknown value: as missing
    assert unseen_value == rec.recommend(history=history, k=5, user_features={})


def test_user_features_cold_start_with_a_user_token(prepend_rec: Recommender) -> None:
    new = prepend_rec.recommend(history=[], k=4, user_features={"age": "25"})
    assert new.strategy == "model" and not new.known_user
    assert prepend_rec.recommend(history=[], k=4).strategy == "popularity"


@pytest.mark.parametrize(
    ("features", "match"),
    [
        ({"agee": "25"}, r"unknown user feature fields \['agee'\].*'age', 'gender'"),
        ({"age": ["25"]}, r"user_features\['age'\]"),
        ({"age": True}, r"user_features\['age'\]"),
        ({"age": {"v": 1}}, r"user_features\['age'\]"),
        ("age=25", "must be a dict"),
    ],
)
def test_bad_user_features(rec: Recommender, features: object, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        rec.recommend(history=[1], user_features=features)  # type: ignore[arg-type]


def test_user_features_need_user_fields(tmp_path: Path) -> None:
    plain = Recommender.from_pretrained(make_tiny_run(tmp_path / "plain"))
    with pytest.raises(InvalidRequestError, match="reads no user features"):
        plain.recommend(history=[1], user_features={"age": "25"})


# ---------------------------------------------------------------------------------------------------------------
# Similar items
# ---------------------------------------------------------------------------------------------------------------
def test_similar_items_are_cosine_neighbours(rec: Recommender) -> None:
    weight = torch.nn.functional.normalize(rec.model.output_weight().detach().float(), dim=1)
    token = rec.item_vocab.encode(260)
    cosine = weight[1:] @ weight[token]
    cosine[token - 1] = -math.inf  # the item itself is excluded
    expected = cosine.topk(5)
    result = rec.similar_items(260, k=5)
    assert result.strategy == "similar" and len(result) == 5 and 260 not in ids(result)
    assert ids(result) == rec.item_vocab.decode_many((expected.indices + 1).numpy()).tolist()
    assert [r["score"] for r in result] == pytest.approx(expected.values.tolist(), abs=1e-5)
    assert all(set(r) == ITEM_KEYS for r in result) and [r["rank"] for r in result] == [1, 2, 3, 4, 5]
    assert len(rec.similar_items(260, k=12)) == 11
    by_title = rec.similar_items("star wars: episode iv - a new hope (1977)", k=5)
    assert by_title == result and by_title.resolved_titles
    romance = rec.similar_items(260, k=12, filters={"genres": "Romance"})
    assert romance and all("Romance" in r["genres"] for r in romance)


@pytest.mark.parametrize(
    ("item", "kwargs", "error"),
    [
        (99999, {}, UnknownItemError),
        ("Sabrina", {}, TitleMatchError),
        (2.5, {}, InvalidRequestError),
        (None, {}, InvalidRequestError),
        (1, {"k": 0}, InvalidRequestError),
        (1, {"k": 13}, InvalidRequestError),
        (1, {"filters": {"nope": 1}}, UnknownFilterError),
        (1, {"filters": {"include_item_ids": [424242]}}, EmptyCatalogueError),
    ],
)
def test_similar_items_errors(rec: Recommender, item: object, kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        rec.similar_items(item, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# Titles: rapidfuzz is an optional accelerator, not a different matcher
# ---------------------------------------------------------------------------------------------------------------
def _catalogue(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["star", "love", "night", "dark", "city", "man", "woman", "river", "king", "last", "blue", "house",
             "dream", "war", "time", "road", "girl", "ghost", "summer", "secret", "little", "big", "lost", "wild"]  # fmt: skip
    return [
        f"{' '.join(rng.choices(words, k=rng.randint(1, 4))).title()} ({rng.randint(1930, 2020)})" for _ in range(n)
    ]


def test_title_matching_is_the_same_with_and_without_rapidfuzz(monkeypatch: pytest.MonkeyPatch) -> None:
    titles = [None, *_catalogue(3000)]
    queries = [t[:-7].replace("a", "e", 1) for t in titles[1:200:7]]  # typos, no year
    queries += [t.lower().replace("o", "", 1) for t in titles[1:200:11]]  # typos with the year
    answers = {}
    for fast in (True, False):
        monkeypatch.setattr(titles_module, "USE_RAPIDFUZZ", fast)
        index = titles_module.TitleIndex(titles, list(range(len(titles))))
        got = []
        for query in queries:
            try:
                got.append(index.resolve(query)[0])
            except TitleMatchError as error:
                got.append(("error", error.ambiguous, sorted(c[0] for c in error.candidates)[:1]))
        answers[fast] = got
    same = sum(a == b for a, b in zip(answers[True], answers[False]))
    assert same >= 0.95 * len(queries)  # the prefilter keeps difflib's top candidates (almost) always


def test_titles_without_rapidfuzz(rec: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(titles_module, "USE_RAPIDFUZZ", False)
    index = titles_module.TitleIndex(rec._titles, rec._item_ids)
    assert index.resolve("Braveheat")[0] == rec.item_vocab.encode(110)


# ---------------------------------------------------------------------------------------------------------------
# Pipeline and run folder with fields
# ---------------------------------------------------------------------------------------------------------------
def test_pipeline_with_fields_through_remote_code(rec: Recommender, run_dir: Path, tmp_path: Path) -> None:
    pipe = pipeline(PIPELINE_TASK, model=str(run_dir), trust_remote_code=True, device="cpu")
    out = pipe({"history": [1, 6], "user_features": {"age": "35"}}, top_k=3, filters={"genres": ["Romance"]})
    expected = rec.recommend(history=[1, 6], k=3, user_features={"age": "35"}, filters={"genres": ["Romance"]})
    assert ids(out) == ids(expected) and [r["genres"] for r in out] == [r["genres"] for r in expected]
    assert [r["score"] for r in out] == pytest.approx([r["score"] for r in expected], abs=1e-5)
    assert all(set(r) == ITEM_KEYS for r in out)
    with pytest.raises(ValueError, match="unknown filter"):
        pipe([1], filters={"genre": "Romance"})
    pipe.save_pretrained(tmp_path / "saved")
    for name in ("item_fields.json", "user_fields.json", "errors.py", "titles.py", "item_filters.py", "fields.py"):
        assert (tmp_path / "saved" / name).is_file(), name
    again = pipeline(PIPELINE_TASK, model=str(tmp_path / "saved"), trust_remote_code=True, device="cpu")
    assert ids(again([1, 6], top_k=3, filters={"genres": ["Romance"]})) == ids(
        pipe([1, 6], top_k=3, filters={"genres": ["Romance"]})
    )
    assert set(again([1, 6], top_k=3)[0]) == ITEM_KEYS


def test_upload_lists_every_bundle_file(run_dir: Path) -> None:
    from hf_recsys.hub import upload_files

    files = set(upload_files(run_dir))
    bundle = {"recommender.py", "request_parsing.py", "errors.py", "titles.py", "fields.py", "item_filters.py",
              "run_files.py", "vocab.py", "pipeline_rec_transformer.py"}  # fmt: skip
    assert bundle <= files and {"item_fields.json", "user_fields.json"} <= files


# ---------------------------------------------------------------------------------------------------------------
# Fuzz: 10,000 seeded random requests, malformed ones mixed in
# ---------------------------------------------------------------------------------------------------------------
def _random_request(rng: random.Random, known: list, users: list) -> dict:
    """A random request on a catalogue of `known` item ids and `users` (ids of the model's own type)."""
    good_titles = ["Toy Story (1995)", "heat (1995)", "Fargo", "Braveheat", "Jumanji"]
    bad_items = [99999, -1, 2**70, "Sabrina", "Xyzzy", "", 2.5, None, True, [1], {"a": 1}, b"1", float("nan")]

    def item() -> object:
        r = rng.random()
        return rng.choice(known) if r < 0.8 else rng.choice(good_titles) if r < 0.97 else rng.choice(bad_items)

    request: dict = {}
    if rng.random() < 0.7:
        r = rng.random()
        request["history"] = (
            [item() for _ in range(rng.randint(0, 12))]
            if r < 0.95
            else rng.choice(["Toy Story (1995)", 260, None, {"x": 1}, (1, 2), np.array([1, 6])])
        )
    if rng.random() < 0.5:
        request["user_id"] = rng.choice([*users, 424242, None, -5] * 3 + ["11", 1.0, True, "U-unknown"])
    if rng.random() < 0.5:
        request["k"] = rng.choice([1, 3, 10, 12, np.int64(4)] * 3 + [0, -1, 13, 100, 2.5, "3", True, None])
    if rng.random() < 0.2:
        request["exclude_seen"] = rng.choice([True, False] * 3 + ["yes", None, 1])
    if rng.random() < 0.2:
        request["on_unknown"] = rng.choice(["skip", "error"] * 3 + ["ignore", None, 1])
    if rng.random() < 0.4:
        request["filters"] = rng.choice(
            [
                None,
                {"genres": rng.choice(["Comedy", ["Action", "romance"], "Western", [], 3, [None]])},
                {"decade": rng.choice(["1990s", ["1950s", "1970s"], "2990s"])},
                {"price": rng.choice([{"min": 3}, {"max": 4.5}, {"min": 6, "max": 2}, {"min": "x"}, ["< 3.0"], 5])},
                {"include_item_ids": rng.sample(known, rng.randint(0, 4)) + rng.choice([[], [99999], ["1"]])},
                {"exclude_item_ids": rng.sample(known, rng.randint(0, 12))},
                {"genres": "Animation", "decade": "1950s"},  # nothing left
                {"year_min": 1990},
                ["genres"],
                "genres=Comedy",
            ]
        )
    if rng.random() < 0.3:
        request["user_features"] = rng.choice(
            [{"age": "25"}, {"age": 35, "gender": "F"}, {"gender": None}, {}] * 3 + [{"agee": 1}, {"age": [1]}, "x"]
        )
    return request


def _check(result: list, k: int, request: dict, rec: Recommender, meta: dict) -> None:
    assert isinstance(result, list) and len(result) <= k
    assert [r["rank"] for r in result] == list(range(1, len(result) + 1))
    scores = [r["score"] for r in result]
    assert scores == sorted(scores, reverse=True) and all(isinstance(s, float) and math.isfinite(s) for s in scores)
    for r in result:
        assert set(r) == ITEM_KEYS
        assert type(r["item_id"]) is {"int": int, "str": str}[rec.item_vocab.id_type] and r["item_id"] in meta
        assert isinstance(r["title"], str) and isinstance(r["genres"], list)
        assert all(isinstance(g, str) for g in r["genres"])
        assert isinstance(r["decade"], str) and (r["price"] is None or isinstance(r["price"], str))
    mask = rec.filters.mask(request.get("filters"))
    if mask is not None:
        assert all(mask[rec.item_vocab.encode(r["item_id"])] for r in result)


@pytest.fixture(scope="module")
def str_rec(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    """The same tiny model with string ids ("B000001X"-like items, string users), as e-commerce logs have."""
    return Recommender.from_pretrained(
        make_tiny_run(tmp_path_factory.mktemp("str") / "run", string_ids=True, fields=True)
    )


@pytest.mark.parametrize("id_type", ["int", "str"])
def test_fuzz_ten_thousand_requests(id_type: str, rec: Recommender, str_rec: Recommender) -> None:
    rng = random.Random(20261201)
    known, users = (MOVIE_IDS, USER_IDS) if id_type == "int" else (STRING_MOVIE_IDS, STRING_USER_IDS)
    if id_type == "str":
        rec = str_rec
    meta = {m: (GENRES[i], DECADES[i], PRICES[i]) for i, m in enumerate(known)}
    outcomes: dict[str, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownItemWarning)
        for n in range(10_000):
            request = _random_request(rng, list(known), list(users))
            kind = "similar" if n % 10 == 9 else "recommend"
            try:
                if kind == "similar":
                    result = rec.similar_items(
                        rng.choice([*known, "Heat", 99999, None, 1.5]),
                        k=request.get("k", 10),
                        filters=request.get("filters"),
                    )
                else:
                    result = rec.recommend(**request)
            except DOCUMENTED as error:
                assert str(error)  # every documented error says what was wrong
                outcomes[type(error).__name__] = outcomes.get(type(error).__name__, 0) + 1
                continue
            _check(result, int(request.get("k", 10)), request, rec, meta)
            outcomes[kind] = outcomes.get(kind, 0) + 1
    assert outcomes.get("recommend", 0) > 1500 and outcomes.get("similar", 0) > 100
    for name in ("InvalidRequestError", "UnknownItemError", "TitleMatchError", "UnknownFilterError"):
        assert outcomes.get(name, 0) > 50, (name, outcomes)
    assert outcomes.get("EmptyCatalogueError", 0) > 10, outcomes


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------
def test_cli_filters_user_features_and_similar_items(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hf_recsys.commands import recommend as cli

    assert cli.parse_filters(["genres=Comedy,Romance", "price=3..", "include_item_ids=1,7"]) == {
        "genres": ["Comedy", "Romance"],
        "price": {"min": 3.0, "max": None},
        "include_item_ids": [1, 7],
    }
    assert cli.parse_user_features(["age=25", "gender=F"]) == {"age": "25", "gender": "F"}
    args = ["--model", str(run_dir), "--history", "1", "6", "--k", "3", "--filter", "genres=Romance", "price=..4"]
    assert cli.main([*args, "--user_feature", "age=35"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert header.split() == ["#", "item_id", "title", "genres", "decade", "price", "score"]
    assert "Fargo (1996)" in out and "Sabrina" not in out  # the only Romance item priced under 5
    assert cli.main(["--model", str(run_dir), "--similar_to", "Heat (1995)", "--k", "2"]) == 0
    assert "items similar to 'Heat (1995)'; strategy: similar" in capsys.readouterr().out
    for bad in (["--filter", "genre=Comedy"], ["--filter", "price=a..b"], ["--user_feature", "agee=1"]):
        assert cli.main(["--model", str(run_dir), "--history", "1", *bad]) == 2
        assert "error" in capsys.readouterr().err
