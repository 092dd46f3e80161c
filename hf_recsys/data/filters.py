"""Filters on an :class:`~hf_recsys.data.sources.InteractionLog`, each reported (issue 21).

Every filter returns ``(new_log, FilterStep)``: the step records the filter's name and parameters and the rows,
users and items before and after, so a prepared dataset can say exactly how it was cut down.
:func:`apply_filters` runs a declared sequence (from a dataset spec file, say) and collects the steps in a
:class:`FilterReport`, which serialises to JSON for a dataset's info::

    log, report = apply_filters(log, [
        {"name": "min_rating", "column": "rating", "threshold": 4},
        {"k_core": {"user_k": 5, "item_k": 5}},
        {"name": "min_history", "n": 3},
    ])
    info["filters"] = report.to_dict()

A filter that leaves no rows raises :class:`EmptyFilterResultError`, naming the filter and how many rows it
removed, instead of handing an empty log to the builder. :func:`min_history` drops nothing: it marks the users too
short to evaluate (``log.train_only_users``) so a builder keeps them in training only, as SASRec does.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .sources import ITEM, USER, InteractionDataError, InteractionLog, _digest, chronological

__all__ = [
    "FILTERS",
    "EmptyFilterResultError",
    "FilterReport",
    "FilterStep",
    "apply_filters",
    "drop_consecutive_duplicates",
    "k_core",
    "keep_events",
    "min_history",
    "min_rating",
]


class EmptyFilterResultError(InteractionDataError):
    """A filter removed every row (or, for :func:`min_history`, left no user to evaluate)."""


@dataclass(frozen=True)
class FilterStep:
    """One filter's entry in a :class:`FilterReport`: what ran, and the log's size before and after."""

    name: str
    params: dict[str, Any]
    rows_before: int
    rows_after: int
    users_before: int
    users_after: int
    items_before: int
    items_after: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_removed(self) -> int:
        return self.rows_before - self.rows_after

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=_plain))

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return (
            f"{self.name}({args}): rows {self.rows_before:,} -> {self.rows_after:,}, users {self.users_before:,} -> "
            f"{self.users_after:,}, items {self.items_before:,} -> {self.items_after:,}"
        )


@dataclass
class FilterReport:
    """The steps of :func:`apply_filters`, in order; ``to_dict``/``to_json`` for a dataset's info, and back."""

    steps: list[FilterStep] = field(default_factory=list)

    def append(self, step: FilterStep) -> None:
        self.steps.append(step)

    def to_dict(self) -> dict[str, Any]:
        return {"filters": [s.to_dict() for s in self.steps]}

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilterReport:
        return cls([FilterStep(**s) for s in data["filters"]])

    @classmethod
    def from_json(cls, text: str) -> FilterReport:
        return cls.from_dict(json.loads(text))

    def __str__(self) -> str:
        return "\n".join(str(s) for s in self.steps) or "no filters"


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and other non-JSON values in parameters."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _finish(
    name: str, params: dict[str, Any], before: InteractionLog, table: pa.Table, details: dict | None = None
) -> tuple[InteractionLog, FilterStep]:
    """The filtered log (fingerprint extended, train-only users pruned) and its report entry; refuses emptiness."""
    if table.num_rows == 0:
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise EmptyFilterResultError(
            f"filter {name}({args}) removed all {before.num_rows:,} rows: nothing is left",
            source=before.source,
            expected="a filter that keeps some interactions",
        )
    train_only = before.train_only_users
    if train_only is not None and table.num_rows != before.num_rows:
        train_only = train_only.filter(pc.is_in(train_only, value_set=table[USER].unique()))
    after = before.replace(
        table=table,
        train_only_users=train_only,
        fingerprint=_digest([before.fingerprint, name, json.dumps(params, sort_keys=True, default=_plain)]),
    )
    step = FilterStep(
        name,
        params,
        before.num_rows,
        after.num_rows,
        before.num_users(),
        after.num_users(),
        before.num_items(),
        after.num_items(),
        details or {},
    )
    return after, step


