"""Validating and encoding one request (ids, titles, user, user features, filters) into what scoring needs.

`RequestParser` is the half of `Recommender` that never calls the model; its attributes are set by
`Recommender.__init__` (see recommender.py for the behaviour, errors.py for the errors). Part of the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import InvalidRequestError, UnknownItemError
from .vocab import UserVocab

if TYPE_CHECKING:
    from .fields import Field
    from .item_filters import ItemFilters
    from .titles import TitleIndex

__all__ = ["ON_UNKNOWN", "Recommendations", "RequestParser"]

ON_UNKNOWN = ("skip", "error")


class Recommendations(list):
    """The ranked recommendations of one request: a plain list of dicts, best first, with request metadata.

    Each item is `{"item_id", "score", "rank"}` plus `"title"` and the item feature fields (module docstring).
    Attributes: `strategy` (`"model"`, `"popularity"` or `"similar"`), `user_id`, `known_user` (the id is in the
    user vocabulary), `skipped_item_ids` (unknown ids dropped from the history), `resolved_titles` (each title of
    the history -> the item id it matched), `truncated` (oldest history items not read by the model).
    """

    strategy: str = "model"
    user_id: int | str | None = None
    known_user: bool = False
    skipped_item_ids: list[int | str]
    resolved_titles: dict[str, int | str]
    truncated: int = 0

    def __init__(self, items: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(items)
        self.skipped_item_ids = []
        self.resolved_titles = {}


@dataclass
class _Request:
    """A validated, encoded request: what the scoring step needs (tokens, user, masks)."""

    model_tokens: list[int]  # most recent history tokens the model reads (<= max_position_embeddings)
    seen_tokens: list[int]  # every token of the history (excluded when exclude_seen)
    user_index: int
    user_features: list[int] | None  # the user's feature values with the request's own, None = stored ones
    use_model: bool
    k: int
    exclude_seen: bool
    allowed: np.ndarray | None  # (V,) bool mask from the filters, None = everything allowed
    result: Recommendations = field(default_factory=Recommendations)


class RequestParser:
    """Request validation and encoding for `Recommender` (a mixin: the tables come from its `__init__`)."""

    num_items: int
    max_length: int
    config: Any
    user_vocab: UserVocab
    titles: TitleIndex
    filters: ItemFilters
    user_fields: list[Field]
    _str_ids: bool
    _str_users: bool
    _token_of: dict[int | str, int]
    _item_ids: list[int | str | None]
    _user_values: np.ndarray | None

    def _id_key(self, item_id: Any) -> int | str | None:
        """`item_id` as a key of `_token_of`, None when it cannot be an item id of this vocabulary's type."""
        if self._str_ids:
            return item_id if isinstance(item_id, str) else None
        if isinstance(item_id, (int, np.integer)) and not isinstance(item_id, (bool, np.bool_)):
            return int(item_id)
        return None

    def _check_k(self, k: Any) -> int:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise InvalidRequestError(f"k must be an int, got {type(k).__name__} {k!r}")
        if k < 1:
            raise InvalidRequestError(f"k must be a positive integer, got {k}")
        if k > self.num_items:
            raise InvalidRequestError(f"k={k} is larger than the catalogue ({self.num_items} items)")
        return int(k)

    def _check_user(self, user_id: Any) -> None:
        if user_id is None:
            return
        if self._str_users and not isinstance(user_id, str):
            raise InvalidRequestError(
                f"user_id must be a str (this model's user ids are strings) or None, "
                f"got {type(user_id).__name__} {user_id!r}"
            )
        if not self._str_users and (
            isinstance(user_id, (bool, np.bool_)) or not isinstance(user_id, (int, np.integer))
        ):
            raise InvalidRequestError(f"user_id must be an int or None, got {type(user_id).__name__} {user_id!r}")

    def _user_row(self, user_index: int, user_features: Any) -> list[int] | None:
        """The user's feature values with the request's raw `user_features` encoded over them (None: none given)."""
        if user_features is None:
            return None
        if not isinstance(user_features, Mapping):
            raise InvalidRequestError(f"user_features must be a dict of field -> value, got {user_features!r}")
        if self._user_values is None:
            raise InvalidRequestError(
                "this model reads no user features (no user feature fields, or user_conditioning='none'): "
                "user_features cannot be used"
            )
        if not self.user_fields:
            raise InvalidRequestError("this run has no user_fields.json to encode user_features with")
        by_name = {f.name: f for f in self.user_fields}
        unknown = [name for name in user_features if name not in by_name]
        if unknown:
            raise InvalidRequestError(f"unknown user feature fields {unknown}; this model's are {list(by_name)}")
        row = self._user_values[user_index].tolist()
        for name, raw in user_features.items():
            f = by_name[name]
            row[f.start : f.start + f.width] = f.encode(raw)
        return row

    def _history(self, history: Any) -> list[Any]:
        if history is None:
            return []
        if isinstance(history, np.ndarray):
            if history.ndim != 1:
                raise InvalidRequestError(f"history must be 1-D, got an array of shape {history.shape}")
            return history.tolist()
        if isinstance(history, torch.Tensor):
            if history.dim() != 1 or history.is_floating_point():
                raise InvalidRequestError(f"history must be a 1-D integer tensor, got shape {tuple(history.shape)}")
            return history.tolist()
        if not isinstance(history, (list, tuple)):
            hint = " (wrap a single title or id in a list)" if isinstance(history, (str, int)) else ""
            raise InvalidRequestError(
                f"history must be a list of item ids or titles (str), got {type(history).__name__}{hint}"
            )
        return list(history)

    def _prepare(
        self,
        user_id: Any = None,
        history: Any = None,
        k: Any = 10,
        exclude_seen: Any = None,
        filters: Mapping[str, Any] | None = None,
        on_unknown: Any = "skip",
        user_features: Mapping[str, Any] | None = None,
    ) -> _Request:
        """Validate one request and map it to tokens (no model call); raises the errors of errors.py."""
        k = self._check_k(k)
        if not isinstance(on_unknown, str) or on_unknown not in ON_UNKNOWN:
            raise InvalidRequestError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
        if exclude_seen is None:  # the data's setting, stored at training
            exclude_seen = self.config.exclude_seen
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise InvalidRequestError(f"exclude_seen must be a bool, got {type(exclude_seen).__name__}")
        self._check_user(user_id)
        history = self._history(history)
        result = Recommendations()
        tokens: list[int] = []
        unknown: list[int | str] = []
        token_of = self._token_of
        if all(type(item) is int for item in history):  # fast path: plain int ids (no bools, no titles)
            looked_up = [token_of.get(item) for item in history]
            if None in looked_up:
                unknown = [m for m, t in zip(history, looked_up) if t is None]
            tokens, history = [t for t in looked_up if t is not None], []
        for position, item in enumerate(history):
            if isinstance(item, str):
                if self._str_ids:  # a known item id first, a title otherwise
                    found = token_of.get(item)
                    if found is not None:
                        tokens.append(found)
                        continue
                    if not self.titles.has_titles:  # nothing to match a title against: an unknown item id
                        unknown.append(item)
                        continue
                token = self.titles.resolve(item)[0]
                result.resolved_titles[item] = self._item_ids[token]  # type: ignore[assignment]
            elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
                found = token_of.get(int(item))
                if found is None:
                    unknown.append(int(item))
                    continue
                token = found
            else:
                raise InvalidRequestError(
                    f"history[{position}] must be an item id or a title (str), got {type(item).__name__} {item!r}"
                )
            tokens.append(token)
        if unknown:
            if on_unknown == "error":
                raise UnknownItemError(unknown, self.num_items)
            result.skipped_item_ids = unknown

        user_index = self.user_vocab.encode(user_id) if user_id is not None else UserVocab.UNKNOWN_INDEX
        known_user = user_index != UserVocab.UNKNOWN_INDEX
        if self.config.user_conditioning == "none":
            user_index = UserVocab.UNKNOWN_INDEX
        features = self._user_row(user_index, user_features)
        prepend = self.config.user_conditioning == "prepend"
        use_model = bool(tokens) or (prepend and (known_user or features is not None))
        model_tokens = tokens[-self.max_length :] if tokens else []
        allowed = self.filters.mask(filters)
        result.strategy = "model" if use_model else "popularity"
        result.user_id = None if user_id is None else str(user_id) if self._str_users else int(user_id)
        result.known_user = known_user
        result.truncated = len(tokens) - len(model_tokens)
        return _Request(
            model_tokens=model_tokens,
            seen_tokens=tokens,
            user_index=user_index,
            user_features=features,
            use_model=use_model,
            k=k,
            exclude_seen=bool(exclude_seen),
            allowed=allowed,
            result=result,
        )
