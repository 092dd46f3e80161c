"""Interactive web demo: pick movies you liked (or a MovieLens user) and see what the model recommends.

`build_demo(model)` returns a `gradio.Blocks` page; `hf-recsys app` (and `scripts/app.py`, usable as a Hugging Face Space's
`app.py`) parses the command line and launches it. The page shows, side by side, the model's recommendations
and what the popularity baseline (the cold-start answer) would show for the same request, plus a bar chart of
the genre mix of the picked movies against the genre mix of the recommendations.

Design notes:

* Everything but the page layout is plain Python (`load_demo_model`, `recommend_view`, `user_history_view`), so
  the logic is unit-tested without a browser; the Gradio callbacks are thin wrappers that add toasts and
  component updates. `gradio` is imported lazily (only by `build_demo`/`launch` and the callbacks): importing
  this module, or `hf_recsys`, stays cheap and works without the `demo` extra.
* Loaded models live in a process-wide registry (the page's own model pinned, a few loaded from the model box
  besides, reused across sessions); a browser session only keeps its model's key in a `gr.State` (Gradio
  deep-copies state values per session, which must not happen to a model).
* Watch histories of existing users are not part of a run folder's required files. They come from
  `user_histories.json` next to the model (see `save_histories`), else from the MovieLens release named in
  `results.json` (`hf_recsys.data.load_movielens`; the CLI reads it in the background at start-up, otherwise it
  is read on the first user pick), else the user is served from the user id alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: see the module docstring
    import datasets
    import gradio as gr
    import pandas as pd
    from matplotlib.figure import Figure

    from .modeling.recommender import Recommender
    from .modeling.vocab import ItemVocab

logger = logging.getLogger(__name__)

__all__ = [
    "HISTORIES_FILE",
    "MODEL_ENV",
    "DemoModel",
    "ModelLoadError",
    "RecommendView",
    "UserHistoryView",
    "build_demo",
    "genre_mix",
    "genre_mix_figure",
    "histories_from_dataset",
    "histories_from_movielens",
    "launch",
    "load_demo_model",
    "load_histories",
    "main",
    "parse_args",
    "recommend_view",
    "save_histories",
    "user_history_view",
]

MODEL_ENV = "HF_RECSYS_MODEL"  # the model a Space (or a bare `python scripts/app.py`) serves
HISTORIES_ENV = "HF_RECSYS_HISTORIES"  # optional: histories source for a bare `python scripts/app.py`
HISTORIES_FILE = "user_histories.json"  # optional file next to a model: {user_id: [movie ids, oldest first]}
RESULTS_FILE = "results.json"
SHOWN_HISTORY = 20  # most recent movies of a picked user put in the picker (older ones are kept aside)
MAX_K = 50
DEFAULT_K = 10
MAX_USER_CHOICES = 5000  # larger user vocabularies: the first ids are listed, any id can be typed
MAX_GENRES_PLOTTED = 12
MAX_LOADED_MODELS = 3
RECOMMENDATION_COLUMNS = ["#", "Title", "Genres", "Year", "Score", "Also popular"]
POPULAR_COLUMNS = ["#", "Title", "Genres", "Year", "Ratings"]
HistoriesArg = str | os.PathLike[str] | Mapping[int, Sequence[int]] | None


class ModelLoadError(RuntimeError):
    """A model source (run folder or Hub repo id) that could not be loaded; the message says why."""


# --------------------------------------------------------------------------------------------------------------
# Watch histories of existing users
# --------------------------------------------------------------------------------------------------------------
def save_histories(path: str | os.PathLike[str], histories: Mapping[int, Sequence[int]]) -> Path:
    """Write `{user_id: [movie ids, oldest first]}` as JSON (e.g. `runs/demo/user_histories.json`).

    Put the file next to a model (or in its Hub repo) so the demo can show existing users' histories without
    the MovieLens files, e.g. in a Space.
    """
    path = Path(path)
    payload = {str(int(user)): [int(m) for m in movies] for user, movies in sorted(histories.items())}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, separators=(",", ":")))
    tmp.replace(path)
    return path


def load_histories(path: str | os.PathLike[str]) -> dict[int, list[int]]:
    """Read a `save_histories` file; raises `ValueError` naming the file when its content has the wrong shape."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object {{user_id: [movie ids]}}, got {type(data).__name__}")
    try:
        return {int(user): [int(m) for m in movies] for user, movies in data.items()}
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: expected {{user_id: [movie ids]}} with integer ids ({error})") from error


