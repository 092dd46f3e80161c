"""What the page shows, as plain Python (unit-tested without gradio): a picked user's history, the
recommendations beside the popularity baseline, and the genre mix of both."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: see the package docstring
    import pandas as pd
    from matplotlib.figure import Figure


from .models import DemoModel, count_label

SHOWN_HISTORY = 20  # most recent movies of a picked user put in the picker (older ones are kept aside)
DEFAULT_K = 10
MAX_GENRES_PLOTTED = 12
RECOMMENDATION_COLUMNS = ["#", "Title", "Genres", "Year", "Score", "Also popular"]
POPULAR_COLUMNS = ["#", "Title", "Genres", "Year", "Ratings"]


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


def parse_user(value: Any) -> int | None:
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
        return UserHistoryView([], [], "", warning=NO_MODEL_MESSAGE)
    try:
        user = parse_user(user_value)
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
    message = f"User {user}{profile} watched {count_label(len(history), model.noun)}"
    if older:
        message += (
            f"; the {len(recent)} most recent are in the picker, the {len(older):,} older ones are used too "
            f"(the model reads the last {model.recommender.max_length})"
        )
    return UserHistoryView(recent, older, message + ".")


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


def table_frame(rows: list[list[Any]], columns: list[str]) -> pd.DataFrame:
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
    return table_frame(rows, ["genre", "group", "share"])


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


NO_MODEL_MESSAGE = "No model is loaded: enter a run folder (e.g. runs/demo) or a Hub repo id and press Load."


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
    empty_recs = table_frame([], RECOMMENDATION_COLUMNS)
    empty_mix = table_frame([], ["genre", "group", "share"])
    if model is None:
        return RecommendView(
            NO_MODEL_MESSAGE, empty_recs, table_frame([], POPULAR_COLUMNS), empty_mix, warning=NO_MODEL_MESSAGE
        )
    rec = model.recommender
    picked = [int(m) for m in (movie_ids or [])]
    history = [m for m in (older or []) if m not in set(picked)] + picked
    k = max(1, min(int(k or DEFAULT_K), rec.num_items))
    try:
        filters = _filters(model, genres)
        user = parse_user(user_value)
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
                table_frame(popular_rows, POPULAR_COLUMNS),
                empty_mix,
                warning=_empty(model.noun),
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown ids are reported through skipped_item_ids below
            result = rec.recommend(user_id=user, history=history, k=k, filters=filters or None)
    except ValueError as error:  # every request error of the recommender (hf_recsys.modeling.errors)
        message = f"Could not compute recommendations: {error}"
        return RecommendView(message, empty_recs, table_frame([], POPULAR_COLUMNS), empty_mix, warning=message)

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
            message = f"Top {len(result)} for {who}, from a history of {count_label(len(history), noun)}"
            message += f" (model reads the last {rec.max_length})." if len(history) > rec.max_length else "."
        else:
            message = f"Top {len(result)} for {who}, from the user profile alone (no {noun}s picked)."
        overlap = sum(1 for item in result if item["item_id"] in popular_ids)
        message += f" {overlap} of them are also in the popularity top {k}."
    if len(result) < k:
        message += f" Only {count_label(len(result), noun)} left after excluding your history and applying the filters."
    if result.skipped_item_ids:
        message += f" Skipped {noun}s unknown to the model: {result.skipped_item_ids}."
    mix = genre_mix(model, {f"Your {noun}s": history, "Recommended": [item["item_id"] for item in result]})
    return RecommendView(
        message,
        table_frame(rows, RECOMMENDATION_COLUMNS),
        table_frame(popular_rows, POPULAR_COLUMNS),
        mix,
        strategy=result.strategy,
    )
