"""Inference API (`hf_recsys.Recommender`) and the `next-item-recommendation` pipeline.

Everything runs on the tiny run folders of `tests/tiny_run.py` (12 items, 3 users, max length 8; `fields=True`
adds item fields genres / decade / price and user fields age / gender); the "stranger" test loads one in a fresh
process where `hf_recsys` cannot be imported, offline. Filters, user features, similar items and the fuzz test
are in tests/test_serving.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from tiny_run import MOVIE_IDS, STRING_MOVIE_IDS, STRING_USER_IDS, TITLES, make_tiny_run
from transformers import pipeline

from hf_recsys import Recommender
from hf_recsys.data.vocab import ItemVocab
from hf_recsys.inference import (
    PIPELINE_TASK,
    EmptyCatalogueError,
    InvalidRequestError,
    NextItemRecommendationPipeline,
    TitleMatchError,
    UnknownFilterError,
    UnknownItemError,
    UnknownItemWarning,
    save_pipeline_files,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_tiny_run(tmp_path_factory.mktemp("inference") / "tiny-run")
    save_pipeline_files(folder)
    return folder


@pytest.fixture(scope="module")
def rec(run_dir: Path) -> Recommender:
    return Recommender.from_pretrained(run_dir)


@pytest.fixture(scope="module")
def prepend_rec(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    folder = make_tiny_run(tmp_path_factory.mktemp("prepend") / "run", user_conditioning="prepend")
    return Recommender.from_pretrained(folder)


def ids(result: list[dict]) -> list[int]:
    return [item["item_id"] for item in result]


POPULAR = sorted(MOVIE_IDS)  # tiny_run's item_counts decrease with the token, i.e. with the movie id


# ---------------------------------------------------------------------------------------------------------------
# Results, ids and titles
# ---------------------------------------------------------------------------------------------------------------
def test_result_fields_ranks_and_order(rec: Recommender) -> None:
    result = rec.recommend(user_id=11, history=[1, 6], k=5)
    assert [item["rank"] for item in result] == [1, 2, 3, 4, 5]
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    for item in result:
        assert set(item) == {"item_id", "title", "score", "rank"}  # a run without item fields: no field keys
        assert item["title"] == TITLES[MOVIE_IDS.index(item["item_id"])]
        assert isinstance(item["score"], float)
    assert result.strategy == "model" and result.known_user and result.skipped_item_ids == []


def test_agrees_with_the_model_recommend_method(rec: Recommender) -> None:
    """The id/title mapping around the model is right: same items as the model's own top-k on tokens."""
    history = [260, 1196, 1]
    tokens = torch.tensor([[rec.item_vocab.encode(m) for m in history]])
    user = torch.tensor([rec.user_vocab.encode(22)])
    expected = rec.model.recommend(tokens, user_ids=user, k=6)
    result = rec.recommend(user_id=22, history=history, k=6)
    assert ids(result) == rec.item_vocab.decode_many(expected.item_ids[0].numpy()).tolist()
    assert [r["score"] for r in result] == pytest.approx(expected.scores[0].tolist(), abs=1e-5)


def test_titles_and_ids_are_interchangeable(rec: Recommender) -> None:
    by_id = rec.recommend(user_id=11, history=[1, 260, 608], k=4)
    by_title = rec.recommend(
        user_id=11, history=["Toy Story (1995)", "Star Wars: Episode IV - A New Hope (1977)", "Fargo (1996)"], k=4
    )
    mixed = rec.recommend(user_id=11, history=[1, "star wars: episode iv - a new hope (1977)", 608], k=4)
    assert by_id == by_title == mixed
    assert by_title.resolved_titles["Fargo (1996)"] == 608


@pytest.mark.parametrize(
    ("query", "movie_id"),
    [
        ("Toy Story (1995)", 1),  # exact
        ("toy STORY (1995)", 1),  # case-insensitive
        ("Toy Story", 1),  # no year
        ("Fargo 1996", 608),  # normalised (punctuation)
        ("Empire Strikes Back", 1196),  # whole words
        ("Toy Stroy (1995)", 1),  # fuzzy, same year
        ("Braveheat", 110),  # fuzzy, no year
        ("Sabrina (1954)", 915),  # the year disambiguates
    ],
)
def test_title_matching(rec: Recommender, query: str, movie_id: int) -> None:
    assert rec.resolve_title(query) == movie_id


