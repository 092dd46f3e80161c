"""Feature fields: :class:`FeatureField` (a field's vocabulary or numeric buckets, and the encoding of raw values
into embedding-bag indices, 0 = padding, missing or unknown), fitting a field on a column, and the JSON file of
fields saved beside a model (:func:`save_feature_fields`, :func:`load_feature_fields`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..modeling.fields import FIELDS_FORMAT, read_fields  # the file format is declared once, in the bundle
from .feature_errors import _Where
from .feature_values import _column, _multi, _numbers, _text
from .vocab import atomic_write_json

KINDS = ("categorical", "multi", "numeric")
DEFAULT_DELIMITER = "|"
MAX_BUCKETS = 16
_FORMAT = FIELDS_FORMAT


def _pad(parents: np.ndarray, codes: np.ndarray, n: int, width: int | None, exact: bool) -> tuple[np.ndarray, int]:
    """Each row's distinct non-zero codes, ordered by repeats then first occurrence, padded with 0: (matrix,
    rows cut). The width is ``width`` if ``exact``, else the longest row (at least 1) capped at ``width``."""
    keep = np.flatnonzero(codes > 0)
    size = int(codes.max(initial=0)) + 1
    uniq, first, counts = np.unique(parents[keep] * size + codes[keep], return_index=True, return_counts=True)
    order = np.lexsort((keep[first], -counts, uniq // size))
    rows, vals = uniq[order] // size, uniq[order] % size
    per_row = np.bincount(rows, minlength=n)
    longest = max(1, int(per_row.max(initial=0)))
    width = width if exact else longest if width is None else min(width, longest)
    rank = np.arange(rows.size) - (np.cumsum(per_row) - per_row)[rows]
    out = np.zeros((n, width), dtype=np.int32)
    out[rows[rank < width], rank[rank < width]] = vals[rank < width]
    return out, int(np.count_nonzero(per_row > width))


@dataclass
class FeatureField:
    """One field: how raw values become embedding-bag indices (0 = padding, missing or unknown).

    ``vocabulary`` maps a normalised value (numeric: a bucket label) to its index ``1..len`` in a fixed order
    (numbers ascending, then text); ``edges`` are a numeric field's cut points; ``max_values`` is the width of
    its matrix (1 unless multi); ``delimiter`` splits a multi field's strings; ``size`` is the embedding rows.
    """

    name: str
    kind: str
    vocabulary: dict[str, int]
    edges: list[float] | None = None
    max_values: int = 1
    delimiter: str | None = None
    _lookup: pa.Array | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if sorted(self.vocabulary.values()) != list(range(1, len(self.vocabulary) + 1)):
            raise ValueError(f"field {self.name!r}: vocabulary indices must be 1..{len(self.vocabulary)}")
        if self.kind == "numeric" and (self.edges is None or len(self.vocabulary) != len(self.edges) + 1):
            raise ValueError(f"field {self.name!r}: a numeric field needs len(edges) + 1 buckets")

    @property
    def size(self) -> int:
        """Embedding rows: the vocabulary plus index 0."""
        return len(self.vocabulary) + 1

    @property
    def values(self) -> list[str]:
        """The vocabulary in index order (``values[i - 1]`` has index ``i``)."""
        return sorted(self.vocabulary, key=self.vocabulary.__getitem__)

    def _encode(self, raw: Any, where: _Where, width: int | None, exact: bool, delimiter: str | None = None):
        arr = _column(raw, where, self.name)
        if self.kind == "numeric":
            x = _numbers(arr, where, self.name)
            idx = np.where(np.isnan(x), 0, 1 + np.searchsorted(np.asarray(self.edges), x, side="right"))
            return idx.astype(np.int32).reshape(-1, 1), 0
        if self._lookup is None:
            self._lookup = pa.array(self.values, pa.large_string())
        if self.kind == "categorical":
            parents, flat = np.arange(len(arr)), _text(arr, where, self.name, "one scalar value per row")
        else:
            parents, flat = _multi(arr, delimiter or self.delimiter or DEFAULT_DELIMITER, where, self.name)
        codes = pc.fill_null(pc.index_in(flat, value_set=self._lookup), -1).to_numpy(zero_copy_only=False) + 1
        return _pad(parents, codes.astype(np.int64), len(arr), width, exact)

    def encode_many(self, raw: Any) -> np.ndarray:
        """Raw values of many rows (a list, pandas Series or pyarrow array) -> int32 ``(len(raw), max_values)``.

        Why: encodes NEW items or users at serving or fine-tuning time with the vocabulary a model was
        trained with. Unseen or missing values give 0; a multi row keeps at most ``max_values`` values."""
        return self._encode(raw, _Where("raw values"), self.max_values, True)[0]

    def encode_values(self, raw: Any) -> list[int]:
        """One row's raw value (a scalar, a list or a delimited string) -> its indices, never empty: one index
        for a categorical or numeric field, the distinct known values of a multi field, ``[0]`` if none."""
        row = self.encode_many([raw])[0]
        return row[row != 0].tolist() or [0]

    def translate(self, matrix: np.ndarray, to: FeatureField) -> np.ndarray:
        """This field's encoded ``matrix`` re-encoded with field ``to`` (the same column fitted on other data,
        e.g. a pretrained model's): values by name, numeric buckets by their lower edge (the first by its upper
        edge; a field fitted on one value has no edges and gives 0). Values ``to`` does not know give 0; a multi row keeps at most ``to.max_values`` values."""
        if self.kind != to.kind:
            raise ValueError(f"field {self.name!r} is {self.kind} here but {to.kind} in the field to translate to")
        if self.kind == "numeric" and not self.edges:  # one bucket, "all": its value was not kept
            lut = np.zeros(2, dtype=np.int64)
        elif self.kind == "numeric":
            edges = np.asarray(self.edges, dtype=np.float64)
            points = np.concatenate([[np.nextafter(edges[0], -np.inf)], edges])
            lut = np.concatenate([[0], 1 + np.searchsorted(np.asarray(to.edges), points, side="right")])
        else:
            lut = np.asarray([0, *(to.vocabulary.get(v, 0) for v in self.values)], dtype=np.int64)
        codes = lut[np.asarray(matrix, dtype=np.int64)]
        parents = np.repeat(np.arange(codes.shape[0]), codes.shape[1])
        return _pad(parents, codes.ravel(), codes.shape[0], to.max_values, True)[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; :meth:`from_dict` restores an equal field."""
        return {"name": self.name, "kind": self.kind, "values": self.values, "edges": self.edges,
                "max_values": self.max_values, "delimiter": self.delimiter}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureField:
        """Inverse of :meth:`to_dict`."""
        vocab = {str(v): i for i, v in enumerate(data["values"], start=1)}
        edges = None if data.get("edges") is None else [float(e) for e in data["edges"]]
        return cls(data["name"], data["kind"], vocab, edges, int(data.get("max_values", 1)), data.get("delimiter"))


