"""What `ItemVocab` and `UserVocab` share: checked id arrays (all ints or all strings), their binary-search
index, and the vocabulary file format (atomic JSON writes, format versions). The layout and the id rules are
described in `vocab.py`. Part of the self-contained modeling bundle: numpy and the standard library only."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

ITEM_VOCAB_FILE = "item_vocab.json"
USER_VOCAB_FILE = "user_vocab.json"
_FORMAT_VERSION = 3  # newest version this module reads; 1 = ids ascending, 2 = any order, 3 = + "id_type"
ID_TYPES = ("int", "str")
_PLURAL = {"int": "integers", "str": "strings"}


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder + ``os.replace``).

    A reader never sees a half-written vocabulary, even if the writer is killed mid-way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_json(path: str | os.PathLike[str], expected_format: str) -> dict[str, Any]:
    """The JSON object of a vocabulary file. A file must carry its "format" tag (a dict passed to ``from_dict``
    may omit it); the tag's value and the version are checked once, by ``from_dict``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or "format" not in data:
        raise ValueError(f"{path}: not a {expected_format} file (no 'format' field)")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _py(value: Any) -> Any:
    """A numpy scalar id as the plain Python int / str it stands for (for messages and ``decode``)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.str_):
        return str(value)
    return value


def _type_name(value: object) -> str:
    return "an int" if _is_int(value) else "a str" if isinstance(value, str) else f"a {type(value).__name__}"


def _as_id_array(ids: Iterable[Any] | np.ndarray, what: str = "", id_type: str | None = None) -> np.ndarray:
    """Ids as a flat array: int64 for integer ids, numpy unicode (``'U'``) for string ids.

    ``id_type`` (``"int"``/``"str"``) is the type the ids must have (None: the type of the first id; int when
    there is none). Accepts lists, tuples, generators and arrays; a mix of types, floats, bools or ``None``
    raise ``ValueError`` naming the first offending id and its position.
    """
    if id_type is not None and id_type not in ID_TYPES:
        raise ValueError(f"id_type must be one of {ID_TYPES}, got {id_type!r}")
    label = f"{what} ids" if what else "ids"
    if isinstance(ids, np.ndarray):
        arr = ids.reshape(-1)
        kind = arr.dtype.kind
        if kind in "iuU" and arr.size:
            found = "str" if kind == "U" else "int"
            if id_type is not None and found != id_type:
                raise ValueError(
                    f"{label} must be {_PLURAL[id_type]} (this vocabulary's id type): id {_py(arr[0])!r} at position 0 "
                    f"is {_type_name(_py(arr[0]))}"
                )
            return arr.astype(np.int64) if kind in "iu" else arr.astype(str)
        if kind != "O" and arr.size:
            raise ValueError(
                f"{label} must be all integers or all strings, got an array of dtype {arr.dtype} "
                f"(e.g. {_py(arr[0])!r} at position 0)"
            )
        values = arr.tolist()
    else:
        values = list(ids)
    if not values:
        return np.zeros(0, dtype=str) if id_type == "str" else np.zeros(0, dtype=np.int64)
    want = id_type or ("str" if isinstance(values[0], str) else "int")
    check = _is_int if want == "int" else (lambda v: isinstance(v, str))
    if not (all(type(v) is int for v in values) if want == "int" else all(type(v) is str for v in values)):
        for position, value in enumerate(values):
            if not check(value):
                offender = f"id {_py(value)!r} at position {position} is {_type_name(value)}"
                if id_type is not None:
                    raise ValueError(f"{label} must be {_PLURAL[want]} (this vocabulary's id type): {offender}")
                if check(values[0]):
                    first = f"id {_py(values[0])!r} at position 0 is {_type_name(values[0])}"
                    raise ValueError(f"{label} must be all integers or all strings, not a mix: {first}, {offender}")
                raise ValueError(f"{label} must be all integers or all strings: {offender}")
    return np.array(values, dtype=np.int64) if want == "int" else np.array([str(v) for v in values], dtype=str)


def _id_type_of(arr: np.ndarray) -> str:
    return "str" if arr.dtype.kind == "U" else "int"


def _scalar_key(value: object, id_type: str) -> Any:
    """The dict key of a scalar query, or None when the query cannot be an id of this type (no conversion
    between ints and strings; an int vocabulary still takes anything ``int()`` accepts except strings, as before)."""
    if id_type == "str":
        return str(value) if isinstance(value, str) else None
    if isinstance(value, (str, bytes)):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None


def _query_array(queries: Sequence[Any] | np.ndarray, id_type: str) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """Queries as (array comparable with the vocabulary's ids, mask of the queries of the right type or None when
    all are, the raw queries for messages). Queries of the other type are never converted: they are unknown."""
    raw = queries if isinstance(queries, np.ndarray) else list(queries)
    arr = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
    kind = arr.dtype.kind
    if id_type == "int" and kind not in "USO":
        return np.asarray(arr, dtype=np.int64), None, raw  # as before: numeric queries are cast to int64
    if id_type == "str" and kind == "U" and (isinstance(raw, np.ndarray) or all(type(q) is str for q in raw)):
        return arr, None, raw
    obj = np.asarray(raw, dtype=object)
    check = _is_int if id_type == "int" else (lambda q: isinstance(q, str))
    valid = np.fromiter((check(q) for q in obj.reshape(-1).tolist()), dtype=bool, count=obj.size).reshape(obj.shape)
    if id_type == "int":
        out = np.where(valid, obj, 0).astype(np.int64)
    else:
        out = np.where(valid, obj, "").astype(str) if obj.size else np.zeros(obj.shape, dtype=str)
    return out, valid, raw


def _raw_at(raw: Any, flat_index: int) -> Any:
    """The query at ``flat_index`` of the flattened queries, as given (for messages)."""
    return _py(np.asarray(raw, dtype=object).reshape(-1)[flat_index])


def _ordered_ids(
    ids: Iterable[Any], what: str, keep_order: bool, id_type: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (ids in token order, permutation from input order to token order); reject duplicates.

    Token order is ascending id order, or the input order itself when ``keep_order`` is set.
    """
    arr = _as_id_array(ids, what, id_type)
    sort = np.argsort(arr, kind="stable")
    ascending = arr[sort]
    if ascending.size > 1:
        dup = np.flatnonzero(ascending[1:] == ascending[:-1])
        if dup.size:
            raise ValueError(f"duplicate {what} id {_py(ascending[dup[0]])!r} in vocabulary input")
    if keep_order:
        return arr, np.arange(arr.size)
    return ascending, sort