@pytest.mark.parametrize(("query", "expected"), [("Sabrina", [7, 915]), ("Star Wars", [260, 1196])])
def test_ambiguous_title_lists_the_candidates(rec: Recommender, query: str, expected: list[int]) -> None:
    with pytest.raises(ValueError, match="ambiguous") as info:
        rec.recommend(history=[1, query])
    assert isinstance(info.value, TitleMatchError) and info.value.ambiguous
    assert sorted(m for m, _ in info.value.candidates) == expected
    for movie_id in expected:
        assert f"item id {movie_id}" in str(info.value)


def test_unknown_title_lists_close_matches(rec: Recommender) -> None:
    with pytest.raises(TitleMatchError, match="not found") as info:
        rec.recommend(history=["Grumpy Old Men (1993)"])  # a different movie: never silently matched
    assert not info.value.ambiguous
    assert "Grumpier Old Men (1995)" in str(info.value)
    with pytest.raises(ValueError, match="no similar title"):
        rec.resolve_title("Xyzzy Qwerty Plugh")


# ---------------------------------------------------------------------------------------------------------------
# Unknown ids, cold start
# ---------------------------------------------------------------------------------------------------------------
def test_unknown_ids_skipped_with_a_warning(rec: Recommender) -> None:
    with pytest.warns(UnknownItemWarning, match="99999"):
        result = rec.recommend(user_id=11, history=[1, 99999, 6], k=4)
    assert result.skipped_item_ids == [99999]
    assert result == rec.recommend(user_id=11, history=[1, 6], k=4)


def test_unknown_ids_rejected_with_on_unknown_error(rec: Recommender) -> None:
    with pytest.raises(UnknownItemError, match=r"\[99999, 88888\]") as info:
        rec.recommend(history=[1, 99999, 88888], on_unknown="error")
    assert info.value.item_ids == [99999, 88888]
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(InvalidRequestError, match="on_unknown"):
        rec.recommend(history=[1], on_unknown="ignore")


@pytest.mark.parametrize("user_id", [None, 424242, 11])
@pytest.mark.parametrize("history", [None, []])
def test_cold_start_serves_popular_items(rec: Recommender, user_id: int | None, history: list | None) -> None:
    """`add` conditioning has no user token: any empty history is served by popularity (item_counts)."""
    result = rec.recommend(user_id=user_id, history=history, k=5)
    assert result.strategy == "popularity"
    assert ids(result) == POPULAR[:5]
    assert [r["score"] for r in result] == [11.0, 10.0, 9.0, 8.0, 7.0]
    assert ids(rec.popular(3)) == POPULAR[:3]


def test_only_unknown_ids_falls_back_to_popularity(rec: Recommender) -> None:
    with pytest.warns(UnknownItemWarning):
        result = rec.recommend(user_id=None, history=[99999], k=3)
    assert result.strategy == "popularity" and ids(result) == POPULAR[:3]


def test_known_user_without_history_uses_the_user_token(prepend_rec: Recommender) -> None:
    first, second = (prepend_rec.recommend(user_id=u, history=[], k=5) for u in (11, 22))
    assert first.strategy == second.strategy == "model"
    assert [r["score"] for r in first] != [r["score"] for r in second]
    unknown = prepend_rec.recommend(user_id=999, history=[], k=5)
    assert unknown.strategy == "popularity" and ids(unknown) == POPULAR[:5]


def test_model_without_user_conditioning_ignores_the_user(tmp_path: Path) -> None:
    rec = Recommender.from_pretrained(make_tiny_run(tmp_path / "run", user_conditioning="none"))
    assert rec.recommend(user_id=11, history=[], k=3).strategy == "popularity"
    assert rec.recommend(user_id=11, history=[1, 2], k=3) == rec.recommend(user_id=22, history=[1, 2], k=3)


