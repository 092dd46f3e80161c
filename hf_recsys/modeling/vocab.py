"""Item and user vocabularies: the "tokenizer" of a sequential recommender.

A model never sees the dataset's own ids, only the contiguous token ids defined here, so the vocabularies
are saved beside every model (``item_vocab.json``, ``user_vocab.json``) and must be deterministic
for the same input. The layout is fixed by ``docs/INTERFACES.md``:

* Items: token 0 is ``[PAD]`` (padding, never recommended); movie tokens are ``1..num_items`` in
  ascending order of the original movie id. ``ItemVocab.NUM_SPECIAL == 1``; there are no other
  special tokens (no ``[MASK]``/``[CLS]``; a model that needs one appends it after ``num_items``).
* Users: index 0 is the unknown user (serves users unseen in training); known users are
  ``1..num_users`` in ascending order of the original user id. Optional categorical side features
  (gender, age group, occupation) are mapped to ids with 0 = unknown.

Fine-tuning grows a vocabulary with :meth:`ItemVocab.extend` / :meth:`UserVocab.extend`: every old
token keeps its id (so the old embedding rows stay valid) and unseen ids are appended after the old
ones. An extended vocabulary is therefore no longer sorted by id: the id array is kept in *token*
order, with a sorted copy for the vectorised binary-search lookups. JSON files of sorted vocabularies
are written exactly as before (format version 1); a vocabulary whose order is not ascending is written
as version 2, which stores the order verbatim and which older readers reject instead of silently
re-sorting it (that would give every movie another movie's embedding).

Ids are all integers or all strings, one type per vocabulary (:attr:`ItemVocab.id_type` /
:attr:`UserVocab.id_type`: ``"int"`` or ``"str"``). Python and numpy integers are ints, Python ``str`` and
``numpy.str_`` are strings; a mix (or floats, ``None``, bools) is refused with a ``ValueError`` naming the
first offending id and its position. ``item_ids`` / ``user_ids`` are an int64 array for int ids and a numpy
unicode (``'U'``) array for string ids (its elements are ``numpy.str_``, a ``str`` subclass; ``tolist()``
gives Python ``str``). Lookups never convert between the types: a string such as ``"260"`` is an unknown id
of an int vocabulary, and the int ``260`` an unknown id of a string vocabulary. Int vocabularies are written
exactly as before (version 1 or 2, no ``id_type`` key: an older file is always int); a string vocabulary is
written as version 3, which stores ``"id_type": "str"`` and the token order verbatim, so that a reader that
predates string ids rejects the file ("version 3 is newer than supported") instead of failing on the ids.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnknownItemError

__all__ = [
    "ID_TYPES",
    "ITEM_VOCAB_FILE",
    "USER_VOCAB_FILE",
    "ItemVocab",
    "UnknownItemError",
    "UserVocab",
    "atomic_write_json",
    "load_vocabs",
    "save_vocabs",
]

ITEM_VOCAB_FILE = "item_vocab.json"
USER_VOCAB_FILE = "user_vocab.json"
_ITEM_FORMAT = "hf_recsys.ItemVocab"
_USER_FORMAT = "hf_recsys.UserVocab"
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
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("format") != expected_format:
        raise ValueError(f"{path}: not a {expected_format} file (missing or wrong 'format' field)")
    if data.get("version", 0) > _FORMAT_VERSION:
        raise ValueError(f"{path}: format version {data['version']} is newer than supported ({_FORMAT_VERSION})")
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


def _version_of(data: dict[str, Any]) -> int:
    version = data.get("version", 1)
    if not isinstance(version, int) or version > _FORMAT_VERSION:
        raise ValueError(f"vocabulary format version {version!r} is newer than supported ({_FORMAT_VERSION})")
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


class ItemVocab:
    """Movie id <-> token id mapping with optional movie metadata (title, year, genres).

    Args:
        item_ids: original movie ids, all ints or all strings; tokens are assigned in ascending id order (the
            layout of a new vocabulary), or in the given order when ``keep_order`` is set.
        titles, years, genres: optional per-movie metadata aligned with ``item_ids``.
        genre_names: the genre vocabulary, i.e. the columns of :meth:`genre_matrix`.
        keep_order: assign tokens ``1..n`` in the order of ``item_ids`` instead of sorting them; used by
            :meth:`extend` and :meth:`from_dict` for grown vocabularies, whose old tokens must not move.
        id_type: ``"int"`` or ``"str"``: the type the ids must have (default: that of the ids; int when empty).
    """

    PAD_TOKEN = "[PAD]"
    PAD_TOKEN_ID = 0
    SPECIAL_TOKENS = ("[PAD]",)
    NUM_SPECIAL = 1

    def __init__(
        self,
        item_ids: Sequence[int] | Sequence[str] | np.ndarray,
        titles: Sequence[str | None] | None = None,
        years: Sequence[int | None] | None = None,
        genres: Sequence[Sequence[str]] | None = None,
        genre_names: Sequence[str] | None = None,
        *,
        keep_order: bool = False,
        id_type: str | None = None,
    ) -> None:
        ids, order = _ordered_ids(item_ids, "movie", keep_order, id_type)
        n = ids.size

        def aligned(values: Sequence[Any] | None, name: str) -> list[Any] | None:
            if values is None:
                return None
            if len(values) != n:
                raise ValueError(f"ItemVocab: {name} has {len(values)} entries, expected {n} (one per item)")
            return [values[i] for i in order.tolist()]

        self._ids = ids  # token order: self._ids[t - 1] is the movie of token t
        self._index = _IdIndex(ids, self.NUM_SPECIAL)
        self._titles: list[str | None] | None = aligned(titles, "titles")
        years_aligned = aligned(years, "years")
        self._years: list[int | None] | None = (
            None if years_aligned is None else [None if y is None else int(y) for y in years_aligned]
        )
        genres_aligned = aligned(genres, "genres")
        self._genres: list[list[str]] | None = None if genres_aligned is None else [list(g) for g in genres_aligned]
        names = list(genre_names) if genre_names is not None else []
        if self._genres is not None and not names:
            names = sorted({g for gs in self._genres for g in gs})
        if len(set(names)) != len(names):
            raise ValueError("ItemVocab: genre_names contains duplicates")
        self.genre_names: list[str] = names
        self.id_type: str = id_type or _id_type_of(ids)
        self._id_to_token: dict[int | str, int] = {m: t for t, m in enumerate(ids.tolist(), start=self.NUM_SPECIAL)}

    # -- sizes -------------------------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        """Number of movies (tokens ``1..num_items``)."""
        return int(self._ids.size)

    def __len__(self) -> int:
        """Number of tokens including ``[PAD]``: the embedding table / logits size."""
        return self.num_items + self.NUM_SPECIAL

    @property
    def item_ids(self) -> np.ndarray:
        """Original movie ids in token order (``item_ids[t - 1]`` is the movie of token ``t``): int64 for int ids,
        a numpy unicode (``'U'``) array for string ids."""
        return self._ids.copy()

    @property
    def is_sorted(self) -> bool:
        """True when tokens follow ascending movie id (every vocabulary that was never extended)."""
        return self._index.is_ascending

    def __contains__(self, movie_id: object) -> bool:
        key = _scalar_key(movie_id, self.id_type)
        return key is not None and key in self._id_to_token

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ItemVocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        extra = ", id_type='str'" if self.id_type == "str" else ""
        return f"ItemVocab(num_items={self.num_items}, genres={len(self.genre_names)}{extra})"

    # -- encoding ----------------------------------------------------------------------------------------
    def encode(self, movie_id: int | str) -> int:
        """Token of ``movie_id``; raises :class:`UnknownItemError` for an id not in the vocabulary (including an id
        of the other type: ``"260"`` for an int vocabulary)."""
        token = self._id_to_token.get(_scalar_key(movie_id, self.id_type))  # type: ignore[arg-type]
        if token is None:
            raise UnknownItemError(_py(movie_id), self.num_items)
        return token

    def encode_many(self, movie_ids: Sequence[int] | Sequence[str] | np.ndarray) -> np.ndarray:
        """Vectorised :meth:`encode` (int32 array); raises :class:`UnknownItemError` on the first unknown id."""
        ids, valid, raw = _query_array(movie_ids, self.id_type)
        if valid is not None or self.id_type == "str":
            tokens, ok = self._index.lookup(ids, valid)
            if not np.all(ok):
                raise UnknownItemError(_raw_at(raw, int(np.flatnonzero(~ok.reshape(-1))[0])), self.num_items)
            return tokens
        sorted_ids = self._index.sorted_ids
        if ids.size > 100_000 and sorted_ids.size and sorted_ids[0] >= 0 and sorted_ids[-1] < 50_000_000:
            # many lookups of small non-negative ids: a dense lookup table beats a binary search
            largest = int(sorted_ids[-1])
            lut = np.zeros(largest + 1, dtype=np.int32)
            lut[self._ids] = np.arange(self.NUM_SPECIAL, len(self), dtype=np.int32)
            inside = (ids >= 0) & (ids <= largest)
            out = np.zeros(ids.shape, dtype=np.int32)
            out[inside] = lut[ids[inside]]
            if not np.all(out):
                raise UnknownItemError(int(ids[np.flatnonzero(out == 0)[0]]), self.num_items)
            return out
        tokens, ok = self._index.lookup(ids)
        if not np.all(ok):
            raise UnknownItemError(int(ids[np.flatnonzero(~ok)[0]]), self.num_items)
        return tokens

    def _check_token(self, token: int) -> int:
        token = int(token)
        if not self.NUM_SPECIAL <= token < len(self):
            what = "the [PAD] token" if token == self.PAD_TOKEN_ID else "out of range"
            raise ValueError(f"token {token} is {what}; movie tokens are 1..{self.num_items}")
        return token

    def decode(self, token: int) -> int | str:
        """Original movie id of ``token`` (a Python int or str); ``ValueError`` for ``[PAD]`` or an out-of-range token."""
        return _py(self._ids[self._check_token(token) - self.NUM_SPECIAL])

    def decode_many(self, tokens: Sequence[int] | np.ndarray) -> np.ndarray:
        """Vectorised :meth:`decode` (int64 array, or a ``'U'`` array for string ids)."""
        t = np.asarray(tokens, dtype=np.int64)
        bad = (t < self.NUM_SPECIAL) | (t >= len(self))
        if np.any(bad):
            self._check_token(int(t[np.flatnonzero(bad)[0]]))
        return self._ids[t - self.NUM_SPECIAL]

    # -- growth ------------------------------------------------------------------------------------------
    def extend(
        self,
        movie_ids: Sequence[int] | Sequence[str] | np.ndarray,
        titles: Sequence[str | None] | None = None,
        years: Sequence[int | None] | None = None,
        genres: Sequence[Sequence[str]] | None = None,
        genre_names: Sequence[str] | None = None,
    ) -> ItemVocab:
        """A NEW vocabulary: this one plus the movies of ``movie_ids`` it does not know yet.

        Why: a fine-tuned model keeps its embedding rows, so every old movie must keep its token. Old
        tokens (and their metadata) are unchanged; unseen movies get tokens ``num_items + 1, ...`` in
        ascending id order (deterministic: the same inputs always give the same tokens). ``movie_ids``
        may mix known and new ids (e.g. a whole new catalogue); metadata is aligned with ``movie_ids``
        and read only for the new movies. Genres not in :attr:`genre_names` are appended as new
        columns (in ``genre_names`` order if given, else sorted), so old genre columns keep their
        index. The new ids must have this vocabulary's :attr:`id_type` (any type when it is empty). ``self`` is
        not modified.
        """
        id_type = self.id_type if self.num_items else None
        ids = _as_id_array(movie_ids, "movie", id_type)
        new_ids, where = _new_ids(self._index, ids, "movie")
        n_in = ids.size
        new_titles = _pick(titles, where, n_in, "ItemVocab.extend: titles")
        new_years = _pick(years, where, n_in, "ItemVocab.extend: years")
        new_genres = _pick(genres, where, n_in, "ItemVocab.extend: genres")

        def merged(old: list[Any] | None, new: list[Any] | None, missing: Any) -> list[Any] | None:
            if old is None and new is None:
                return None
            old_part = old if old is not None else [missing() if callable(missing) else missing] * self.num_items
            new_part = new if new is not None else [missing() if callable(missing) else missing] * new_ids.size
            return [*old_part, *new_part]

        names = list(self.genre_names)
        seen = set(names)
        candidates = list(genre_names) if genre_names is not None else []
        candidates += sorted({g for gs in new_genres or [] for g in gs} - set(candidates))
        for g in candidates:
            if g not in seen:
                names.append(g)
                seen.add(g)
        return ItemVocab(
            np.concatenate([self._ids, new_ids]),
            titles=merged(self._titles, new_titles, None),
            years=merged(self._years, new_years, None),
            genres=merged(self._genres, None if new_genres is None else [list(g) for g in new_genres], list),
            genre_names=names,
            keep_order=True,
            id_type=id_type or _id_type_of(ids),
        )

    # -- metadata ----------------------------------------------------------------------------------------
    def title(self, token: int) -> str | None:
        """Title of the movie of ``token`` (None if unknown); ``[PAD]`` for token 0."""
        if int(token) == self.PAD_TOKEN_ID:
            return self.PAD_TOKEN
        i = self._check_token(token) - self.NUM_SPECIAL
        return None if self._titles is None else self._titles[i]

    def year(self, token: int) -> int | None:
        """Release year of the movie of ``token`` (None if unknown or token 0)."""
        if int(token) == self.PAD_TOKEN_ID:
            return None
        i = self._check_token(token) - self.NUM_SPECIAL
        return None if self._years is None else self._years[i]

    def genres(self, token: int) -> list[str]:
        """Genres of the movie of ``token`` (empty if unknown or token 0)."""
        if int(token) == self.PAD_TOKEN_ID:
            return []
        i = self._check_token(token) - self.NUM_SPECIAL
        return [] if self._genres is None else list(self._genres[i])

    def genre_matrix(self) -> np.ndarray:
        """Multi-hot genres, float32 of shape ``(num_items + 1, len(genre_names))``; row 0 ([PAD]) is zero."""
        mat = np.zeros((len(self), len(self.genre_names)), dtype=np.float32)
        if self._genres is not None:
            col = {g: j for j, g in enumerate(self.genre_names)}
            for i, gs in enumerate(self._genres, start=self.NUM_SPECIAL):
                for g in gs:
                    if g in col:
                        mat[i, col[g]] = 1.0
        return mat

    def year_buckets(self, width: int = 10, min_year: int | None = None) -> np.ndarray:
        """Categorical year ids, int64 of shape ``(num_items + 1,)``, for a year embedding.

        Bucket ``1 + (year - start) // width`` where ``start`` is ``min_year`` (default: the earliest
        known year rounded down to a multiple of ``width``); 0 = [PAD] or unknown year, and years
        before ``min_year`` are clamped into bucket 1. The embedding size is ``int(result.max()) + 1``.
        """
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        out = np.zeros(len(self), dtype=np.int64)
        if self._years is None:
            return out
        known = [y for y in self._years if y is not None]
        if not known:
            return out
        start = min_year if min_year is not None else (min(known) // width) * width
        for i, y in enumerate(self._years, start=self.NUM_SPECIAL):
            if y is not None:
                out[i] = 1 + max(y - start, 0) // width
        return out

    # -- serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stable key order; the same vocabulary always gives the same dict).

        ``item_ids`` are listed in token order. A sorted int vocabulary is written as format version 1,
        exactly as before vocabularies could grow; an extended one as version 2; a string vocabulary as version 3
        with ``"id_type": "str"`` (see the module doc).
        """
        out: dict[str, Any] = {
            "format": _ITEM_FORMAT,
            "version": _file_version(self.is_sorted, self.id_type),
        }
        if self.id_type == "str":
            out["id_type"] = self.id_type
        out.update(
            {
                "special_tokens": list(self.SPECIAL_TOKENS),
                "num_items": self.num_items,
                "item_ids": self._ids.tolist(),
                "titles": self._titles,
                "years": self._years,
                "genres": self._genres,
                "genre_names": list(self.genre_names),
            }
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemVocab:
        """Inverse of :meth:`to_dict`: versions 2 and 3 keep the stored token order exactly; version 1 (ids
        ascending by contract) sorts, as it always did. Files before version 3 hold int ids."""
        if data.get("format", _ITEM_FORMAT) != _ITEM_FORMAT:
            raise ValueError(f"not an item vocabulary: format={data.get('format')!r}")
        if list(data.get("special_tokens", cls.SPECIAL_TOKENS)) != list(cls.SPECIAL_TOKENS):
            raise ValueError(f"unsupported special tokens {data.get('special_tokens')}; expected {cls.SPECIAL_TOKENS}")
        version = _version_of(data)
        return cls(
            data["item_ids"],
            titles=data.get("titles"),
            years=data.get("years"),
            genres=data.get("genres"),
            genre_names=data.get("genre_names") or [],
            keep_order=version >= 2,
            id_type=_stored_id_type(data, version),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON (atomic)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ItemVocab:
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_dict(_read_json(path, _ITEM_FORMAT))


class UserVocab:
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
    NUM_SPECIAL = 1
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
        self._ids = ids  # index order: self._ids[i - 1] is the user of index i
        self.id_type: str = id_type or _id_type_of(ids)
        self._index = _IdIndex(ids, self.NUM_SPECIAL)
        self._id_to_index: dict[int | str, int] = {u: i for i, u in enumerate(ids.tolist(), start=self.NUM_SPECIAL)}
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

    def __len__(self) -> int:
        """Number of indices including the unknown user: the user embedding table size."""
        return self.num_users + self.NUM_SPECIAL

    @property
    def user_ids(self) -> np.ndarray:
        """Original user ids in index order (``user_ids[i - 1]`` is the user of index ``i``): int64 for int ids, a
        numpy unicode (``'U'``) array for string ids."""
        return self._ids.copy()

    @property
    def is_sorted(self) -> bool:
        """True when indices follow ascending user id and categories are sorted (a never-extended vocabulary)."""
        return self._index.is_ascending and all(cats == sorted(cats) for cats in self._categories.values())

    def __contains__(self, user_id: object) -> bool:
        key = _scalar_key(user_id, self.id_type)
        return key is not None and key in self._id_to_index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserVocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        extra = ", id_type='str'" if self.id_type == "str" else ""
        return f"UserVocab(num_users={self.num_users}, features={self.feature_names}{extra})"

    def encode(self, user_id: int | str) -> int:
        """Index of ``user_id``; 0 (the unknown user) for an id not seen in the data (or of the other id type)."""
        key = _scalar_key(user_id, self.id_type)
        return self.UNKNOWN_INDEX if key is None else self._id_to_index.get(key, self.UNKNOWN_INDEX)

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
        out: dict[str, Any] = {
            "format": _USER_FORMAT,
            "version": _file_version(self.is_sorted, self.id_type),
        }
        if self.id_type == "str":
            out["id_type"] = self.id_type
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
        if data.get("format", _USER_FORMAT) != _USER_FORMAT:
            raise ValueError(f"not a user vocabulary: format={data.get('format')!r}")
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

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON (atomic)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> UserVocab:
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_dict(_read_json(path, _USER_FORMAT))


def save_vocabs(folder: str | os.PathLike[str], items: ItemVocab, users: UserVocab) -> tuple[Path, Path]:
    """Write ``item_vocab.json`` and ``user_vocab.json`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    items.save(folder / ITEM_VOCAB_FILE)
    users.save(folder / USER_VOCAB_FILE)
    return folder / ITEM_VOCAB_FILE, folder / USER_VOCAB_FILE


def load_vocabs(folder: str | os.PathLike[str]) -> tuple[ItemVocab, UserVocab]:
    """Read the vocabularies written by :func:`save_vocabs` (e.g. from a model folder)."""
    folder = Path(folder)
    for name in (ITEM_VOCAB_FILE, USER_VOCAB_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: expected the vocabularies saved by save_vocabs()")
    return ItemVocab.load(folder / ITEM_VOCAB_FILE), UserVocab.load(folder / USER_VOCAB_FILE)