def histories_from_dataset(dataset: datasets.DatasetDict, items: ItemVocab) -> dict[int, list[int]]:
    """Full watch history per user from a `load_movielens` DatasetDict, as original movie ids (oldest first).

    Every row reads "history -> next movie"; a user's longest `input_ids + [target]` over all splits is their
    whole history under the leave-one-out and temporal protocols (the test row).
    """
    longest: dict[int, list[int]] = {}
    for split in dataset.values():
        columns = split.select_columns(["user_id", "input_ids", "target"]).to_dict()
        for user, tokens, target in zip(columns["user_id"], columns["input_ids"], columns["target"]):
            if len(tokens) + 1 > len(longest.get(user, ())):
                longest[user] = [*tokens, target]
    return {int(user): items.decode_many(tokens).tolist() for user, tokens in longest.items()}


def histories_from_movielens(name: str, data_dir: str | os.PathLike[str] | None = None) -> dict[int, list[int]]:
    """Watch histories of every user of a MovieLens release (`hf_recsys.data.load_movielens`, leave-one-out)."""
    from .data import load_movielens

    data = load_movielens(name, data_dir=data_dir)
    return histories_from_dataset(data.dataset, data.items)


# --------------------------------------------------------------------------------------------------------------
# Loading a model for the demo
# --------------------------------------------------------------------------------------------------------------
@dataclass
class DemoModel:
    """A loaded `Recommender` plus everything the page needs from it (choices, metadata, histories).

    Build it with `load_demo_model`. `histories()` loads the users' watch histories on first use (reading a
    MovieLens release can take seconds, and most visitors never pick a user).
    """

    source: str
    recommender: Recommender
    description: str
    title_choices: list[tuple[str, int]]  # (label shown in the picker, movie id), most popular first
    user_choices: list[tuple[str, int]]  # (label, user id)
    genre_names: list[str]
    genres: dict[int, list[str]]  # movie id -> genres, for every movie of the catalogue
    years: dict[int, int] = field(default_factory=dict)  # movie id -> release year, where the vocabulary has one
    noun: str = "movie"  # what the page calls an item: "movie" for MovieLens runs (results.json "data"), else "item"
    history_loader: Callable[[], dict[int, list[int]]] | None = None
    history_source: str | None = None
    _histories: dict[int, list[int]] | None = field(default=None, repr=False)
    _history_error: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def num_items(self) -> int:
        """Number of movies in the catalogue."""
        return self.recommender.num_items

    @property
    def max_k(self) -> int:
        """Largest k the page offers."""
        return min(MAX_K, self.num_items)

    def histories(self) -> tuple[dict[int, list[int]] | None, str | None]:
        """(user id -> history, None) once loaded; (None, why) when no source exists or loading failed."""
        with self._lock:
            if self._histories is None and self._history_error is None:
                if self.history_loader is None:
                    self._history_error = "no watch histories are available for this model"
                else:
                    try:
                        self._histories = self.history_loader()
                    except Exception as error:  # any failure only disables the history pre-fill
                        logger.warning("could not load watch histories from %s: %s", self.history_source, error)
                        self._history_error = f"could not load watch histories from {self.history_source}: {error}"
            return self._histories, self._history_error

    def prefetch_histories(self) -> None:
        """Load the histories in a background thread now, so the first user pick does not wait (CLI start-up)."""
        if self.history_loader is not None:
            threading.Thread(target=self.histories, name="hf-recsys-histories", daemon=True).start()


def _resolve_source(source: str | os.PathLike[str]) -> tuple[str, bool]:
    """(registry key, is local folder): an absolute path for a folder, the repo id otherwise."""
    text = os.path.expanduser(str(source).strip())
    path = Path(text)
    if path.is_dir():
        return str(path.resolve()), True
    return text, False


def _read_optional_file(source: str, is_local: bool, name: str, revision: str | None) -> Path | None:
    """Path of an optional file of the model (local folder or Hub repo), None when absent or unreachable."""
    if is_local:
        path = Path(source) / name
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source, name, revision=revision))
    except Exception:  # optional file: missing, offline, ... all mean "not there"
        return None


def item_noun(results: Mapping[str, Any] | None) -> str:
    """ "movie" when the run's data description (results.json "data"; "dataset" for runs without one) is a
    MovieLens release, "item" otherwise: the page's wording follows the data, not the code."""
    data = (results or {}).get("data")
    if isinstance(data, Mapping):
        text = " ".join(str(data.get(key) or "") for key in ("name", "title", "url", "description")).casefold()
        movielens = "movielens" in text or "grouplens" in text or str(data.get("name") or "").startswith("ml-")
    else:
        movielens = str((results or {}).get("dataset") or "").startswith("ml-")
    return "movie" if movielens else "item"


