"""Request filters -> a mask over the item tokens, applied to the scores before the top-k.

`filters` is a dict with, per key:

* an item feature field's name (`"genres"`, `"decade"`, `"attributes"`, ... whatever the run's `item_fields.json`
  has). Categorical and multi fields take a value or a list of values: an item passes when it has ANY of them
  (exact values, else case-insensitive). Numeric fields take `{"min": x, "max": y}` (either may be left out,
  both inclusive) or a list of bucket labels. The model only knows each item's bucket, not its number, so a range
  keeps every item whose bucket OVERLAPS [min, max]: with edges 3 and 5 (buckets "< 3.0", "[3.0, 5.0)",
  ">= 5.0"), `{"min": 4}` keeps the items of "[3.0, 5.0)" and ">= 5.0", including those at 3.5. Items whose value
  is missing never pass a filter on that field.
* `"include_item_ids"`: keep only these items; `"exclude_item_ids"`: drop these (ids of the catalogue's type;
  unknown ids are ignored).

An unknown key or value raises `UnknownFilterError` (listing what exists), a malformed value
`InvalidRequestError`, filters that leave no item `EmptyCatalogueError`. Part of the modeling bundle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import EmptyCatalogueError, InvalidRequestError, UnknownFilterError
from .fields import Field, scalar_text

__all__ = ["ID_FILTERS", "ItemFilters"]

ID_FILTERS = ("include_item_ids", "exclude_item_ids")
_CACHE_BYTES = 64 << 20  # the cached masks (one bool per token each) stay under this


def _freeze(value: Any) -> Any:
    """A hashable form of a filters value (for the mask cache); TypeError when there is none."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        items = [_freeze(v) for v in (sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value)]
        return (type(value).__name__, tuple(items))
    hash(value)
    return (type(value).__name__, value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidRequestError(f"{where} must be a number, got {type(value).__name__} {value!r}")
    if math.isnan(value):
        raise InvalidRequestError(f"{where} must be a number, got NaN")
    return float(value)


class ItemFilters:
    """Builds (and caches) the allowed-token mask of a `filters` dict for one catalogue.

    Args:
        fields: the run's item feature fields (`fields.fields_of`), their columns in `values`.
        values: (V, width) int matrix of every token's value indices (the model's `item_feature_values`).
        token_of: item id -> token; `id_key` maps a request's id to a key of `token_of` (None: cannot be an id).
        id_type: "int" or "str", for messages.
    """

    def __init__(
        self,
        fields: Sequence[Field],
        values: np.ndarray | None,
        token_of: Mapping[Any, int],
        id_key: Callable[[Any], Any],
        id_type: str,
    ) -> None:
        self.fields = {f.name: f for f in fields}
        self.values = values
        self.token_of = token_of
        self.id_key = id_key
        self.id_type = id_type
        self.num_tokens = len(token_of) + 1
        self._cache: dict[Any, np.ndarray | None] = {}
        self._max_cache = max(16, min(4096, _CACHE_BYTES // self.num_tokens))

    @property
    def keys(self) -> list[str]:
        """Every filter key this catalogue accepts."""
        return [*self.fields, *ID_FILTERS]

    def columns(self, field: Field) -> np.ndarray:
        assert self.values is not None
        return self.values[:, field.start : field.start + field.width]

    def mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        """The (V,) allowed-token mask of `filters` (None: everything allowed); validated and cached."""
        if filters is None:
            return None
        if not isinstance(filters, Mapping):
            raise InvalidRequestError(f"filters must be a dict, got {type(filters).__name__} {filters!r}")
        try:
            cache_key: Any = _freeze(filters)
        except TypeError:  # unhashable values: validate (and fail) below
            cache_key = None
        if cache_key is not None and cache_key in self._cache:
            return self._cache[cache_key]
        allowed = np.ones(self.num_tokens, dtype=bool)
        for name, spec in filters.items():
            if name in ID_FILTERS:
                tokens = self._tokens(name, spec)
                if name == "exclude_item_ids":
                    allowed[list(tokens)] = False
                else:
                    keep = np.zeros_like(allowed)
                    keep[list(tokens)] = True
                    allowed &= keep
                continue
            field = self.fields.get(name) if isinstance(name, str) else None
            if field is None:
                raise UnknownFilterError(str(name), self.keys)
            allowed &= self._field_mask(field, spec)
        allowed[0] = False
        if not allowed.any():
            raise EmptyCatalogueError(dict(filters))
        result = None if allowed[1:].all() else allowed
        if cache_key is not None:
            if len(self._cache) >= self._max_cache:
                self._cache.clear()
            self._cache[cache_key] = result
        return result

    def _tokens(self, name: str, ids: Any) -> tuple[int, ...]:
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        if not isinstance(ids, (list, tuple, set, frozenset)):
            raise InvalidRequestError(f"filters[{name!r}] must be a list of {self.id_type} item ids, got {ids!r}")
        keys = [self.id_key(m) for m in ids]
        bad = [m for m, key in zip(ids, keys) if key is None]
        if bad:
            raise InvalidRequestError(f"filters[{name!r}] must hold {self.id_type} item ids, got {bad[0]!r}")
        return tuple(t for t in (self.token_of.get(key) for key in keys) if t is not None)

    def _field_mask(self, field: Field, spec: Any) -> np.ndarray:
        where = f"filters[{field.name!r}]"
        columns = self.columns(field)
        if isinstance(spec, Mapping):
            if field.kind != "numeric":
                raise InvalidRequestError(f"{where}: a {{'min', 'max'}} range needs a numeric field; give values")
            return self._range_mask(field, spec, columns)
        values = [spec] if isinstance(spec, (str, int, float, np.integer, np.floating)) else spec
        if isinstance(values, np.ndarray):
            values = values.tolist()
        if isinstance(spec, (bool, np.bool_)) or not isinstance(values, (list, tuple, set, frozenset)) or not values:
            what = "{'min': x, 'max': y} or a list of bucket labels" if field.kind == "numeric" else "a list of values"
            raise InvalidRequestError(f"{where} must be {what}, got {spec!r}")
        wanted: list[int] = []
        for value in values:
            try:
                text = scalar_text(value)
            except InvalidRequestError as error:
                raise InvalidRequestError(f"{where}: {error}") from None
            if text is None:
                raise InvalidRequestError(f"{where}: {value!r} is not a value")
            index = field.index.get(text)
            if index is None:
                folded = field.folded.get(text.casefold(), [])
                index = folded[0] if len(folded) == 1 else None
            if index is None:
                raise UnknownFilterError(field.name, field.values, value=value)
            wanted.append(index)
        return np.isin(columns, wanted).any(axis=1)

    def _range_mask(self, field: Field, spec: Mapping[str, Any], columns: np.ndarray) -> np.ndarray:
        where = f"filters[{field.name!r}]"
        extra = sorted(map(str, set(spec) - {"min", "max"}))
        if extra or not spec:
            raise InvalidRequestError(f"{where}: a range has the keys 'min' and/or 'max', got {dict(spec)!r}")
        low = _number(spec["min"], f"{where}['min']") if spec.get("min") is not None else -math.inf
        high = _number(spec["max"], f"{where}['max']") if spec.get("max") is not None else math.inf
        if low > high:
            raise InvalidRequestError(f"{where}: min {low} is above max {high}")
        wanted = []
        for index in range(1, len(field.values) + 1):
            bucket_low, bucket_high = field.bounds(index)
            if bucket_low <= high and bucket_high > low:  # the bucket overlaps [low, high]
                wanted.append(index)
        return np.isin(columns, wanted).any(axis=1)