class _IdIndex:
    """Vectorised id -> position lookup for ids stored in any order (binary search over a sorted copy)."""

    def __init__(self, ids: np.ndarray, first: int) -> None:
        order = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[order]
        self.positions = (order + first).astype(np.int32)  # token / index of sorted_ids[j]
        self.is_ascending = bool(np.array_equal(order, np.arange(ids.size)))

    def lookup(self, queries: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, found mask) of ``queries`` (same id type as the index; ``valid`` marks the queries that
        may be found at all); positions are meaningless where not found."""
        if not self.sorted_ids.size:
            return np.zeros(queries.shape, np.int32), np.zeros(queries.shape, bool)
        pos = np.searchsorted(self.sorted_ids, queries)
        pos_clipped = np.minimum(pos, self.sorted_ids.size - 1)
        ok = (pos < self.sorted_ids.size) & (self.sorted_ids[pos_clipped] == queries)
        if valid is not None:
            ok &= valid
        return self.positions[pos_clipped], ok


class _IdVocabulary:
    """What `ItemVocab` and `UserVocab` share: the original ids in row order (row `r` is the id
    `_ids[r - NUM_SPECIAL]`; rows below `NUM_SPECIAL` are special), their type, the lookups from an id to its
    row, and the file: its header (format tag, version, id type), `save` and `load`. A subclass sets
    `FILE_FORMAT`, calls `_set_ids` first in `__init__`, and defines `is_sorted`, `to_dict` (what equality
    compares and `save` writes, starting with `_header()`) and `from_dict` (which starts with `_check_format`)."""

    NUM_SPECIAL = 1
    FILE_FORMAT = ""  # the "format" tag of the subclass's JSON file, e.g. "hf_recsys.ItemVocab"

    def _set_ids(self, ids: np.ndarray, id_type: str | None) -> None:
        self._ids = ids
        self.id_type: str = id_type or _id_type_of(ids)
        self._index = _IdIndex(ids, self.NUM_SPECIAL)
        self._rows: dict[int | str, int] = {v: r for r, v in enumerate(ids.tolist(), start=self.NUM_SPECIAL)}

    def __len__(self) -> int:
        """Number of rows including the special ones: the size of the embedding table."""
        return int(self._ids.size) + self.NUM_SPECIAL

    def __contains__(self, original_id: object) -> bool:
        key = _scalar_key(original_id, self.id_type)
        return key is not None and key in self._rows

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.to_dict() == other.to_dict()

    def _row(self, original_id: object) -> int | None:
        """The row of `original_id`, None when it is not in the vocabulary (or of the other id type)."""
        key = _scalar_key(original_id, self.id_type)
        return None if key is None else self._rows.get(key)

    @property
    def is_sorted(self) -> bool:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError

    def _header(self) -> dict[str, Any]:
        """The first keys of `to_dict`: the format tag, the file version, and the id type of a string vocabulary
        (int vocabularies are written without it, exactly as before string ids existed)."""
        header: dict[str, Any] = {"format": self.FILE_FORMAT, "version": _file_version(self.is_sorted, self.id_type)}
        if self.id_type == "str":
            header["id_type"] = self.id_type
        return header

    @classmethod
    def _check_format(cls, data: dict[str, Any]) -> None:
        """Refuse a dict of another vocabulary kind (a dict without a format tag is taken as this kind)."""
        if data.get("format", cls.FILE_FORMAT) != cls.FILE_FORMAT:
            raise ValueError(f"not a {cls.FILE_FORMAT} vocabulary: format={data.get('format')!r}")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON (atomic: a reader never sees a half-written file)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a vocabulary written by :meth:`save`; a file of another kind or a newer version is refused, and
        the error names the file."""
        data = _read_json(path, cls.FILE_FORMAT)
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err