# ---------------------------------------------------------------------------------------------------------------
# Exclusions, filters, long histories
# ---------------------------------------------------------------------------------------------------------------
def test_exclude_seen(rec: Recommender) -> None:
    history = [1, 2, 3]
    assert not set(history) & set(ids(rec.recommend(history=history, k=9)))
    everything = rec.recommend(history=history, k=12, exclude_seen=False)
    assert sorted(ids(everything)) == sorted(MOVIE_IDS)
    assert len(rec.recommend(history=history, k=12)) == 9  # fewer than k once the seen items are removed


def test_id_filters_are_masks_before_top_k(rec: Recommender) -> None:
    history = [1, 6]
    unfiltered = {r["item_id"]: r["score"] for r in rec.recommend(user_id=11, history=history, k=10)}
    excluded = rec.recommend(history=history, k=10, filters={"exclude_item_ids": [2, 3, 123456]})
    assert not {2, 3} & set(ids(excluded)) and len(excluded) == 8
    included = rec.recommend(user_id=11, history=history, k=10, filters={"include_item_ids": [2, 3, 1]})
    assert sorted(ids(included)) == [2, 3]  # 1 is in the history
    assert all(r["score"] == pytest.approx(unfiltered[r["item_id"]]) for r in included)
    popular = rec.recommend(k=2, filters={"include_item_ids": [6, 1196, 260]})
    assert popular.strategy == "popularity" and ids(popular) == [6, 260]


@pytest.mark.parametrize(
    ("filters", "error", "match"),
    [
        ({"genres": ["Comedy"]}, UnknownFilterError, "unknown filter 'genres'.*include_item_ids"),
        ({"exclude_movie_ids": [1]}, UnknownFilterError, "exclude_movie_ids"),
        ({"exclude_item_ids": "1, 2"}, InvalidRequestError, "exclude_item_ids"),
        ({"include_item_ids": [1.5]}, InvalidRequestError, "1.5"),
        ({"include_item_ids": [99999]}, EmptyCatalogueError, "no item"),
        (["genres"], InvalidRequestError, "filters must be a dict"),
    ],
)
def test_bad_filters(rec: Recommender, filters: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        rec.recommend(history=[1], filters=filters)


def test_long_history_keeps_the_most_recent_items(rec: Recommender) -> None:
    history = MOVIE_IDS * 2  # 24 items, max_position_embeddings = 8
    assert rec.max_length == 8
    long_result = rec.recommend(user_id=11, history=history, k=5, exclude_seen=False)
    assert long_result == rec.recommend(user_id=11, history=history[-8:], k=5, exclude_seen=False)
    assert long_result.truncated == 16
    partial = MOVIE_IDS[:10]  # the 2 oldest are not read but still count as seen
    result = rec.recommend(history=partial, k=2)
    assert sorted(ids(result)) == sorted(MOVIE_IDS[10:])


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "positive"),
        ({"k": -3}, ValueError, "positive"),
        ({"k": 13}, ValueError, "larger than the catalogue"),
        ({"k": 2.5}, TypeError, "k must be an int"),
        ({"k": True}, TypeError, "k must be an int"),
        ({"history": "Toy Story (1995)"}, TypeError, "wrap a single title"),
        ({"history": 260}, TypeError, "wrap a single title"),
        ({"history": {1: 2}}, TypeError, "history must be a list"),
        ({"history": [1, 2.0]}, TypeError, r"history\[1\]"),
        ({"history": [None]}, TypeError, r"history\[0\]"),
        ({"history": [True]}, TypeError, r"history\[0\]"),
        ({"user_id": "11"}, TypeError, "user_id"),
        ({"user_id": 1.0}, TypeError, "user_id"),
        ({"exclude_seen": "yes"}, TypeError, "exclude_seen"),
    ],
)
def test_bad_input(rec: Recommender, kwargs: dict, error: type, match: str) -> None:
    request = {"history": [1, 2], **kwargs}
    with pytest.raises(error, match=match):
        rec.recommend(**request)
    with pytest.raises(error, match=match):  # the batch path validates the same way
        rec.recommend_batch([{"history": [1]}, request])