def _column(log: InteractionLog, column: str, filter_name: str) -> pa.ChunkedArray:
    if column not in log.kept_columns:
        raise InteractionDataError(
            f"{filter_name} needs a column the log does not have; the log keeps {list(log.kept_columns)}",
            source=log.source,
            column=column,
            expected=f"read_interactions(..., keep_columns=[{column!r}])",
        )
    return log.table[column]


def min_rating(log: InteractionLog, column: str, threshold: float) -> tuple[InteractionLog, FilterStep]:
    """Keep rows whose ``column`` (a numeric kept column, e.g. ``rating``) is at least ``threshold``.

    Rows with a null rating are dropped too (they do not meet the threshold); ``details`` counts them.
    """
    values = _column(log, column, "min_rating")
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise InteractionDataError(
            f"min_rating needs numbers, this column holds {values.type}", source=log.source, column=column
        )
    keep = pc.fill_null(pc.greater_equal(values, threshold), False)
    details = {"null_rows_dropped": values.null_count}
    return _finish("min_rating", {"column": column, "threshold": threshold}, log, log.table.filter(keep), details)


def keep_events(log: InteractionLog, column: str, values: Iterable[Any]) -> tuple[InteractionLog, FilterStep]:
    """Keep rows whose ``column`` holds one of ``values``: an event-type filter, e.g. purchases only."""
    wanted = [values] if isinstance(values, str | bytes) else list(values)
    data = _column(log, column, "keep_events")
    kind = data.type.value_type if pa.types.is_dictionary(data.type) else data.type
    try:
        value_set = pa.array(wanted, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise InteractionDataError(
            f"keep_events values {wanted!r} do not match the column's type {kind}", source=log.source, column=column
        ) from e
    keep = pc.is_in(data, value_set=value_set)
    return _finish("keep_events", {"column": column, "values": wanted}, log, log.table.filter(keep))


def drop_consecutive_duplicates(log: InteractionLog) -> tuple[InteractionLog, FilterStep]:
    """Drop a row when the same user's previous row (after :func:`chronological`) has the same item.

    Repeated clicks on one item carry no next-item signal; non-adjacent repeats (A, B, A) are kept. The result is
    in chronological order.
    """
    log = chronological(log)
    users, items = log.table[USER].combine_chunks(), log.table[ITEM].combine_chunks()
    n = len(users)
    same = pc.and_(pc.equal(users[1:], users[: n - 1]), pc.equal(items[1:], items[: n - 1]))
    keep = np.concatenate([[True], ~same.to_numpy(zero_copy_only=False)])
    return _finish("drop_consecutive_duplicates", {}, log, log.table.filter(pa.array(keep)))


def _codes(values: pa.ChunkedArray) -> np.ndarray:
    """Dense int32 codes of an id column (order of first appearance)."""
    return pc.dictionary_encode(values.combine_chunks()).indices.to_numpy()


def k_core(log: InteractionLog, user_k: int, item_k: int) -> tuple[InteractionLog, FilterStep]:
    """Keep the largest sub-log where every user has at least ``user_k`` rows and every item ``item_k`` rows.

    Dropping rare items can make users rare and vice versa, so it repeats until nothing changes (``details``
    counts the rounds). Vectorised: ``np.bincount`` over integer codes, on arrays that shrink each round.
    """
    for name, k in (("user_k", user_k), ("item_k", item_k)):
        if not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k_core: {name}={k!r}, expected an integer >= 1")
    users, items = _codes(log.table[USER]), _codes(log.table[ITEM])
    rows = np.arange(log.num_rows)
    rounds = 0
    while True:
        keep = (np.bincount(users)[users] >= user_k) & (np.bincount(items)[items] >= item_k)
        if keep.all():
            break
        users, items, rows, rounds = users[keep], items[keep], rows[keep], rounds + 1
        if rows.size == 0:
            break
    params = {"user_k": int(user_k), "item_k": int(item_k)}
    return _finish("k_core", params, log, log.table.take(pa.array(rows)), {"rounds": rounds})


def min_history(log: InteractionLog, n: int) -> tuple[InteractionLog, FilterStep]:
    """Mark users with fewer than ``n`` interactions as train-only (``log.train_only_users``); drop nothing.

    A user needs enough history to hold out validation and test targets (leave-one-out needs 3); shorter users
    still teach the model, so SASRec keeps them in training. ``details`` counts them. The mark reflects the log at
    this point: run it after the filters that drop rows (:func:`apply_filters` insists on it).
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"min_history: n={n!r}, expected an integer >= 1")
    counts = pc.value_counts(log.table[USER])
    short = counts.field("values").filter(pc.less(counts.field("counts"), n))
    if len(short) == len(counts):
        raise EmptyFilterResultError(
            f"filter min_history(n={n}): all {len(counts):,} users have fewer than {n} interactions, none is left "
            "to evaluate",
            source=log.source,
            expected=f"some users with at least {n} interactions",
        )
    details = {"train_only_users": len(short)}
    return _finish("min_history", {"n": int(n)}, log.replace(train_only_users=short), log.table, details)


FILTERS: dict[str, Callable[..., tuple[InteractionLog, FilterStep]]] = {
    "min_rating": min_rating,
    "keep_events": keep_events,
    "drop_consecutive_duplicates": drop_consecutive_duplicates,
    "k_core": k_core,
    "min_history": min_history,
}
"""The filters :func:`apply_filters` knows, by name."""


def _parse_spec(spec: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Validate every entry before any filter runs: a typo fails fast, not after an hour of k-core."""
    if isinstance(spec, str | bytes | Mapping):
        raise TypeError("apply_filters: spec must be a list of filter entries")
    steps = []
    for i, entry in enumerate(spec):
        if isinstance(entry, str):
            name, params = entry, {}
        elif isinstance(entry, Mapping) and "name" in entry:
            name, params = entry["name"], {k: v for k, v in entry.items() if k != "name"}
        elif isinstance(entry, Mapping) and len(entry) == 1:
            ((name, params),) = entry.items()
            params = dict(params or {})
        elif isinstance(entry, Sequence) and len(entry) == 2 and isinstance(entry[0], str):
            name, params = entry[0], dict(entry[1])
        else:
            raise ValueError(f"filter entry {i} {entry!r}: expected {{'name': ..., **params}} or {{name: params}}")
        if name not in FILTERS:
            raise ValueError(f"filter entry {i}: unknown filter {name!r}; the filters are {sorted(FILTERS)}")
        wanted = list(inspect.signature(FILTERS[name]).parameters)[1:]
        unknown = sorted(set(params) - set(wanted))
        missing = [p for p in wanted if p not in params and inspect.signature(FILTERS[name]).parameters[p].default
                   is inspect.Parameter.empty]  # fmt: skip
        if unknown or missing:
            problem = f"unknown parameter(s) {unknown}" if unknown else f"missing parameter(s) {missing}"
            raise ValueError(f"filter entry {i} ({name}): {problem}; its parameters are {wanted}")
        steps.append((name, params))
    names = [name for name, _ in steps]
    if "min_history" in names and names.index("min_history") != len(names) - 1:
        raise ValueError("min_history must be the last filter: later filters would change the history lengths")
    return steps


def apply_filters(log: InteractionLog, spec: Sequence[Any]) -> tuple[InteractionLog, FilterReport]:
    """Run a declared sequence of filters, in order, and report each.

    An entry is ``{"name": "k_core", "user_k": 5, "item_k": 5}``, ``{"k_core": {"user_k": 5, "item_k": 5}}``,
    ``("k_core", {...})``, or a bare name for a filter without parameters (``"drop_consecutive_duplicates"``): the
    shapes a JSON or YAML dataset spec gives. Names and parameters are all checked before the first filter runs.
    """
    report = FilterReport()
    for name, params in _parse_spec(spec):
        log, step = FILTERS[name](log, **params)
        report.append(step)
    return log, report
