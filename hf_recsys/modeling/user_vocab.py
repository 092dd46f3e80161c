"""The user vocabulary: user id <-> user index (0 = the unknown user), with optional categorical side
features. The layout and the id rules are described in `vocab.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .vocab_ids import (
    _as_id_array,
    _id_type_of,
    _IdVocabulary,
    _new_ids,
    _ordered_ids,
    _pick,
    _py,
    _query_array,
    _stored_id_type,
    _version_of,
)


class UserVocab(_IdVocabulary):
    """User id <-> user index mapping (index 0 = unknown user) with optional categorical side features.

    Args:
        user_ids: original user ids, all ints or all strings; indices are assigned in ascending id order, or in
            the given order when ``keep_order`` is set.
        gender, age, occupation: optional per-user raw values (strings, ``None`` = unknown) aligned
            with ``user_ids``. Each feature that is given becomes a categorical feature whose
            category ids are ``1..k`` in sorted order of the distinct values (0 = unknown).
        keep_order: keep the order of ``user_ids`` (used by :meth:`extend` and :meth:`from_dict`).
        categories: per feature, the category values in category-id order (default: sorted distinct
            values). A grown vocabulary passes its old categories first so their ids do not move.
        id_type: ``"int"`` or ``"str"``: the type the ids must have (default: that of the ids; int when empty).
    """

    UNKNOWN_INDEX = 0
    FILE_FORMAT = "hf_recsys.UserVocab"
    FEATURE_NAMES = ("gender", "age", "occupation")

    def __init__(
        self,
        user_ids: Sequence[int] | Sequence[str] | np.ndarray,
        gender: Sequence[str | None] | None = None,
        age: Sequence[str | None] | None = None,
        occupation: Sequence[str | None] | None = None,
        *,
        keep_order: bool = False,
        categories: dict[str, Sequence[str]] | None = None,
        id_type: str | None = None,
    ) -> None:
        ids, order = _ordered_ids(user_ids, "user", keep_order, id_type)
        self._set_ids(ids, id_type)  # index order: self._ids[i - 1] is the user of index i
        self._values: dict[str, list[str | None]] = {}
        for name, values in zip(self.FEATURE_NAMES, (gender, age, occupation)):
            if values is None:
                continue
            if len(values) != ids.size:
                raise ValueError(f"UserVocab: {name} has {len(values)} entries, expected {ids.size} (one per user)")
            self._values[name] = [None if values[i] is None else str(values[i]) for i in order.tolist()]
        categories = categories or {}
        unknown_features = set(categories) - set(self._values)
        if unknown_features:
            raise ValueError(f"UserVocab: categories given for features without values: {sorted(unknown_features)}")
        self._categories: dict[str, list[str]] = {}
        for name, vals in self._values.items():
            present = {v for v in vals if v is not None}
            if name not in categories:
                self._categories[name] = sorted(present)
                continue
            cats = [str(c) for c in categories[name]]
            if len(set(cats)) != len(cats):
                raise ValueError(f"UserVocab: categories of {name} contain duplicates")
            missing = present - set(cats)
            if missing:
                raise ValueError(f"UserVocab: {name} values {sorted(missing)} are not in its categories")
            self._categories[name] = cats
        self._category_ids: dict[str, dict[str, int]] = {
            name: {v: j for j, v in enumerate(cats, start=1)} for name, cats in self._categories.items()
        }
        names = self.feature_names
        mat = np.zeros((len(self), len(names)), dtype=np.int64)
        for j, name in enumerate(names):
            cid = self._category_ids[name]
            mat[self.NUM_SPECIAL :, j] = [0 if v is None else cid[v] for v in self._values[name]]
        self._feature_matrix = mat

    @property
    def num_users(self) -> int:
        """Number of known users (indices ``1..num_users``)."""
        return int(self._ids.size)

    @property
    def user_ids(self) -> np.ndarray:
        """Original user ids in index order (``user_ids[i - 1]`` is the user of index ``i``): int64 for int ids, a
        numpy unicode (``'U'``) array for string ids."""
        return self._ids.copy()

    @property
    def is_sorted(self) -> bool:
        """True when indices follow ascending user id and categories are sorted (a never-extended vocabulary)."""
        return self._index.is_ascending and all(cats == sorted(cats) for cats in self._categories.values())

    def __repr__(self) -> str:
        extra = ", id_type='str'" if self.id_type == "str" else ""
        return f"UserVocab(num_users={self.num_users}, features={self.feature_names}{extra})"

    def encode(self, user_id: int | str) -> int:
        """Index of ``user_id``; 0 (the unknown user) for an id not seen in the data (or of the other id type)."""
        index = self._row(user_id)
        return self.UNKNOWN_INDEX if index is None else index

    def encode_many(self, user_ids: Sequence[int] | Sequence[str] | np.ndarray) -> np.ndarray:
        """Vectorised :meth:`encode` (int32 array, 0 for unknown users)."""
        ids, valid, _ = _query_array(user_ids, self.id_type)
        index, ok = self._index.lookup(ids, valid)
        return np.where(ok, index, self.UNKNOWN_INDEX).astype(np.int32)

    def decode(self, index: int) -> int | str | None:
        """Original user id of ``index`` (a Python int or str); None for the unknown user 0; ``ValueError`` if out
        of range."""
        index = int(index)
        if index == self.UNKNOWN_INDEX:
            return None
        if not self.NUM_SPECIAL <= index < len(self):
            raise ValueError(f"user index {index} out of range 0..{self.num_users}")
        return _py(self._ids[index - self.NUM_SPECIAL])

    # -- growth ------------------------------------------------------------------------------------------
    def extend(
        self,
        user_ids: Sequence[int] | Sequence[str] | np.ndarray,
        gender: Sequence[str | None] | None = None,
        age: Sequence[str | None] | None = None,
        occupation: Sequence[str | None] | None = None,
    ) -> UserVocab:
        """A NEW vocabulary: this one plus the users of ``user_ids`` it does not know yet.

        Why: a fine-tuned model keeps its user embedding rows, so old users keep their index and unseen
        users get ``num_users + 1, ...`` in ascending id order. The feature set is the one of this
        vocabulary (the model's feature tables were built for it): values of a feature this vocabulary
        does not have are ignored, a feature it has but that is not given is unknown (0) for the new
        users. Category values not seen before get new category ids after the old ones (old ids are
        unchanged). Old users keep their old feature values. The new ids must have this vocabulary's
        :attr:`id_type` (any type when it is empty). ``self`` is not modified.
        """
        id_type = self.id_type if self.num_users else None
        ids = _as_id_array(user_ids, "user", id_type)
        new_ids, where = _new_ids(self._index, ids, "user")
        given = dict(zip(self.FEATURE_NAMES, (gender, age, occupation)))
        values: dict[str, list[str | None]] = {}
        categories: dict[str, list[str]] = {}
        for name in self.feature_names:
            picked = _pick(given[name], where, ids.size, f"UserVocab.extend: {name}")
            new_values = [None] * new_ids.size if picked is None else [None if v is None else str(v) for v in picked]
            values[name] = [*self._values[name], *new_values]
            old = self._categories[name]
            categories[name] = old + sorted({v for v in new_values if v is not None} - set(old))
        return UserVocab(
            np.concatenate([self._ids, new_ids]),
            **values,
            keep_order=True,
            categories=categories,
            id_type=id_type or _id_type_of(ids),
        )

    # -- side features -----------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Names of the side features present, in the fixed order gender, age, occupation."""
        return [n for n in self.FEATURE_NAMES if n in self._values]

    @property
    def feature_sizes(self) -> list[int]:
        """Embedding table size per feature (number of categories + 1 for unknown)."""
        return [len(self._categories[n]) + 1 for n in self.feature_names]

    def categories(self, name: str) -> list[str]:
        """Category values of feature ``name``; category id ``j`` is ``categories(name)[j - 1]``."""
        return list(self._categories[name])

    def features(self, index: int) -> list[int]:
        """Categorical ids of the side features of user ``index`` (all 0 for the unknown user)."""
        index = int(index)
        if not 0 <= index < len(self):
            raise ValueError(f"user index {index} out of range 0..{self.num_users}")
        return self._feature_matrix[index].tolist()

    def feature_matrix(self) -> np.ndarray:
        """All users' feature ids, int64 of shape ``(num_users + 1, len(feature_names))`` (row 0 = unknown)."""
        return self._feature_matrix.copy()

    def feature_values(self, index: int) -> dict[str, str | None]:
        """Raw side-feature values of user ``index`` (for display); empty values for the unknown user."""
        index = int(index)
        if index == self.UNKNOWN_INDEX:
            return dict.fromkeys(self.feature_names)
        self.decode(index)  # range check
        return {n: self._values[n][index - self.NUM_SPECIAL] for n in self.feature_names}

    def encode_features(self, **values: str | None) -> list[int]:
        """Feature ids for a new (cold-start) user from raw values, e.g. ``encode_features(gender="F")``.

        Missing or unseen values map to 0 (unknown); unknown feature names raise ``ValueError``.
        """
        extra = set(values) - set(self.FEATURE_NAMES)
        if extra:
            raise ValueError(f"unknown user features {sorted(extra)}; expected some of {self.FEATURE_NAMES}")
        out = []
        for n in self.feature_names:
            v = values.get(n)
            out.append(0 if v is None else self._category_ids[n].get(str(v), 0))
        return out

    # -- serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stable; the same vocabulary always gives the same dict).

        ``user_ids`` are listed in index order. A sorted int vocabulary is written as format version 1,
        exactly as before; an extended one as version 2, which also stores each feature's categories
        in category-id order; a string vocabulary as version 3 (``"id_type": "str"``, categories always stored).
        """
        out = self._header()
        out.update(
            {
                "unknown_index": self.UNKNOWN_INDEX,
                "num_users": self.num_users,
                "user_ids": self._ids.tolist(),
                "features": {n: self._values[n] for n in self.feature_names},
            }
        )
        if out["version"] >= 2:
            out["categories"] = {n: list(self._categories[n]) for n in self.feature_names}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserVocab:
        """Inverse of :meth:`to_dict` (versions 2 and 3 keep the stored index and category order exactly; files
        before version 3 hold int ids)."""
        cls._check_format(data)
        feats = data.get("features") or {}
        version = _version_of(data)
        ordered = version >= 2
        return cls(
            data["user_ids"],
            **{n: feats.get(n) for n in cls.FEATURE_NAMES},
            keep_order=ordered,
            categories=data.get("categories") if ordered else None,
            id_type=_stored_id_type(data, version),
        )
