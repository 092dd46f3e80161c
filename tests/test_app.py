"""The Gradio demo (hf_recsys.app): view logic and callbacks without a browser, then the page in headless Chromium.

The unit tests need no browser (those touching Gradio components skip without the `demo` extra). The end-to-end
test serves the page on a free localhost port from a background thread and drives Debian's Chromium through
Playwright: pick three movies, press Recommend, read the tables; it skips, saying why, when gradio, playwright or
Chromium is missing (`.ci/run` installs all three).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tiny_run import MOVIE_IDS, TITLES, make_tiny_run

from hf_recsys.app import (
    HISTORIES_FILE,
    DemoModel,
    ModelLoadError,
    genre_mix,
    genre_mix_figure,
    histories_from_dataset,
    item_noun,
    load_demo_model,
    load_histories,
    main,
    parse_args,
    recommend_view,
    save_histories,
    user_history_view,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

# Gradio's own queue code trips pandas 3 deprecations; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")

CHROMIUM = os.environ.get("HF_RECSYS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
HISTORY_OF_11 = [1, 2, 3, 6, 7, 915, 10, 16, 260]  # oldest first
TITLE_OF = dict(zip(MOVIE_IDS, TITLES))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("app") / "run")


@pytest.fixture(scope="module")
def model(run_dir: Path) -> DemoModel:
    return load_demo_model(run_dir, histories={11: HISTORY_OF_11, 22: [2, 3]})


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------
def test_gradio_and_pyplot_are_imported_lazily() -> None:
    """`hf_recsys.app` must import without the demo extra and cheaply: no module-level gradio/pyplot import.

    Checked on the source (a subprocess import would cost seconds of torch start-up for the same answer).
    """
    import ast

    import hf_recsys.app

    top_level = []
    modules = sorted(Path(hf_recsys.app.__file__).parent.glob("*.py"))
    assert {path.stem for path in modules} >= {"__init__", "models", "views", "page"}
    for path in modules:
        for node in ast.parse(path.read_text()).body:  # module level only; `if TYPE_CHECKING:` blocks never run
            if isinstance(node, ast.Import):
                top_level += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                top_level.append(node.module or "")
    assert not [name for name in top_level if name.split(".")[0] in {"gradio", "pandas", "matplotlib", "playwright"}]


def test_load_demo_model_builds_choices_and_description(model: DemoModel) -> None:
    # The picker lists every movie once, most popular first (tiny run: popularity decreases with the token).
    assert sorted(movie for _, movie in model.title_choices) == sorted(MOVIE_IDS)
    assert model.title_choices[0] == ("Toy Story (1995)", 1)
    assert {label for label, _ in model.title_choices} == set(TITLES)
    assert model.user_choices == [
        ("User 11 (M, 18, 1)", 11),
        ("User 22 (F, 25, 2)", 22),
        ("User 33 (M, 35, 3)", 33),
    ]
    assert model.genre_names == ["Action", "Adventure", "Animation", "Comedy", "Romance"]
    assert "rec-transformer-tiny on ml-1m" in model.description
    assert "test NDCG@10 0.189 (popularity 0.019)" in model.description
    assert model.max_k == 12


def test_duplicate_titles_are_told_apart(tmp_path: Path) -> None:
    run = make_tiny_run(tmp_path / "run")
    vocab = json.loads((run / "item_vocab.json").read_text())
    vocab["titles"][1] = vocab["titles"][0]  # two movies called "Toy Story (1995)"
    (run / "item_vocab.json").write_text(json.dumps(vocab))
    labels = [label for label, _ in load_demo_model(run, histories=None).title_choices]
    assert "Toy Story (1995) [id 1]" in labels and "Toy Story (1995) [id 2]" in labels
    assert len(set(labels)) == len(labels)


def test_missing_model_gives_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no such local folder, and loading it as a Hub repo.*make demo"):
        load_demo_model("nobody-here/no-such-model")  # tests run with HF_HUB_OFFLINE=1: fails at once
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"not a loadable run folder.*item_vocab\.json"):
        load_demo_model(tmp_path / "empty")
    with pytest.raises(ModelLoadError, match=r"typo does not exist \(but .* does\)"):
        load_demo_model(str(tmp_path / "typo"))  # the parent folder exists: a local path, no Hub lookup
    with pytest.raises(ModelLoadError, match="no model given"):
        load_demo_model("  ")


def test_histories_file_round_trip_and_auto_discovery(tmp_path: Path) -> None:
    run = make_tiny_run(tmp_path / "run")
    save_histories(run / HISTORIES_FILE, {22: [2, 3], 11: [1, 260]})
    assert load_histories(run / HISTORIES_FILE) == {11: [1, 260], 22: [2, 3]}
    model = load_demo_model(run)  # histories="auto" finds the file next to the model
    assert model.history_source == str(run / HISTORIES_FILE)
    assert model.histories() == ({11: [1, 260], 22: [2, 3]}, None)
    (tmp_path / "bad.json").write_text('{"11": "not a list of ids"}')
    with pytest.raises(ValueError, match=r"bad\.json"):
        load_histories(tmp_path / "bad.json")


def test_auto_histories_fall_back_to_the_results_dataset(run_dir: Path) -> None:
    """Without user_histories.json, the MovieLens release named in results.json is read (lazily)."""
    model = load_demo_model(run_dir)
    assert model.history_source is not None and "ml-1m" in model.history_source
    assert load_demo_model(run_dir, histories="none").history_loader is None


def test_histories_from_dataset_takes_each_users_longest_row() -> None:
    datasets = pytest.importorskip("datasets")
    from hf_recsys.data.vocab import ItemVocab

    items = ItemVocab([10, 20, 30, 40])
    rows = {  # leave-one-out rows of user 5 (tokens 1..4) and user 6
        "train": {"user_id": [5, 6], "input_ids": [[1], [2]], "target": [2, 3]},
        "test": {"user_id": [5], "input_ids": [[1, 2, 3]], "target": [4]},
    }
    dataset = datasets.DatasetDict({name: datasets.Dataset.from_dict(cols) for name, cols in rows.items()})
    assert histories_from_dataset(dataset, items) == {5: [10, 20, 30, 40], 6: [20, 30]}


# --------------------------------------------------------------------------------------------------------------
# Views (what a click shows)
# --------------------------------------------------------------------------------------------------------------
def test_recommend_view_for_three_picked_movies(model: DemoModel) -> None:
    picked = [2, 6, 608]
    view = recommend_view(model, picked, None, None, k=5)
    assert view.warning is None and view.strategy == "model"
    recs = view.recommendations
    assert list(recs.columns) == ["#", "Title", "Genres", "Year", "Score", "Also popular"]
    assert list(recs["#"]) == [1, 2, 3, 4, 5]
    assert set(recs["Title"]) <= set(TITLES) and not set(recs["Title"]) & {TITLE_OF[m] for m in picked}
    assert list(recs["Score"]) == sorted(recs["Score"], reverse=True)
    expected = model.recommender.recommend(history=picked, k=5)  # the page shows exactly the API's answer
    assert list(recs["Title"]) == [item["title"] for item in expected]
    # The baseline answers the same question: most popular first, history excluded.
    assert list(view.popular["Title"]) == [TITLE_OF[m] for m in (1, 3, 7, 10, 16)]
    assert list(view.popular["Ratings"]) == sorted(view.popular["Ratings"], reverse=True)
    marked = {title for title, mark in zip(recs["Title"], recs["Also popular"]) if mark}
    assert marked == set(recs["Title"]) & set(view.popular["Title"])
    assert "Top 5 for you, from a history of 3 movies" in view.message
    shares = view.genre_mix.groupby("group")["share"].sum()
    assert shares.to_dict() == pytest.approx({"Your movies": 1.0, "Recommended": 1.0})


def test_recommend_view_genre_filter_applies_to_both_columns(model: DemoModel) -> None:
    view = recommend_view(model, [1, 2, 3], None, None, k=10, genres=["Romance"])
    assert len(view.recommendations) == 4  # the catalogue has 4 romances, none picked
    assert all(genres == "Romance" for genres in view.recommendations["Genres"])
    assert all(genres == "Romance" for genres in view.popular["Genres"])
    assert "Only 4 movies left" in view.message


def test_empty_selection_warns_and_still_shows_the_baseline(model: DemoModel) -> None:
    view = recommend_view(model, [], None, None, k=3)
    assert view.warning is not None and "Pick at least one movie" in view.warning
    assert view.recommendations.empty
    assert list(view.popular["Title"]) == [TITLE_OF[m] for m in (1, 2, 3)]


def test_no_model_warns() -> None:
    view = recommend_view(None, [1], None)
    assert view.warning is not None and "No model is loaded" in view.warning
    assert view.recommendations.empty and view.popular.empty


def test_bad_user_value_is_reported_not_raised(model: DemoModel) -> None:
    view = recommend_view(model, [1], "abc", None)
    assert view.warning is not None and "not a user id" in view.warning


def test_user_history_view_splits_recent_and_older(model: DemoModel) -> None:
    view = user_history_view(model, "User 11 (M, 18, 1)", shown=4)  # a label typed back also works
    assert view.shown == HISTORY_OF_11[-4:] and view.older == HISTORY_OF_11[:-4]
    assert "User 11 (M, 18, 1) watched 9 movies" in view.message and view.warning is None
    # Recommending with the user: the history is older + picker, and none of it comes back.
    rec = recommend_view(model, view.shown, 11, view.older, k=3)
    assert rec.warning is None and "for user 11, from a history of 9 movies" in rec.message
    assert not set(rec.recommendations["Title"]) & {TITLE_OF[m] for m in HISTORY_OF_11}


def test_user_history_view_edge_cases(model: DemoModel) -> None:
    assert user_history_view(model, None).message == ""
    unknown = user_history_view(model, 999)
    assert unknown.shown == [] and "not in this model's training data" in unknown.message
    no_history = user_history_view(model, 33)
    assert no_history.shown == [] and "only the user id is used" in no_history.message
    assert "not a user id" in (user_history_view(model, "x").warning or "")


def test_known_user_alone_with_a_prepend_model(tmp_path: Path) -> None:
    """A "prepend" model scores a known user from the user token alone: the model answers, not popularity."""
    model = load_demo_model(make_tiny_run(tmp_path / "run", user_conditioning="prepend"), histories=None)
    view = recommend_view(model, [], 22, None, k=4)
    assert view.strategy == "model" and "from the user profile alone" in view.message
    assert len(view.recommendations) == 4


def test_user_without_any_history_source(run_dir: Path) -> None:
    model = load_demo_model(run_dir, histories=None)
    view = user_history_view(model, 11)
    assert view.warning == "no watch histories are available for this model"
    rec = recommend_view(model, [], 11, None, k=3)  # user id alone: cold start for an "add" model
    assert rec.strategy == "popularity" and "cold start" in rec.message


def test_genre_mix_and_figure(model: DemoModel) -> None:
    mix = genre_mix(model, {"Your movies": [1], "Recommended": [6, 7]})
    table = {(row.genre, row.group): row.share for row in mix.itertuples()}
    assert table[("Animation", "Your movies")] == pytest.approx(0.5)  # Toy Story: Animation + Comedy
    assert table[("Action", "Recommended")] == pytest.approx(0.5)
    figure = genre_mix_figure(mix)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert genre_mix_figure(genre_mix(model, {"Your movies": []})).axes  # empty: a placeholder, no error


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------
def test_parse_args_reads_space_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_RECSYS_MODEL", "someone/rec-model")
    monkeypatch.setenv("SPACE_ID", "someone/demo")
    args = parse_args([])
    assert args.model == "someone/rec-model" and args.lock_model and args.histories == "auto"
    monkeypatch.delenv("SPACE_ID")
    assert parse_args(["--model", "runs/x", "--port", "7861"]).port == 7861
    assert not parse_args([]).lock_model


def test_main_exits_with_a_message_for_a_missing_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gradio", reason="the demo extra is not installed")
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert main(["--model", str(tmp_path / "missing")]) == 2
    assert "make demo" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# Gradio callbacks and page (no browser)
# --------------------------------------------------------------------------------------------------------------
def test_callbacks(model: DemoModel, run_dir: Path) -> None:
    pytest.importorskip("gradio", reason="the demo extra is not installed")
    from hf_recsys.app.models import register_model
    from hf_recsys.app.page import load_model_callback, pick_user_callback, recommend_callback

    key = register_model(model)
    status, recs, popular, figure = recommend_callback(key, [2, 6, 608], None, [], 5, [])
    assert len(recs) == 5 and len(popular) == 5 and figure is not None and "Top 5" in status
    with pytest.warns(UserWarning, match="Pick at least one movie"):  # a toast in the page
        status, recs, _, figure = recommend_callback(key, [], None, [], 5, [])
    assert recs.empty and figure is None
    with pytest.warns(UserWarning, match="No model is loaded"):
        recommend_callback("not-registered", [1], None, [], 5, [])

    picker, older, status = pick_user_callback(key, 11)
    assert picker["value"] == HISTORY_OF_11 and older == [] and "User 11" in status
    picker, older, status = pick_user_callback(key, 33)  # no known history: the picked movies stay
    assert "value" not in picker and older == [] and "only the user id is used" in status

    outputs = load_model_callback(str(run_dir), None, histories=None)
    assert outputs[0].startswith(f"{run_dir.resolve()}#") and outputs[0] != key and outputs[-1].startswith("Loaded")
    assert load_model_callback(str(run_dir), None, histories=None)[0] == outputs[0]  # loaded once, then reused
    assert outputs[2]["choices"][0] == ("Toy Story (1995)", 1) and outputs[5]["maximum"] == 12
    with pytest.warns(UserWarning, match="does not exist"):
        outputs = load_model_callback(str(run_dir / "nope"), key)
    assert outputs[0] == key and "⚠️" in outputs[-1]  # the session keeps its model


def test_registry_pins_page_models_and_evicts_box_loads(model: DemoModel, run_dir: Path) -> None:
    from hf_recsys.app import models as app

    pinned = app.register_model(model, pinned=True)
    loaded = [app.register_model(load_demo_model(run_dir, histories=None)) for _ in range(app.MAX_LOADED_MODELS + 1)]
    assert app.lookup_model(pinned) is model  # never evicted by visitors loading models
    assert app.lookup_model(loaded[0]) is None and all(app.lookup_model(key) for key in loaded[1:])


def test_build_demo_without_a_model_shows_the_model_box() -> None:
    pytest.importorskip("gradio", reason="the demo extra is not installed")
    from hf_recsys.app import build_demo

    demo = build_demo(None, notice="No model configured")
    ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    assert {"movies", "user", "k", "recommend", "recommendations", "popular", "genre-mix", "model-source"} <= ids


# --------------------------------------------------------------------------------------------------------------
# End to end: the page in headless Chromium
# --------------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(model: DemoModel) -> Iterator[str]:
    """The demo on a free localhost port (Gradio's server thread inside this process); yields its URL."""
    pytest.importorskip("gradio", reason="the demo extra is not installed: pip install -e '.[demo]'")
    from hf_recsys.app import build_demo, launch

    demo = build_demo(model)
    port = _free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (Playwright's own browser download is not used)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[demo]'")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set HF_RECSYS_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, served_app: str) -> Iterator[Page]:
    """A fresh page on the demo that may only talk to localhost (the page must not need the internet)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    external: list[str] = []

    def local_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(served_app) or url.startswith("data:"):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.set_default_timeout(60_000)  # first events are slow on a busy 2-core CI machine
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # and so are the page's updates (expect waits 5 s by default)
    page.goto(served_app)
    page.locator("#movies input[role=combobox]").wait_for()
    yield page
    context.close()
    assert not external, f"the page requested external resources: {external}"


def _pick(page: Page, widget: str, label: str) -> None:
    """Type the start of `label` into a filterable dropdown and click the matching option."""
    box = page.locator(f"#{widget} input[role=combobox]")
    box.click()
    box.fill(label[:5])
    page.locator(f'#{widget} li[role=option][aria-label="{label}"]').click()


def test_browser_pick_three_movies_and_recommend(page: Page, model: DemoModel, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    picked = [2, 6, 608]
    for movie in picked:
        _pick(page, "movies", TITLE_OF[movie])
    page.keyboard.press("Escape")
    expect(page.locator("#movies .token")).to_have_text([TITLE_OF[m] for m in picked])

    page.locator("#recommend").click()
    expect(page.locator("#status")).to_contain_text("from a history of 3 movies")
    expected = [item["title"] for item in model.recommender.recommend(history=picked, k=9)]
    table = page.locator("#recommendations")
    for title in expected:
        expect(table).to_contain_text(title)
    shown = table.inner_text()
    assert not any(TITLE_OF[m] in shown for m in picked), "a picked movie was recommended back"
    positions = [shown.index(title) for title in expected]
    assert positions == sorted(positions), "recommendations are not in rank order"
    expect(page.locator("#popular")).to_contain_text(TITLE_OF[1])
    expect(page.locator("#genre-mix img")).to_be_visible()

    screenshot = tmp_path / "app.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def test_browser_pick_a_user_loads_their_history(page: Page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _pick(page, "user", "User 11 (M, 18, 1)")
    expect(page.locator("#status")).to_contain_text("User 11 (M, 18, 1) watched 9 movies")
    expect(page.locator("#movies .token")).to_have_count(len(HISTORY_OF_11))
    page.locator("#recommend").click()
    expect(page.locator("#status")).to_contain_text("for user 11")
    page.screenshot(path=str(tmp_path / "app_user.png"), full_page=True)
    box = page.locator("#user input[role=combobox]")  # any id can be typed; an unknown one is explained
    box.click()
    box.fill("999")
    page.locator("h1").first.click()
    expect(page.locator("#status")).to_contain_text("User 999 is not in this model's training data")


def test_browser_empty_selection_shows_a_warning(page: Page) -> None:
    from playwright.sync_api import expect

    page.locator("#recommend").click()
    expect(page.locator("#status")).to_contain_text("Pick at least one movie")
    expect(page.get_by_text("Pick at least one movie").first).to_be_visible()


def test_wording_follows_the_data_description(tmp_path: Path) -> None:
    """ "movie" for MovieLens data (results.json "data", else "dataset"), "item" for anything else."""
    assert item_noun({"data": {"name": "ml-1m", "title": "MovieLens 1M"}}) == "movie"
    assert item_noun({"data": {"name": "latest-small", "url": "https://grouplens.org/datasets/movielens/"}}) == "movie"
    assert item_noun({"data": {"name": "All_Beauty", "title": "All_Beauty"}, "dataset": "ml-1m"}) == "item"
    assert item_noun({"dataset": "ml-1m"}) == "movie" and item_noun({"dataset": "toys"}) == "item"
    assert item_noun(None) == "item"
    folder = make_tiny_run(tmp_path / "shop", fields=True)
    results = json.loads((folder / "results.json").read_text())
    results["data"] = {"name": "shop", "title": "A shop", "num_items": 12}
    (folder / "results.json").write_text(json.dumps(results))
    shop = load_demo_model(folder, histories=None)
    assert shop.noun == "item" and "12 items" in shop.description
    view = recommend_view(shop, [1, 6], k=3, genres=["Romance"])  # the run's genres field filters
    assert "from a history of 2 items" in view.message and len(view.recommendations) == 3
    assert all("Romance" in genres for genres in view.recommendations["Genres"])