def test_numpy_and_tensor_histories(rec: Recommender) -> None:
    import numpy as np

    expected = rec.recommend(user_id=np.int64(11), history=[1, 6], k=3)
    assert rec.recommend(user_id=11, history=np.array([1, 6]), k=np.int32(3)) == expected
    assert rec.recommend(user_id=11, history=torch.tensor([1, 6]), k=3) == expected
    with pytest.raises(ValueError, match="1-D"):
        rec.recommend(history=np.array([[1, 6]]))


def test_loading_errors(tmp_path: Path, run_dir: Path) -> None:
    broken = tmp_path / "no-vocab"
    shutil.copytree(run_dir, broken)
    (broken / "user_vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"user_vocab\.json"):
        Recommender.from_pretrained(broken)
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        Recommender.from_pretrained("./does/not/exist")
    other = make_tiny_run(tmp_path / "other")
    items = json.loads((other / "item_vocab.json").read_text())
    for key in ("item_ids", "titles", "years", "genres"):
        items[key] = items[key][:-1]
    (other / "item_vocab.json").write_text(json.dumps(items))
    with pytest.raises(ValueError, match="different runs"):
        Recommender.from_pretrained(other)


def test_loads_from_the_hub_cache_by_repo_id(run_dir: Path, tmp_path: Path) -> None:
    """The Hub path (hf_hub_download + from_pretrained by repo id), served offline from a cache laid out by hand."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-rec"
    shutil.copytree(run_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    hub_rec = Recommender.from_pretrained("someone/tiny-rec", cache_dir=tmp_path / "hub")
    local = Recommender.from_pretrained(run_dir)
    assert hub_rec.recommend(user_id=11, history=[1, 6]) == local.recommend(user_id=11, history=[1, 6])


# ---------------------------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------------------------
BATCH = [
    {"user_id": 11, "history": [1, 6, 260]},
    {"user_id": 22, "history": ["Fargo (1996)"], "k": 3},
    {"user_id": None, "history": []},  # popularity
    {"user_id": 33, "history": MOVIE_IDS * 2, "exclude_seen": False},  # truncated
    {"history": [2, 99999], "filters": {"include_item_ids": [1, 3, 16]}},  # unknown id skipped
    {"user_id": 424242, "history": [7, 915, 10, 16, 110], "k": 1},
    {"user_id": 11, "history": [1], "filters": {"exclude_item_ids": [260]}},
]


def test_batch_equals_single_calls(rec: Recommender) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownItemWarning)
        singles = [rec.recommend(**request) for request in BATCH]
        for batch_size in (256, 2, 1):
            batched = rec.recommend_batch(BATCH, batch_size=batch_size)
            assert len(batched) == len(singles)
            for one, many in zip(singles, batched):
                assert ids(one) == ids(many)
                assert [r["score"] for r in one] == pytest.approx([r["score"] for r in many], abs=1e-5)
                assert (one.strategy, one.skipped_item_ids) == (many.strategy, many.skipped_item_ids)


def test_batch_defaults_and_errors(rec: Recommender) -> None:
    results = rec.recommend_batch([{"history": [1]}, {"history": [2], "k": 2}], k=4)
    assert [len(r) for r in results] == [4, 2]
    assert rec.recommend_batch([]) == []
    with pytest.raises(ValueError, match="unknown keys") as info:
        rec.recommend_batch([{"history": [1]}, {"items": [1]}])
    assert "requests[1]" in str(info.value)
    with pytest.raises(TitleMatchError) as info:
        rec.recommend_batch([{"history": [1]}, {"history": ["Sabrina"]}])
    assert "requests[1]" in "".join(info.value.__notes__)
    with pytest.raises(TypeError, match="list of dicts"):
        rec.recommend_batch({"history": [1]})
    with pytest.raises(ValueError, match="batch_size"):
        rec.recommend_batch([{"history": [1]}], batch_size=0)


# ---------------------------------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------------------------------
def same(got: list[dict], expected: list[dict]) -> None:
    """Same movies in the same order with the same titles, scores equal up to float noise (batch padding)."""
    assert [r["item_id"] for r in got] == [r["item_id"] for r in expected]
    assert [r["title"] for r in got] == [r["title"] for r in expected]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-5)


def as_pipeline_output(result: list[dict]) -> list[dict]:
    return [dict(r) for r in result]  # the pipeline returns Recommender's result dicts as they are


def test_pipeline_in_process(rec: Recommender, run_dir: Path) -> None:
    pipe = pipeline(PIPELINE_TASK, model=rec.model, item_vocab=rec.item_vocab, user_vocab=rec.user_vocab, device="cpu")
    assert isinstance(pipe, NextItemRecommendationPipeline)
    expected = as_pipeline_output(rec.recommend(user_id=11, history=[1, "Heat (1995)"], k=4))
    assert pipe({"user_id": 11, "history": [1, "Heat (1995)"]}, top_k=4) == expected
    assert pipe([1, 6], top_k=3) == as_pipeline_output(rec.recommend(history=[1, 6], k=3))
    assert pipe({"user_id": 5}) == as_pipeline_output(rec.popular(10))
    batch = pipe([{"user_id": 11, "history": [1, 6]}, [260], {"history": []}], top_k=2)
    assert len(batch) == 3 and all(set(r) == {"item_id", "title", "score", "rank"} for one in batch for r in one)
    same(batch[0], rec.recommend(user_id=11, history=[1, 6], k=2))
    same(batch[1], rec.recommend(history=[260], k=2))
    assert batch[2] == as_pipeline_output(rec.popular(2))
    only = pipe([1], top_k=2, filters={"include_item_ids": [7, 915, 608, 110]}, exclude_seen=True)
    assert len(only) == 2 and {r["item_id"] for r in only} <= {7, 915, 608, 110}
    # the items most like one item, as Recommender.similar_items gives them
    assert pipe({"similar_to": 260}, top_k=3) == as_pipeline_output(rec.similar_items(260, k=3))
    assert pipe({"similar_to": "Heat (1995)"}, filters={"exclude_item_ids": [1]}) == as_pipeline_output(
        rec.similar_items("Heat (1995)", k=10, filters={"exclude_item_ids": [1]})
    )
    with pytest.raises(ValueError, match="takes no other input keys"):
        pipe({"similar_to": 260, "history": [1]})
    with pytest.raises(ValueError, match="top_k and filters only"):
        pipe({"similar_to": 260}, exclude_seen=False)
    with pytest.raises(TypeError, match="pipeline input"):
        pipe(260)
    with pytest.raises(ValueError, match="unknown input keys"):
        pipe({"user": 11})
    with pytest.raises(TypeError, match="unexpected pipeline arguments"):
        pipe([1], k=3)
    with pytest.raises(UnknownItemError):
        pipe([1, 99999], on_unknown="error")
    # A model loaded from a folder finds its vocabularies by itself.
    loaded = Recommender.from_pretrained(run_dir).model
    assert pipeline(PIPELINE_TASK, model=loaded, device="cpu")([1, 6], top_k=3) == pipe([1, 6], top_k=3)


def test_pipeline_save_pretrained_round_trip(rec: Recommender, tmp_path: Path) -> None:
    pipe = pipeline(PIPELINE_TASK, model=rec.model, item_vocab=rec.item_vocab, user_vocab=rec.user_vocab, device="cpu")
    pipe.save_pretrained(tmp_path / "saved")
    files = set(os.listdir(tmp_path / "saved"))
    assert {"config.json", "model.safetensors", "item_vocab.json", "user_vocab.json"} <= files
    assert {"pipeline_rec_transformer.py", "recommender.py", "vocab.py", "modeling_rec_transformer.py"} <= files
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert (
        config["custom_pipelines"][PIPELINE_TASK]["impl"] == "pipeline_rec_transformer.NextItemRecommendationPipeline"
    )
    reloaded = pipeline(PIPELINE_TASK, model=str(tmp_path / "saved"), trust_remote_code=True, device="cpu")
    assert reloaded([1, 6], top_k=3) == pipe([1, 6], top_k=3)


def test_save_pipeline_files_sets_the_config(rec: Recommender, tmp_path: Path) -> None:
    """Before save_pretrained (model given) or after it (config.json patched): both give a loadable folder."""
    model = Recommender.from_pretrained(make_tiny_run(tmp_path / "src")).model
    written = save_pipeline_files(tmp_path / "before", model)
    assert {p.name for p in written} >= {"pipeline_rec_transformer.py", "recommender.py", "vocab.py"}
    assert PIPELINE_TASK in model.config.custom_pipelines
    model.save_pretrained(tmp_path / "before")
    config = json.loads((tmp_path / "before" / "config.json").read_text())
    assert config["custom_pipelines"][PIPELINE_TASK]["pt"] == ["AutoModel"]
    assert "auto_map" in config
    allowed = {
        "torch",
        "numpy",
        "huggingface_hub",
        "transformers",
        "rapidfuzz",
        "safetensors",
        *sys.stdlib_module_names,
    }
    for path in written:
        if path.suffix != ".py":
            continue
        source = (REPO_ROOT / "hf_recsys" / "modeling" / path.name).read_text()
        for found in re.findall(r"^\s*(?:from\s+([\w.]+)\s+import\s|import\s+([\w.]+))", source, re.MULTILINE):
            module = found[0] or found[1]
            assert module.startswith(".") or module.split(".")[0] in allowed, f"{path.name} imports {module}"


STRANGER = textwrap.dedent(
    """
    import json, sys
    sys.modules["hf_recsys"] = None  # as if the package were not installed
    try:
        import hf_recsys  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("hf_recsys is importable")
    from transformers import AutoModel, pipeline
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    folder, repo_id = sys.argv[1], sys.argv[2]
    out = {}
    pipe = pipeline("next-item-recommendation", model=folder, trust_remote_code=True, device="cpu")
    out["pipeline"] = pipe({"user_id": 11, "history": [1, "Heat (1995)", 99999]}, top_k=5)
    out["pipeline_list"] = pipe(["Toy Story", 260], top_k=3)
    out["pipeline_cold"] = pipe({"user_id": None, "history": []}, top_k=3)
    out["pipeline_batch"] = pipe([{"user_id": 22, "history": [608]}, [1, 6]], top_k=2)
    out["hub_pipeline"] = pipeline(
        "next-item-recommendation", model=repo_id, trust_remote_code=True, device="cpu"
    )({"user_id": 11, "history": [1, "Heat (1995)"]}, top_k=5)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    out["auto_model_class"] = type(model).__name__
    Recommender = get_class_from_dynamic_module("recommender.Recommender", folder)
    rec = Recommender.from_pretrained(folder)
    out["recommender"] = rec.recommend(user_id=11, history=[1, "Heat (1995)"], k=5)
    out["modules"] = sorted(m for m in sys.modules if m.startswith("hf_recsys") and sys.modules[m] is not None)
    print("RESULT=" + json.dumps(out))
    """
)


def test_pipeline_as_a_stranger_in_a_fresh_process(rec: Recommender, run_dir: Path, tmp_path: Path) -> None:
    """`pipeline(task, model=folder or repo id, trust_remote_code=True)` without hf_recsys, offline."""
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "home" / "hub" / "models--someone--tiny-rec"
    shutil.copytree(run_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHONPATH", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "home"), TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(
        [sys.executable, "-c", STRANGER, str(run_dir), "someone/tiny-rec"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT="))
    out = json.loads(line[len("RESULT=") :])
    assert out["modules"] == []
    assert out["auto_model_class"] == "RecTransformerForNextItemPrediction"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownItemWarning)
        expected = rec.recommend(user_id=11, history=[1, "Heat (1995)"], k=5)
        same(out["pipeline"], expected)
        same(out["hub_pipeline"], expected)
        same(out["recommender"], expected)
        assert out["recommender"] == json.loads(json.dumps(expected))
        same(out["pipeline_list"], rec.recommend(history=[1, 260], k=3))
        same(out["pipeline_cold"], rec.popular(3))
        same(out["pipeline_batch"][0], rec.recommend(user_id=22, history=[608], k=2))
        same(out["pipeline_batch"][1], rec.recommend(history=[1, 6], k=2))
    assert "99999" in done.stderr  # the skipped id was reported


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------
def test_cli_prints_a_table(run_dir: Path, rec: Recommender, capsys: pytest.CaptureFixture[str]) -> None:
    from hf_recsys.commands import recommend as cli

    assert cli.parse_history(["Toy Story (1995)", "260", " 7"]) == ["Toy Story (1995)", 260, 7]
    status = cli.main(["--model", str(run_dir), "--user_id", "11", "--history", "toy story", "260", "--k", "3"])
    out = capsys.readouterr().out
    assert status == 0
    for item in rec.recommend(user_id=11, history=[1, 260], k=3):
        assert item["title"] in out
    assert "matched 'toy story' -> 'Toy Story (1995)'" in out
    assert cli.main(["--model", str(run_dir), "--history", "Sabrina"]) == 2
    assert "ambiguous" in capsys.readouterr().err
    assert cli.main(["--model", str(run_dir), "--k", "2"]) == 0
    assert "popularity" in capsys.readouterr().out
    assert cli.main(["--model", str(run_dir), "--filter", "genres=Action"]) == 2  # this run has no item fields
    assert "unknown filter 'genres'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# String ids (e-commerce catalogues): the same tiny model with ids such as "B000001X"
# ---------------------------------------------------------------------------------------------------------------
STR_OF = dict(zip(MOVIE_IDS, STRING_MOVIE_IDS))


@pytest.fixture(scope="module")
def str_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("string-ids") / "run", string_ids=True)


@pytest.fixture(scope="module")
def str_rec(str_run_dir: Path) -> Recommender:
    return Recommender.from_pretrained(str_run_dir)


def test_string_id_model_recommends_with_ids_of_its_type(str_rec: Recommender, rec: Recommender) -> None:
    """Same weights, same tokens: the string-id model ranks exactly like the int one, ids in their own type."""
    assert str_rec.item_vocab.id_type == "str" and str_rec.user_vocab.id_type == "str"
    popular = str_rec.popular(k=5)
    assert ids(popular) == [STR_OF[m] for m in POPULAR[:5]] and all(type(m) is str for m in ids(popular))
    history = [STR_OF[1], STR_OF[260], STR_OF[608]]
    result = str_rec.recommend(user_id=STRING_USER_IDS[0], history=history, k=4)
    expected = rec.recommend(user_id=11, history=[1, 260, 608], k=4)
    assert ids(result) == [STR_OF[m] for m in ids(expected)]
    assert [r["score"] for r in result] == pytest.approx([r["score"] for r in expected])
    assert result.strategy == "model" and result.known_user and result.user_id == STRING_USER_IDS[0]
    assert not set(ids(result)) & set(history)  # exclude_seen works on the resolved string ids
    assert result.resolved_titles == {} and result.skipped_item_ids == []


def test_string_id_history_mixes_ids_and_titles(str_rec: Recommender) -> None:
    by_id = str_rec.recommend(history=[STR_OF[1], STR_OF[260]], k=4)
    by_title = str_rec.recommend(history=["Toy Story (1995)", "star wars: episode iv - a new hope (1977)"], k=4)
    mixed = str_rec.recommend(history=[STR_OF[1], "Star Wars: Episode IV - A New Hope (1977)"], k=4)
    assert by_id == by_title == mixed
    assert by_title.resolved_titles["Toy Story (1995)"] == STR_OF[1]
    assert str_rec.resolve_title("Fargo (1996)") == STR_OF[608] and str_rec.title(STR_OF[608]) == "Fargo (1996)"
    with pytest.raises(TitleMatchError, match="not found"):  # neither a known id nor a title
        str_rec.recommend(history=["B999999X"])
    with pytest.warns(UnknownItemWarning, match="260"):  # an int is never converted: an unknown id
        skipped = str_rec.recommend(history=[260, STR_OF[1]], k=3)
    assert skipped.skipped_item_ids == [260] and skipped == str_rec.recommend(history=[STR_OF[1]], k=3)
    with pytest.raises(UnknownItemError, match="260"):
        str_rec.title(260)


def test_known_string_id_wins_over_a_title(str_rec: Recommender) -> None:
    """An item whose id is another item's title: the id is taken first; without titles, unknown strings skip."""
    model = str_rec.model
    titles = list(TITLES)
    clash_ids = [*STRING_MOVIE_IDS[:-1], "Fargo (1996)"]  # the last item's id is the 11th item's title
    items = ItemVocab(clash_ids, titles=titles, years=[int(t[-5:-1]) for t in titles])
    clash = Recommender(model, items, str_rec.user_vocab)
    token = items.encode("Fargo (1996)")
    result = clash.recommend(history=["Fargo (1996)"], k=3, exclude_seen=True)
    assert result.resolved_titles == {}  # taken as an id, not matched as a title
    assert clash._prepare(history=["Fargo (1996)"]).seen_tokens == [token]
    assert clash._prepare(history=["fargo (1996)"]).seen_tokens == [items.encode(STRING_MOVIE_IDS[10])]
    untitled = Recommender(model, ItemVocab(STRING_MOVIE_IDS), str_rec.user_vocab)
    with pytest.warns(UnknownItemWarning, match="Toy Story"):
        no_titles = untitled.recommend(history=["Toy Story (1995)", STR_OF[1]], k=3)
    assert no_titles.skipped_item_ids == ["Toy Story (1995)"]


def test_string_user_ids_and_id_filters(str_rec: Recommender) -> None:
    known = str_rec.recommend(user_id="AGZZ22", history=[STR_OF[1]], k=3)
    assert known.known_user and known.user_id == "AGZZ22"
    stranger = str_rec.recommend(user_id="nobody", history=[STR_OF[1]], k=3)
    assert not stranger.known_user
    with pytest.raises(TypeError, match="user_id must be a str"):
        str_rec.recommend(user_id=22, history=[STR_OF[1]])
    only = str_rec.recommend(filters={"include_item_ids": [STR_OF[6], STR_OF[7], "B-unknown"]}, k=3)
    assert sorted(ids(only)) == [STR_OF[6], STR_OF[7]]
    dropped = str_rec.recommend(filters={"exclude_item_ids": [STR_OF[1]]}, k=11)
    assert STR_OF[1] not in ids(dropped)
    with pytest.raises(InvalidRequestError, match="must hold str item ids"):
        str_rec.recommend(filters={"exclude_item_ids": [1]})


def test_string_id_pipeline_and_cli(
    str_rec: Recommender, str_run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hf_recsys.commands import recommend as cli

    pipe = NextItemRecommendationPipeline(
        model=str_rec.model, item_vocab=str_rec.item_vocab, user_vocab=str_rec.user_vocab
    )
    out = pipe({"user_id": STRING_USER_IDS[1], "history": [STR_OF[1], "Heat (1995)"]}, top_k=3)
    expected = str_rec.recommend(user_id=STRING_USER_IDS[1], history=[STR_OF[1], STR_OF[6]], k=3)
    assert [o["item_id"] for o in out] == ids(expected)
    assert cli.parse_history(["0042", "Heat (1995)"], "str") == ["0042", "Heat (1995)"]
    assert cli.parse_user_id("0042", "str") == "0042" and cli.parse_user_id("42") == 42
    status = cli.main(["--model", str(str_run_dir), "--user_id", "AGZZ22", "--history", STR_OF[1], "heat", "--k", "3"])
    printed = capsys.readouterr().out
    assert status == 0 and "user AGZZ22" in printed and "matched 'heat' -> 'Heat (1995)'" in printed
    for item in str_rec.recommend(user_id="AGZZ22", history=[STR_OF[1], STR_OF[6]], k=3):
        assert item["item_id"] in printed