def _fit(name: str, kind: str, arr: pa.Array, delimiter: str, where: _Where, max_buckets: int) -> FeatureField:
    """A field whose vocabulary (or buckets, by the rule in :mod:`.features`) is fitted on ``arr``."""
    if kind == "numeric":
        x = np.sort(_numbers(arr, where, name))
        x = x[~np.isnan(x)]
        edges = np.unique(x)[1:]
        if edges.size >= max_buckets:
            edges = np.unique(np.quantile(x, np.arange(1, max_buckets) / max_buckets, method="inverted_cdf"))
            edges = edges[edges > x[0]]
        e = [repr(float(v)) for v in edges]
        labels = [f"< {e[0]}", *(f"[{a}, {b})" for a, b in itertools.pairwise(e)), f">= {e[-1]}"] if e else ["all"]
        return FeatureField(name, kind, {lab: i for i, lab in enumerate(labels, 1)}, edges.tolist())
    multi = kind == "multi"
    flat = _multi(arr, delimiter, where, name)[1] if multi else _text(arr, where, name, "one scalar value per row")
    uniq = pc.unique(flat.drop_null()).to_numpy(zero_copy_only=False).astype(object)
    num = pd.to_numeric(pd.Series(uniq, dtype=object), errors="coerce").to_numpy()  # numbers first, ascending
    uniq = uniq[np.lexsort((uniq.astype(str), np.nan_to_num(num, nan=0.0), np.isnan(num)))].tolist()
    return FeatureField(name, kind, {v: i for i, v in enumerate(uniq, 1)}, delimiter=delimiter if multi else None)


def save_feature_fields(
    path: str | os.PathLike[str], fields: Iterable[FeatureField] | Mapping[str, FeatureField]
) -> Path:
    """Write fields as JSON (atomically), e.g. ``item_fields.json`` beside a model, to encode new items later."""
    fields = fields.values() if isinstance(fields, Mapping) else fields
    atomic_write_json(path, {"format": _FORMAT, "version": 1, "fields": [f.to_dict() for f in fields]})
    return Path(path)


def load_feature_fields(path: str | os.PathLike[str]) -> list[FeatureField]:
    """Read the fields written by :func:`save_feature_fields` (a list, in the saved order; the file is parsed and
    checked by the model bundle's `read_fields`, which serving uses too)."""
    return [FeatureField.from_dict(d) for d in read_fields(path)]