def _describe(source: str, results: Mapping[str, Any] | None, recommender: Recommender) -> str:
    """One markdown line about the model: name, data, test NDCG@10 against popularity, catalogue size."""
    parts = [f"**Model** `{source}`"]
    if results:
        what = results.get("model") or "model"
        dataset = results.get("dataset")
        protocol = results.get("protocol")
        parts.append(f"{what}" + (f" on {dataset}" if dataset else "") + (f" ({protocol})" if protocol else ""))
        test = (results.get("metrics") or {}).get("test") or {}
        baseline = ((results.get("baselines") or {}).get("popularity") or {}).get("test") or {}
        if isinstance(test.get("ndcg@10"), (int, float)):
            line = f"test NDCG@10 {test['ndcg@10']:.3f}"
            if isinstance(baseline.get("ndcg@10"), (int, float)):
                line += f" (popularity {baseline['ndcg@10']:.3f})"
            parts.append(line)
    parts.append(f"{_count(recommender.num_items, item_noun(results))}, {recommender.user_vocab.num_users:,} users")
    return " · ".join(parts)


def _history_loader(
    histories: HistoriesArg, source: str, is_local: bool, results: Mapping[str, Any] | None, revision: str | None
) -> tuple[Callable[[], dict[int, list[int]]] | None, str | None]:
    """Pick where users' watch histories come from (see `load_demo_model`); returns (loader, description)."""
    if histories is None or (isinstance(histories, str) and histories.lower() == "none"):
        return None, None
    if isinstance(histories, Mapping):
        table = {int(user): [int(m) for m in movies] for user, movies in histories.items()}
        return (lambda: table), "the given histories"
    if not (isinstance(histories, str) and histories.lower() == "auto"):
        path = Path(histories)
        if not path.is_file():
            raise ModelLoadError(f"histories file {path} does not exist")
        return (lambda: load_histories(path)), str(path)
    found = _read_optional_file(source, is_local, HISTORIES_FILE, revision)
    if found is not None:
        return (lambda: load_histories(found)), str(found)
    dataset = (results or {}).get("dataset")
    if isinstance(dataset, str) and dataset:
        return (lambda: histories_from_movielens(dataset)), f"MovieLens {dataset} (hf_recsys.data.load_movielens)"
    return None, None


