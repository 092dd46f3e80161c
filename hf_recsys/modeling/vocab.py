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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnknownItemError
from .user_vocab import UserVocab
from .vocab_ids import (
    ID_TYPES,
    ITEM_VOCAB_FILE,
    USER_VOCAB_FILE,
    _as_id_array,
    _id_type_of,
    _IdVocabulary,
    _new_ids,
    _ordered_ids,
    _pick,
    _py,
    _query_array,
    _raw_at,
    _stored_id_type,
    _version_of,
    atomic_write_json,
)

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


class ItemVocab(_IdVocabulary):
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
    FILE_FORMAT = "hf_recsys.ItemVocab"

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

        self._set_ids(ids, id_type)  # token order: self._ids[t - 1] is the movie of token t
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

    # -- sizes -------------------------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        """Number of movies (tokens ``1..num_items``)."""
        return int(self._ids.size)

    @property
    def item_ids(self) -> np.ndarray:
        """Original movie ids in token order (``item_ids[t - 1]`` is the movie of token ``t``): int64 for int ids,
        a numpy unicode (``'U'``) array for string ids."""
        return self._ids.copy()

    @property
    def is_sorted(self) -> bool:
        """True when tokens follow ascending movie id (every vocabulary that was never extended)."""
        return self._index.is_ascending

    def __repr__(self) -> str:
        extra = ", id_type='str'" if self.id_type == "str" else ""
        return f"ItemVocab(num_items={self.num_items}, genres={len(self.genre_names)}{extra})"

    # -- encoding ----------------------------------------------------------------------------------------
    def encode(self, movie_id: int | str) -> int:
        """Token of ``movie_id``; raises :class:`UnknownItemError` for an id not in the vocabulary (including an id
        of the other type: ``"260"`` for an int vocabulary)."""
        token = self._row(movie_id)
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
        out = self._header()
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
        cls._check_format(data)
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
