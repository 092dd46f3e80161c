"""Loading a model for the demo: the run folder or Hub repo, its users' histories, and the process-wide
registry that sessions share (plain Python: unit-tested without gradio)."""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..run_layout import HISTORIES_FILE, RESULTS_FILE

if TYPE_CHECKING:  # imported lazily at run time: see the package docstring
    import datasets

    from ..modeling.recommender import Recommender
    from ..modeling.vocab import ItemVocab

logger = logging.getLogger(__name__)

MAX_K = 50
MAX_USER_CHOICES = 5000  # larger user vocabularies: the first ids are listed, any id can be typed
MAX_LOADED_MODELS = 3

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
    from ..data import load_movielens

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
    parts.append(
        f"{count_label(recommender.num_items, item_noun(results))}, {recommender.user_vocab.num_users:,} users"
    )
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
    from ..inference import Recommender

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


def register_model(model: DemoModel, pinned: bool = False) -> str:
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


def load_for_session(source: str, histories: HistoriesArg) -> tuple[str, DemoModel]:
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
    key = register_model(model)
    with _MODELS_LOCK:
        _BY_REQUEST[request] = key
    return key, model


def lookup_model(key: str | None) -> DemoModel | None:
    """The registered model of a session's key, None when there is none (or it was evicted)."""
    if not key:
        return None
    with _MODELS_LOCK:
        return _MODELS.get(key)


def count_label(count: int, noun: str = "movie") -> str:
    """'1 movie', '2,345 movies' (or items)."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
