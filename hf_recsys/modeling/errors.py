"""The errors of inference, one class per kind of mistake (re-exported by `hf_recsys` and `hf_recsys.inference`).

Every class is a `ValueError`, so `except ValueError` catches any bad request; each message names the bad value.

* `InvalidRequestError` (also a `TypeError`): a malformed request: wrong types (a bare string as history, a
  float id, a non-bool `exclude_seen`), `k` out of range, unknown request keys or `on_unknown` values, bad
  `user_features` (unknown field, wrong type, a model without user feature fields).
* `UnknownItemError` (also a `KeyError`, as `ItemVocab.encode` has always raised it): item ids that are not in
  the catalogue; `item_ids` lists them (with `on_unknown="error"`, or asking for the title or the similar items of
  an unknown id).
* `TitleMatchError`: a title that matches no item, or several equally well (`candidates` lists close matches), or
  a title given to a model whose item vocabulary has no titles.
* `UnknownFilterError`: a filter on a field the run does not have, or a value the field does not know; the
  message lists the fields (or values) that exist.
* `EmptyCatalogueError`: the filters leave no item at all to recommend.

This file lives in the self-contained modeling bundle: standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "EmptyCatalogueError",
    "InvalidRequestError",
    "TitleMatchError",
    "UnknownFilterError",
    "UnknownItemError",
    "UnknownItemWarning",
]


def _shown(values: Sequence[Any], limit: int = 30) -> str:
    """`values` as a short list for a message: the first `limit`, then how many more."""
    values = list(values)
    more = f" ... and {len(values) - limit} more" if len(values) > limit else ""
    return f"{values[:limit]}{more}"


class InvalidRequestError(ValueError, TypeError):
    """A malformed request (types, `k`, request keys, `on_unknown`, user features); the message names the value."""


class UnknownItemError(KeyError, ValueError):
    """Item ids that are not in the catalogue; `item_ids` lists them, `item_id` is the first.

    A `KeyError` (what `ItemVocab.encode` raises) and a `ValueError` (what every request error is).
    """

    def __init__(self, item_ids: Any, num_items: int | None = None) -> None:
        self.item_ids: list[Any] = list(item_ids) if isinstance(item_ids, (list, tuple)) else [item_ids]
        self.item_id = self.item_ids[0] if self.item_ids else None
        detail = f" ({num_items} items)" if num_items is not None else ""
        if len(self.item_ids) == 1:
            message = f"item id {self.item_id!r} is not in the catalogue{detail}"
        else:
            message = f"item ids not in the catalogue{detail}: {_shown(self.item_ids)}"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0])


class UnknownItemWarning(UserWarning):
    """Unknown item ids were dropped from a history (`on_unknown="skip"`)."""


class TitleMatchError(ValueError):
    """A title that matches no item, or several equally well; `candidates` lists close (item id, title) pairs."""

    def __init__(
        self, query: str, candidates: list[tuple[Any, str]], ambiguous: bool, message: str | None = None
    ) -> None:
        self.query = query
        self.candidates = candidates
        self.ambiguous = ambiguous
        listed = "; ".join(f"{title!r} (item id {item_id!r})" for item_id, title in candidates)
        if message is None and ambiguous:
            message = f"title {query!r} is ambiguous: it matches {listed}. Pass the exact title or the item id instead."
        elif message is None and candidates:
            message = f"title {query!r} not found in the catalogue; close matches: {listed}"
        elif message is None:
            message = f"title {query!r} not found in the catalogue and no similar title exists"
        super().__init__(message)


class UnknownFilterError(ValueError):
    """A filter on a field the run does not have (`field` set, `value` None) or a value its field does not know."""

    def __init__(self, field: str, known: Sequence[Any], value: Any = None, what: str | None = None) -> None:
        self.field = field
        self.value = value
        self.known = list(known)
        if what is not None:
            message = what
        elif value is None:
            message = f"unknown filter {field!r}; this model filters on: {_shown(self.known)}"
        else:
            message = f"filter {field!r}: unknown value {value!r}; known values: {_shown(self.known)}"
        super().__init__(message)


class EmptyCatalogueError(ValueError):
    """The filters of a request leave no item at all; `filters` is what was asked."""

    def __init__(self, filters: Any) -> None:
        self.filters = filters
        super().__init__(f"no item of the catalogue passes the filters {filters!r}")