def load_demo_model(
    source: str | os.PathLike[str],
    histories: HistoriesArg = "auto",
    device: str | None = None,
    revision: str | None = None,
) -> DemoModel:
    """Load a run folder or Hub repo id for the demo.

    Args:
        source: a run folder (what training writes) or a Hub repo id.
        histories: where existing users' watch histories come from: `"auto"` (`user_histories.json` next to
            the model, else the MovieLens release named in its `results.json`), a JSON file path, a mapping
            `{user_id: [movie ids]}`, or None / `"none"` (users are then served from their id alone).
        device: torch device of the model (default CPU).
        revision: Hub branch, tag or commit.

    Raises:
        ModelLoadError: the source is neither a loadable folder nor a reachable Hub repo; the message says why.
    """
    from .inference import Recommender

    text = str(source).strip()
    if not text:
        raise ModelLoadError("no model given: pass a run folder (e.g. runs/demo) or a Hub repo id")
    key, is_local = _resolve_source(text)
    parent = Path(key).parent
    if not is_local and str(parent) not in ("", ".") and parent.is_dir():  # "runs/typo": a local path, not a repo
        raise ModelLoadError(
            f"{text} does not exist (but {parent}/ does): give an existing run folder, or train one with "
            "`make demo` (writes runs/demo)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # loading-time chatter (e.g. offline mode) is not for the page
            recommender = Recommender.from_pretrained(key, device=device, revision=None if is_local else revision)
    except Exception as error:
        if is_local:
            raise ModelLoadError(f"{text} is not a loadable run folder: {error}") from error
        raise ModelLoadError(
            f"could not load {text!r}: there is no such local folder, and loading it as a Hub repo id failed "
            f"({error}). Train a model with `make demo` (writes runs/demo) or pass a Hub repo id."
        ) from error

    results_path = _read_optional_file(key, is_local, RESULTS_FILE, revision)
    results: dict[str, Any] | None = None
    if results_path is not None:
        try:
            results = json.loads(results_path.read_text())
        except (OSError, ValueError):
            results = None
    loader, history_source = _history_loader(histories, key, is_local, results, revision)

    items = recommender.item_vocab
    meta = items.to_dict()
    ids = [int(m) for m in items.item_ids.tolist()]
    titles = {m: t for m, t in zip(ids, meta["titles"] or [None] * len(ids)) if t}
    genres = {m: list(g) for m, g in zip(ids, meta["genres"] or [[]] * len(ids))}
    years = {m: y for m, y in zip(ids, meta["years"] or [None] * len(ids)) if y is not None}
    noun = item_noun(results)

    counts = {item["item_id"]: item["score"] for item in recommender.popular(k=recommender.num_items)}
    labels = {m: titles.get(m) or f"{noun} {m}" for m in ids}
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    labels = {m: (f"{label} [id {m}]" if seen[label] > 1 else label) for m, label in labels.items()}
    order = sorted(ids, key=lambda m: (-counts.get(m, 0.0), labels[m].casefold()))
    title_choices = [(labels[m], m) for m in order]

    users = recommender.user_vocab
    user_choices = []
    for index, user in enumerate(users.user_ids.tolist()[:MAX_USER_CHOICES], start=1):
        values = [v for v in users.feature_values(index).values() if v] if users.feature_names else []
        user_choices.append((f"User {user}" + (f" ({', '.join(values)})" if values else ""), int(user)))

    return DemoModel(
        source=text,
        recommender=recommender,
        description=_describe(text, results, recommender),
        title_choices=title_choices,
        user_choices=user_choices,
        genre_names=list(items.genre_names),
        genres=genres,
        years=years,
        noun=noun,
        history_loader=loader,
        history_source=history_source,
    )


_MODELS: OrderedDict[str, DemoModel] = OrderedDict()  # session key -> model
_PINNED: set[str] = set()  # keys of the models pages were built with: never evicted
_BY_REQUEST: dict[tuple[str, str], str] = {}  # (source, histories) loaded from the model box -> key
_MODELS_LOCK = threading.Lock()


def _register(model: DemoModel, pinned: bool = False) -> str:
    """Keep `model` in the process-wide registry and return the key a session stores.

    Models a page was built with are pinned; models loaded from the model box are evicted oldest first beyond
    `MAX_LOADED_MODELS` (a session holding an evicted key is told to load its model again).
    """
    key = f"{_resolve_source(model.source)[0]}#{id(model):x}"
    with _MODELS_LOCK:
        _MODELS[key] = model
        _MODELS.move_to_end(key)
        if pinned:
            _PINNED.add(key)
        unpinned = [k for k in _MODELS if k not in _PINNED]
        for old in unpinned[: max(0, len(unpinned) - MAX_LOADED_MODELS)]:
            del _MODELS[old]
    return key


def _load_for_session(source: str, histories: HistoriesArg) -> tuple[str, DemoModel]:
    """The model box: reuse a registered model of the same source and histories, else load and register it."""
    request = (
        _resolve_source(source)[0],
        repr(histories) if not isinstance(histories, Mapping) else str(id(histories)),
    )
    with _MODELS_LOCK:
        key = _BY_REQUEST.get(request)
        model = _MODELS.get(key) if key else None
    if key is not None and model is not None:
        return key, model
    model = load_demo_model(source, histories=histories)
    key = _register(model)
    with _MODELS_LOCK:
        _BY_REQUEST[request] = key
    return key, model


def _lookup(key: str | None) -> DemoModel | None:
    """The registered model of a session's key, None when there is none (or it was evicted)."""
    if not key:
        return None
    with _MODELS_LOCK:
        return _MODELS.get(key)


# --------------------------------------------------------------------------------------------------------------
# What the page shows (plain Python: unit-tested without gradio)
# --------------------------------------------------------------------------------------------------------------
@dataclass
class UserHistoryView:
    """What picking an existing user puts on the page."""

    shown: list[int]  # most recent movies, for the picker
    older: list[int]  # the rest of the history (oldest first), kept aside and prepended when recommending
    message: str  # markdown status line
    warning: str | None = None  # toast for problems (no histories, unknown user)


@dataclass
class RecommendView:
    """Everything one click on "Recommend" shows: status line, two tables and the genre mix."""

    message: str
    recommendations: pd.DataFrame
    popular: pd.DataFrame
    genre_mix: pd.DataFrame  # columns genre, group, share (see `genre_mix`)
    warning: str | None = None
    strategy: str | None = None


def _parse_user(value: Any) -> int | None:
    """A user picker value (an id, a typed string, or a "User 42 (...)" label) -> user id; None when empty."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a user id: {value!r}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"not a user id: {value!r}")
        return int(value)
    text = str(value).strip()
    if text.lower().startswith("user "):
        text = text[5:].split("(", 1)[0].strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a user id: {value!r} (type a number, e.g. 42)") from None


def user_history_view(model: DemoModel | None, user_value: Any, shown: int = SHOWN_HISTORY) -> UserHistoryView:
    """Split a picked user's watch history into the picker's `shown` most recent movies and the older rest."""
    if model is None:
        return UserHistoryView([], [], "", warning=_NO_MODEL)
    try:
        user = _parse_user(user_value)
    except ValueError as error:
        return UserHistoryView([], [], "", warning=str(error))
    if user is None:
        return UserHistoryView([], [], "")
    users = model.recommender.user_vocab
    known = users.encode(user) != 0
    profile = ""
    if known and users.feature_names:
        values = [v for v in users.feature_values(users.encode(user)).values() if v]
        profile = f" ({', '.join(values)})" if values else ""
    if not known:
        return UserHistoryView(
            [],
            [],
            f"User {user} is not in this model's training data: they are served like a new visitor.",
            warning=f"user {user} is unknown to this model",
        )
    histories, problem = model.histories()
    history = (histories or {}).get(user)
    if history is None:
        why = problem or "this user has no recorded history"
        return UserHistoryView(
            [],
            [],
            f"User {user}{profile}: {why}, so only the user id is used. Pick movies to add a history.",
            warning=why if problem else None,
        )
    history = [m for m in history if m in model.genres]  # drop movies the model does not know
    older, recent = history[:-shown] if shown else history, history[-shown:] if shown else []
    message = f"User {user}{profile} watched {_count(len(history), model.noun)}"
    if older:
        message += (
            f"; the {len(recent)} most recent are in the picker, the {len(older):,} older ones are used too "
            f"(the model reads the last {model.recommender.max_length})"
        )
    return UserHistoryView(recent, older, message + ".")


def _count(count: int, noun: str = "movie") -> str:
    """'1 movie', '2,345 movies' (or items)."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _filters(model: DemoModel, genres: Sequence[str] | None) -> dict[str, Any]:
    """The genre filter as the recommender takes it: its "genres" item field when the run has one, else the
    movies of those genres in the item vocabulary (runs without item fields)."""
    if not genres:
        return {}
    if any(f.name == "genres" for f in model.recommender.item_fields):
        return {"genres": list(genres)}
    wanted = {g.casefold() for g in genres}
    return {"include_item_ids": [m for m, gs in model.genres.items() if wanted & {g.casefold() for g in gs}]}


def _row_year(model: DemoModel, item: Mapping[str, Any]) -> int | None:
    return model.years.get(item["item_id"])


def _row_genres(model: DemoModel, item: Mapping[str, Any]) -> str:
    return ", ".join(item.get("genres") or model.genres.get(item["item_id"]) or [])


def _frame(rows: list[list[Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def genre_mix(model: DemoModel, groups: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """Share of each genre in each group of movies (columns `genre`, `group`, `share`, shares sum to 1).

    A movie with n genres counts 1/n for each, so one multi-genre movie weighs as much as a single-genre one.
    Only the `MAX_GENRES_PLOTTED` genres with the largest total share are kept.
    """
    shares: dict[str, dict[str, float]] = {}
    for group, movies in groups.items():
        counts: dict[str, float] = {}
        for movie in movies:
            names = model.genres.get(movie) or []
            for name in names:
                counts[name] = counts.get(name, 0.0) + 1.0 / len(names)
        total = sum(counts.values())
        shares[group] = {name: value / total for name, value in counts.items()} if total else {}
    totals: dict[str, float] = {}
    for values in shares.values():
        for name, value in values.items():
            totals[name] = totals.get(name, 0.0) + value
    top = sorted(totals, key=lambda name: (-totals[name], name))[:MAX_GENRES_PLOTTED]
    rows = [[name, group, shares[group].get(name, 0.0)] for name in top for group in groups]
    return _frame(rows, ["genre", "group", "share"])


def genre_mix_figure(mix: pd.DataFrame) -> Figure:
    """Horizontal grouped bar chart of a `genre_mix` table (matplotlib, no pyplot state: thread-safe)."""
    from matplotlib.figure import Figure

    genres = list(dict.fromkeys(mix["genre"]))
    groups = list(dict.fromkeys(mix["group"]))
    figure = Figure(figsize=(7.5, 0.9 + 0.32 * max(len(genres), 3)), layout="constrained")
    axes = figure.subplots()
    if not genres:
        axes.text(0.5, 0.5, "no genres to compare yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    height = 0.8 / max(len(groups), 1)
    colors = ["#6b7280", "#f97316", "#3b82f6"]
    for g, group in enumerate(groups):
        values = mix[mix["group"] == group].set_index("genre")["share"].reindex(genres).fillna(0.0)
        positions = [i + (g - (len(groups) - 1) / 2) * height for i in range(len(genres))]
        axes.barh(positions, values.to_numpy() * 100, height=height, label=group, color=colors[g % len(colors)])
    axes.set_yticks(range(len(genres)), genres)
    axes.invert_yaxis()
    axes.set_xlabel("share of movies (%)")
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(groups), frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


_NO_MODEL = "No model is loaded: enter a run folder (e.g. runs/demo) or a Hub repo id and press Load."


def _empty(noun: str) -> str:
    who = "a MovieLens user" if noun == "movie" else "an existing user"
    return f"Pick at least one {noun} you liked (or {who}) to get personalised recommendations."


def recommend_view(
    model: DemoModel | None,
    movie_ids: Sequence[int] | None,
    user_value: Any = None,
    older: Sequence[int] | None = None,
    k: int | float = DEFAULT_K,
    genres: Sequence[str] | None = None,
) -> RecommendView:
    """Run one request: the model's top-k for the picked movies / user, and the popularity top-k beside it.

    The history is `older` (a picked user's movies not shown in the picker) followed by `movie_ids` (the picker,
    in the order picked). Movies of the history are excluded from both lists, and `genres` (any of) filters
    both, so the two columns answer the same question. With nothing picked, only the popularity column is
    filled and `warning` says what to do.
    """
    empty_recs = _frame([], RECOMMENDATION_COLUMNS)
    empty_mix = _frame([], ["genre", "group", "share"])
    if model is None:
        return RecommendView(_NO_MODEL, empty_recs, _frame([], POPULAR_COLUMNS), empty_mix, warning=_NO_MODEL)
    rec = model.recommender
    picked = [int(m) for m in (movie_ids or [])]
    history = [m for m in (older or []) if m not in set(picked)] + picked
    k = max(1, min(int(k or DEFAULT_K), rec.num_items))
    try:
        filters = _filters(model, genres)
        user = _parse_user(user_value)
        popular = rec.recommend(
            user_id=None, history=[], k=k, filters={**filters, "exclude_item_ids": history} if history else filters
        )
        popular_rows = [
            [item["rank"], item.get("title"), _row_genres(model, item), _row_year(model, item), int(item["score"])]
            for item in popular
        ]
        if user is None and not history:
            return RecommendView(
                _empty(model.noun) + " Meanwhile, the popularity column shows what a new visitor gets.",
                empty_recs,
                _frame(popular_rows, POPULAR_COLUMNS),
                empty_mix,
                warning=_empty(model.noun),
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown ids are reported through skipped_item_ids below
            result = rec.recommend(user_id=user, history=history, k=k, filters=filters or None)
    except ValueError as error:  # every request error of the recommender (hf_recsys.modeling.errors)
        message = f"Could not compute recommendations: {error}"
        return RecommendView(message, empty_recs, _frame([], POPULAR_COLUMNS), empty_mix, warning=message)

    popular_ids = {item["item_id"] for item in popular}
    noun = model.noun
    rows = [
        [
            item["rank"],
            item.get("title"),
            _row_genres(model, item),
            _row_year(model, item),
            round(float(item["score"]), 3),
            "✓" if item["item_id"] in popular_ids else "",
        ]
        for item in result
    ]
    who = f"user {user}" if user is not None else "you"
    if result.strategy == "popularity":
        message = (
            f"No history to read for {who}, so the model falls back to the most popular {noun}s (cold start); "
            f"pick {noun}s you liked to personalise."
        )
    else:
        if history:
            message = f"Top {len(result)} for {who}, from a history of {_count(len(history), noun)}"
            message += f" (model reads the last {rec.max_length})." if len(history) > rec.max_length else "."
        else:
            message = f"Top {len(result)} for {who}, from the user profile alone (no {noun}s picked)."
        overlap = sum(1 for item in result if item["item_id"] in popular_ids)
        message += f" {overlap} of them are also in the popularity top {k}."
    if len(result) < k:
        message += f" Only {_count(len(result), noun)} left after excluding your history and applying the filters."
    if result.skipped_item_ids:
        message += f" Skipped {noun}s unknown to the model: {result.skipped_item_ids}."
    mix = genre_mix(model, {f"Your {noun}s": history, "Recommended": [item["item_id"] for item in result]})
    return RecommendView(
        message,
        _frame(rows, RECOMMENDATION_COLUMNS),
        _frame(popular_rows, POPULAR_COLUMNS),
        mix,
        strategy=result.strategy,
    )


# --------------------------------------------------------------------------------------------------------------
# Gradio callbacks (thin: toasts + component updates around the views above)
# --------------------------------------------------------------------------------------------------------------
def _warn(message: str | None) -> None:
    """Show `message` as a toast in the page (a Python warning outside a Gradio event)."""
    if message:
        import gradio as gr

        gr.Warning(message)


def recommend_callback(
    model_key: str | None,
    movie_ids: Sequence[int] | None,
    user_value: Any,
    older: Sequence[int] | None,
    k: int | float,
    genres: Sequence[str] | None,
) -> tuple[str, pd.DataFrame, pd.DataFrame, Figure | None]:
    """The "Recommend" button: (status markdown, recommendations, popularity baseline, genre-mix chart)."""
    view = recommend_view(_lookup(model_key), movie_ids, user_value, older, k, genres)
    _warn(view.warning)
    figure = genre_mix_figure(view.genre_mix) if len(view.genre_mix) else None
    return view.message, view.recommendations, view.popular, figure


def pick_user_callback(model_key: str | None, user_value: Any) -> tuple[dict[str, Any], list[int], Any]:
    """A user was picked (or cleared): (picker update with their recent movies, older movies, status)."""
    import gradio as gr

    view = user_history_view(_lookup(model_key), user_value)
    _warn(view.warning)
    if _parse_user_or_none(user_value) is None:  # cleared: leave the picked movies and the status alone
        return gr.update(), [], gr.update() if not view.message else view.message
    if not view.shown and not view.older:  # no known history: keep what the visitor picked
        return gr.update(), [], view.message
    return gr.update(value=view.shown), view.older, view.message


def _parse_user_or_none(value: Any) -> int | None:
    try:
        return _parse_user(value)
    except ValueError:
        return None


def load_model_callback(source: str, model_key: str | None, histories: HistoriesArg = "auto") -> tuple[Any, ...]:
    """The "Load" button: load a folder / repo id and reset the pickers to its catalogue.

    Returns updates for (model key state, description, movie picker, user picker, genre filter, k slider,
    older-movies state, status). On failure the session keeps its current model and the status says why.
    """
    import gradio as gr

    try:
        key, model = _load_for_session(source, histories)
    except ModelLoadError as error:
        _warn(str(error))
        keep = gr.update()
        return (model_key, keep, keep, keep, keep, keep, gr.update(), f"⚠️ {error}")
    return (
        key,
        model.description,
        gr.update(choices=model.title_choices, value=[]),
        gr.update(choices=model.user_choices, value=None),
        gr.update(choices=model.genre_names, value=[], visible=bool(model.genre_names)),
        gr.update(maximum=model.max_k, value=min(DEFAULT_K, model.max_k)),
        [],
        f"Loaded `{model.source}`.",
    )


# --------------------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------------------
def build_demo(
    model: str | os.PathLike[str] | DemoModel | None = None,
    *,
    histories: HistoriesArg = "auto",
    lock_model: bool = False,
    notice: str | None = None,
) -> gr.Blocks:
    """Build the demo page (not launched: call `launch(demo)` or `demo.launch()`).

    Args:
        model: a `DemoModel`, or a run folder / Hub repo id to load (raises `ModelLoadError` when it cannot be
            loaded), or None to start empty with a model box.
        histories: where existing users' histories come from (see `load_demo_model`).
        lock_model: hide the model box so visitors cannot load other models (public Spaces).
        notice: a markdown line shown at the top (e.g. why no model is loaded).
    """
    import gradio as gr

    loaded = model if isinstance(model, DemoModel) or model is None else load_demo_model(model, histories=histories)
    key = _register(loaded, pinned=True) if loaded is not None else None
    max_k = loaded.max_k if loaded else MAX_K
    intro = notice or (loaded.description if loaded else _NO_MODEL)
    noun = loaded.noun if loaded else "movie"  # the page's wording follows the loaded run's data
    user_source = "MovieLens user" if noun == "movie" else "user"

    with gr.Blocks(title=f"hf-recsys {noun} recommender", analytics_enabled=False) as demo:
        model_key = gr.State(key)
        older = gr.State([])
        gr.Markdown(
            f"# {'What should I watch next?' if noun == 'movie' else 'What comes next?'}\n"
            f"Pick {noun}s you liked, oldest first (or start from an existing {user_source}), and compare the "
            "model's picks with the popularity baseline."
        )
        description = gr.Markdown(intro, elem_id="model-description")
        with gr.Accordion("Model", open=loaded is None, visible=not lock_model), gr.Row():
            source = gr.Textbox(
                value=loaded.source if loaded else "",
                label="Run folder or Hub repo id",
                placeholder="runs/demo or user/rec-transformer-ml-1m",
                scale=4,
                elem_id="model-source",
            )
            load = gr.Button("Load", scale=1, elem_id="load-model")
        with gr.Row():
            with gr.Column(scale=3):
                movies = gr.Dropdown(
                    choices=loaded.title_choices if loaded else [],
                    value=[],
                    multiselect=True,
                    filterable=True,
                    label=f"{noun.capitalize()}s you liked (oldest first)",
                    info=f"Type to search the catalogue; the most popular {noun}s are listed first.",
                    elem_id="movies",
                )
            with gr.Column(scale=2):
                user = gr.Dropdown(
                    choices=loaded.user_choices if loaded else [],
                    value=None,
                    allow_custom_value=True,
                    filterable=True,
                    label=f"…or an existing {user_source}",
                    info="Loads their history into the picker (type any user id).",
                    elem_id="user",
                )
        with gr.Row():
            genre_filter = gr.Dropdown(
                choices=loaded.genre_names if loaded else [],
                value=[],
                multiselect=True,
                label="Only these genres (optional)",
                visible=bool(loaded and loaded.genre_names),
                scale=3,
                elem_id="genres",
            )
            k = gr.Slider(1, max_k, value=min(DEFAULT_K, max_k), step=1, label="How many", scale=2, elem_id="k")
            with gr.Column(scale=1, min_width=120):
                recommend = gr.Button("Recommend", variant="primary", elem_id="recommend")
                clear = gr.Button("Clear", elem_id="clear")
        status = gr.Markdown("", elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("### Recommended for you")
                recommendations = gr.Dataframe(
                    _frame([], RECOMMENDATION_COLUMNS),
                    interactive=False,
                    wrap=True,
                    column_widths=["6%", "38%", "20%", "10%", "12%", "14%"],
                    elem_id="recommendations",
                )
            with gr.Column():
                gr.Markdown("### Popularity baseline (what a new visitor gets)")
                popular = gr.Dataframe(
                    _frame([], POPULAR_COLUMNS),
                    interactive=False,
                    wrap=True,
                    column_widths=["6%", "44%", "22%", "12%", "16%"],
                    elem_id="popular",
                )
        chart = gr.Plot(label=f"Genre mix: your {noun}s vs the recommendations", elem_id="genre-mix")

        recommend.click(
            recommend_callback,
            inputs=[model_key, movies, user, older, k, genre_filter],
            outputs=[status, recommendations, popular, chart],
        )
        user.input(pick_user_callback, inputs=[model_key, user], outputs=[movies, older, status])
        clear.click(
            lambda: ([], None, [], [], "", _frame([], RECOMMENDATION_COLUMNS), _frame([], POPULAR_COLUMNS), None),
            outputs=[movies, user, older, genre_filter, status, recommendations, popular, chart],
        )
        if not lock_model:  # a locked page must not even expose the endpoint (reachable through the API)
            load.click(
                lambda text, current: load_model_callback(text, current, histories),
                inputs=[source, model_key],
                outputs=[model_key, description, movies, user, genre_filter, k, older, status],
            )
    return demo


def launch(
    demo: gr.Blocks,
    *,
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> Any:
    """Serve the page. host/port default to Gradio's (`GRADIO_SERVER_NAME`/`GRADIO_SERVER_PORT`, else
    127.0.0.1:7860; Spaces set them). With `prevent_thread_lock` it returns at once (tests, notebooks)."""
    return demo.queue(default_concurrency_limit=2).launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        show_error=True,
        footer_links=["gradio"],
    )


# --------------------------------------------------------------------------------------------------------------
# Command line (hf-recsys app)
# --------------------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of `hf-recsys app`; every one has an environment default so a Space needs no arguments."""
    parser = argparse.ArgumentParser(
        prog="hf-recsys app",
        description="Interactive movie recommendation demo (Gradio).",
        epilog=f"In a Hugging Face Space, set the {MODEL_ENV} variable to a model repo id and run with no arguments.",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV) or None,
        help=f"run folder (e.g. runs/demo) or Hub repo id (default: ${MODEL_ENV})",
    )
    parser.add_argument(
        "--histories",
        default=os.environ.get(HISTORIES_ENV) or "auto",
        help=f"users' watch histories: auto ({HISTORIES_FILE} next to the model, else the MovieLens release "
        "of its results.json), none, or a JSON file {user_id: [movie ids]} (default: auto)",
    )
    parser.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; 0.0.0.0 in Spaces)")
    parser.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--device", default=None, help="torch device for the model (default cpu)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit of the model")
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument(
        "--lock-model",
        action="store_true",
        default=bool(os.environ.get("SPACE_ID")),
        help="hide the model box so visitors cannot load other models (default on in Spaces)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model and serve the page until interrupted; returns the exit status (2: model not loadable)."""
    args = parse_args(argv)
    if not logging.getLogger("hf_recsys").handlers:  # `hf-recsys app` has configured it already
        from .cli import configure_logging

        configure_logging()
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('the demo needs the demo extra: pip install -e ".[demo]"', file=sys.stderr)
        return 2
    notice = None
    model: DemoModel | None = None
    if args.model:
        try:
            model = load_demo_model(args.model, histories=args.histories, device=args.device, revision=args.revision)
        except ModelLoadError as error:
            if not os.environ.get("SPACE_ID"):
                print(f"error: {error}", file=sys.stderr)
                return 2
            notice = f"⚠️ {error}"  # in a Space, say it on the page rather than crash the container
    else:
        notice = f"No model configured: set the `{MODEL_ENV}` variable (a Hub repo id) or pass `--model`."
        if not args.lock_model:
            notice += " You can also load one below."
    if model is not None:
        model.prefetch_histories()
    demo = build_demo(model, histories=args.histories, lock_model=args.lock_model, notice=notice)
    launch(demo, host=args.host, port=args.port, share=args.share)
    return 0
