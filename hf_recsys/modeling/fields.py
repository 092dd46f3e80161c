"""The feature fields at serving time: item values by name (for results and filters) and the encoding of a
request's raw user features, read from the run folder's `item_fields.json` / `user_fields.json`.

Those files ("hf_recsys.FeatureFields", written by `hf_recsys.data.feature_fields`) list each field's `name`,
`kind` (categorical, multi or numeric), `values` (value index i + 1 is `values[i]`; 0 = missing or unknown; a
numeric field's values are its bucket labels such as "< 3.0", "[3.0, 5.0)", ">= 5.0"), `edges` (a numeric
field's cut points: bucket i + 1 holds `edges[i - 1] <= x < edges[i]`), `max_values` and `delimiter`. The model
stores each item's (user's) value indices per field side by side in its `item_feature_values`
(`user_feature_values`) buffer, in the order of `config.item_feature_fields` (`user_feature_fields`).

Part of the self-contained modeling bundle: numpy, json and the standard library only (this re-implements the
few lines of `FeatureField.encode_values` needed for one request, so the bundle works without hf_recsys).
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidRequestError

__all__ = ["FIELDS_FORMAT", "ITEM_FIELDS_FILE", "USER_FIELDS_FILE", "Field", "fields_of", "read_fields", "scalar_text"]

ITEM_FIELDS_FILE, USER_FIELDS_FILE = "item_fields.json", "user_fields.json"
FIELDS_FORMAT = "hf_recsys.FeatureFields"
KINDS = ("categorical", "multi", "numeric")


def read_fields(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The field dicts of a fields file (a `ValueError` naming the file when it is not one)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("format") != FIELDS_FORMAT or not isinstance(data.get("fields"), list):
        raise ValueError(f"{path}: not a {FIELDS_FORMAT} file")
    if data.get("version", 0) > 1:
        raise ValueError(f"{path}: {FIELDS_FORMAT} version {data['version']}, newer than this code reads (1)")
    return data["fields"]


def scalar_text(value: Any) -> str | None:
    """A raw scalar as the data pipeline normalises it: trimmed text, 3.0 -> "3", "" / NaN / None -> None.

    Raises `InvalidRequestError` for anything but str, int and float (bools and containers included)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, int, float, np.integer, np.floating)):
        raise InvalidRequestError(f"expected a str or a number, got {type(value).__name__} {value!r}")
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() and abs(value) < 2.0**53 else repr(float(value))
    text = str(value).strip()
    return text or None


@dataclass
class Field:
    """One feature field as served: where its columns sit in the values buffer, and its value labels."""

    name: str
    kind: str
    start: int  # first column in the buffer
    width: int  # max_values
    values: list[str]  # labels; index i + 1 = values[i]
    edges: list[float] | None = None
    delimiter: str | None = None

    def __post_init__(self) -> None:
        self.index = {v: i for i, v in enumerate(self.values, start=1)}
        self.folded: dict[str, list[int]] = {}
        for v, i in self.index.items():
            self.folded.setdefault(v.casefold(), []).append(i)

    def labels(self, row: np.ndarray) -> Any:
        """One row's value indices (this field's columns) -> the values: a list for a multi field, else one label
        (None when missing)."""
        names = [self.values[i - 1] for i in row.tolist() if 0 < i <= len(self.values)]
        return names if self.kind == "multi" else (names[0] if names else None)

    def bucket(self, number: float) -> int:
        """The bucket index of a number (numeric fields): 1 + how many edges are <= it."""
        return 1 + bisect.bisect_right(self.edges or [], number)

    def bounds(self, index: int) -> tuple[float, float]:
        """[low, high) of bucket `index` (1-based) of a numeric field; infinite at both ends."""
        edges = self.edges or []
        low = edges[index - 2] if index >= 2 else -math.inf
        high = edges[index - 1] if index - 1 < len(edges) else math.inf
        return low, high

    def encode(self, raw: Any) -> list[int]:
        """A request's raw value -> this field's `width` value indices (0 = missing or unknown; padded).

        Categorical: one str or number; multi: a list of them or a `delimiter`-separated string; numeric: a number
        (or a numeric string), bucketed by `edges`. A value of the wrong type raises `InvalidRequestError`."""
        where = f"user_features[{self.name!r}]"
        if self.kind == "numeric":
            if raw is None:
                return [0] * self.width
            number = raw
            if isinstance(raw, str):
                try:
                    number = float(raw)
                except ValueError:
                    raise InvalidRequestError(f"{where} must be a number, got {raw!r}") from None
            elif isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, float, np.integer, np.floating)):
                raise InvalidRequestError(f"{where} must be a number, got {type(raw).__name__} {raw!r}")
            codes = [0 if math.isnan(float(number)) else self.bucket(float(number))]
        elif self.kind == "multi":
            if isinstance(raw, str):
                raw = raw.split(self.delimiter or "|")
            elif raw is None:
                raw = []
            elif not isinstance(raw, (list, tuple)):
                raise InvalidRequestError(
                    f"{where} must be a list of values or a {self.delimiter or '|'!r}-delimited string, got {raw!r}"
                )
            codes = []
            for value in raw:
                try:
                    code = self.index.get(scalar_text(value) or "", 0)
                except InvalidRequestError as error:
                    raise InvalidRequestError(f"{where}: {error}") from None
                if code and code not in codes:
                    codes.append(code)
        else:
            try:
                codes = [self.index.get(scalar_text(raw) or "", 0)]
            except InvalidRequestError as error:
                raise InvalidRequestError(f"{where}: {error}") from None
        codes = codes[: self.width]
        return codes + [0] * (self.width - len(codes))


def fields_of(
    config_fields: Sequence[Mapping[str, Any]] | None, saved: Sequence[Mapping[str, Any]] | None
) -> list[Field]:
    """The model's fields (`config.item_feature_fields` / `user_feature_fields`: name, size, max_values, in buffer
    order) labelled with the saved field dicts of the same names; [] when either is missing."""
    if not config_fields or not saved:
        return []
    by_name = {f.get("name"): f for f in saved if isinstance(f, Mapping)}
    out, start = [], 0
    for spec in config_fields:
        width = int(spec["max_values"])
        info = by_name.get(spec["name"])
        if info is not None and info.get("kind") in KINDS:
            edges = info.get("edges")
            out.append(
                Field(
                    name=str(spec["name"]),
                    kind=str(info["kind"]),
                    start=start,
                    width=width,
                    values=[str(v) for v in info.get("values") or []],
                    edges=None if edges is None else [float(e) for e in edges],
                    delimiter=info.get("delimiter"),
                )
            )
        start += width
    return out