def _version_of(data: dict[str, Any]) -> int:
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"vocabulary format version must be an integer, got {version!r}")
    if version > _FORMAT_VERSION:
        raise ValueError(f"vocabulary format version {version} is newer than supported ({_FORMAT_VERSION})")
    return version


def _stored_id_type(data: dict[str, Any], version: int) -> str:
    """The id type of a stored vocabulary: files before version 3 are int; version 3 names it."""
    if version < 3:
        return "int"
    id_type = data.get("id_type")
    if id_type not in ID_TYPES:
        raise ValueError(f"vocabulary format version {version} needs 'id_type' in {ID_TYPES}, got {id_type!r}")
    return id_type


def _file_version(sorted_: bool, id_type: str) -> int:
    """Version written: int vocabularies exactly as before (1 sorted, 2 grown), string ones 3."""
    return 3 if id_type == "str" else 1 if sorted_ else 2


def _new_ids(known: _IdIndex, arr: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(ascending ids of ``arr`` not in ``known``, their positions in ``arr``); reject duplicates in ``arr``."""
    _ordered_ids(arr, what, keep_order=True)  # duplicate check
    where = np.flatnonzero(~known.lookup(arr)[1])
    order = np.argsort(arr[where], kind="stable")
    return arr[where][order], where[order]


def _pick(values: Sequence[Any] | None, positions: np.ndarray, n: int, name: str) -> list[Any] | None:
    """``values`` (aligned with ``n`` input ids) at ``positions``; None when not given."""
    if values is None:
        return None
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries, expected {n} (one per id)")
    return [values[i] for i in positions.tolist()]
