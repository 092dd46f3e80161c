"""The histories a batch export scores: each user's longest known history, in length-sorted batches.

A prepared dataset holds, per protocol, several rows per user (leave-one-out: a train, a validation and a test
row, each a prefix of the user's sequence). "Recommend what comes next after everything we know" needs the
longest of them with its target appended: ``input_ids + [target]``. With leave-one-out that is the test row of
every evaluated user (the whole sequence) and the train row of a train-only user (too short to be evaluated:
also its whole sequence); with the temporal protocol it is the user's last test row (else validation, else
train). With seed-windows it is the longest window, at most the window size.

Only small per-row arrays (split, row, user index, length: 25 bytes a row) are held for the whole dataset; the
histories themselves are read from the memory-mapped Arrow files one batch at a time, so memory stays bounded by
the batch size, not the number of users.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..modeling.vocab import UserVocab

__all__ = ["DatasetHistories", "HistoryBatch", "read_user_list"]

SPLIT_ORDER = ("train", "validation", "test")  # on equal length, a later split wins (its row is the newer one)


@dataclass
class HistoryBatch:
    """Histories of a batch of users in CSR form (no padding): user ``i`` read ``tokens[offsets[i]:offsets[i+1]]``,
    oldest first, in the model's item tokens.

    Attributes:
        user_ids: original user ids (int64 or string array), what the export writes.
        user_index: (B,) the model's user rows (0 = unknown user), read when the model conditions on users.
        tokens: flat item tokens of all histories.
        offsets: (B + 1,) int64 row boundaries into ``tokens``.
    """

    user_ids: np.ndarray
    user_index: np.ndarray
    tokens: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _looks_like_a_path(text: str) -> bool:
    """A missing file, not an id: a path separator or a list-file extension (``users.txt``)."""
    return any(sep in text for sep in "/\\") or text.lower().endswith((".txt", ".csv", ".tsv", ".list", ".ids"))


def read_user_list(users: str | Sequence[Any] | None, id_type: str = "int") -> list[Any] | None:
    """A user selection -> original ids of the model's id type, or None for every user.

    ``users`` is ``None`` or ``"all"`` (everyone), a list of ids, a file with one id per line (blank lines and
    ``#`` comments skipped), or a comma-separated string (``"1,5,42"``). Int ids must be whole numbers (a clear
    ``ValueError`` otherwise); an empty selection is a ``ValueError`` too (an empty export is a mistake, not a
    result). Duplicates are dropped, the first occurrence kept.
    """
    if users is None or (isinstance(users, str) and users.strip().lower() == "all"):
        return None
    if isinstance(users, (str, os.PathLike)):
        path = Path(users)
        if path.is_file():
            raw = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
            where = f"user list {path}"
        elif isinstance(users, str) and ("," in users or not _looks_like_a_path(users)):
            raw = [part.strip() for part in users.split(",")]
            where = "user list"
        else:
            raise FileNotFoundError(f"user list {users} does not exist (give 'all', a file or comma-separated ids)")
        raw = [value for value in raw if value]
    else:
        raw, where = list(users), "user list"
    if not raw:
        raise ValueError(f"the {where} is empty: nothing to export")
    if id_type == "int":
        ids = []
        for value in raw:
            text = str(value).strip()
            if not text.lstrip("-").isdigit():
                raise ValueError(f"{where}: user id {value!r} is not a whole number (this model's user ids are ints)")
            ids.append(int(text))
    else:
        ids = [str(value) for value in raw]
    return list(dict.fromkeys(ids))


@dataclass
class DatasetHistories:
    """Each selected user's longest history over the splits of a prepared dataset, longest first, in batches.

    Args:
        dataset: the prepared splits (``MovieLensData.dataset``), already in the model's tokens.
        user_vocab: the dataset's users (its ``user_index`` column), to find the users of a list.
        users: original ids to export (``read_user_list``), or None for every user with a history.
        batch_size: histories per batch.

    Users of the list the dataset has no history for are in ``unknown_users`` (not exported).
    """

    dataset: datasets.DatasetDict
    user_vocab: UserVocab
    users: Sequence[Any] | None = None
    batch_size: int = 256
    unknown_users: list[Any] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size}")
        self._splits = [name for name in SPLIT_ORDER if name in self.dataset] + [
            name for name in self.dataset if name not in SPLIT_ORDER
        ]
        split_of, row_of, index_of, length_of = [], [], [], []
        for s, name in enumerate(self._splits):
            ds = self.dataset[name].with_format("arrow", columns=["user_index", "input_ids"])
            start = 0
            for table in ds.iter(batch_size=65_536):
                n = table.num_rows
                split_of.append(np.full(n, s, np.int8))
                row_of.append(np.arange(start, start + n, dtype=np.int64))
                index_of.append(table.column("user_index").to_numpy().astype(np.int64))
                length_of.append(pc.list_value_length(table.column("input_ids")).to_numpy().astype(np.int64) + 1)
                start += n
        if not split_of:
            split, row, index, length = (np.zeros(0, dtype) for dtype in (np.int8, np.int64, np.int64, np.int64))
        else:
            split, row, index, length = map(np.concatenate, (split_of, row_of, index_of, length_of))
        # the longest row of each user (a later split on ties): sort by (user, length, split), keep each user's last
        order = np.lexsort((split, length, index))
        last = np.ones(order.size, bool)
        last[:-1] = index[order][1:] != index[order][:-1]
        keep = order[last]
        if self.users is not None:
            wanted = self.user_vocab.encode_many(self.users).astype(np.int64)  # 0 = not in the data
            present = np.isin(wanted, index[keep])
            self.unknown_users = [u for u, ok in zip(self.users, present.tolist()) if not ok]
            keep = keep[np.isin(index[keep], wanted[present])]
        keep = keep[np.argsort(-length[keep], kind="stable")]  # longest first: little padding, peak memory at once
        self._split, self._row, self._length = split[keep], row[keep], length[keep]

    def __len__(self) -> int:
        """Number of users that will be exported."""
        return int(self._row.size)

    @property
    def num_batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def batches(self) -> Iterator[HistoryBatch]:
        """Yield the histories ``batch_size`` users at a time, longest first (each ``input_ids + [target]``)."""
        formatted = [
            self.dataset[name].with_format("arrow", columns=["user_id", "user_index", "input_ids", "target"])
            for name in self._splits
        ]
        for start in range(0, len(self), self.batch_size):
            split = self._split[start : start + self.batch_size]
            row = self._row[start : start + self.batch_size]
            parts = [(s, np.flatnonzero(split == s)) for s in np.unique(split)]
            tables = [formatted[s][row[where].tolist()] for s, where in parts]
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
            if len(tables) > 1:  # back to the length order of this batch
                table = table.take(np.argsort(np.concatenate([where for _, where in parts]), kind="stable"))
            yield _with_targets(table)


def _with_targets(table: pa.Table) -> HistoryBatch:
    """Arrow rows (input_ids, target, ...) -> a HistoryBatch of ``input_ids + [target]`` per row."""
    histories = table.column("input_ids").combine_chunks()
    values = pc.list_flatten(histories).to_numpy().astype(np.int64)
    lengths = pc.list_value_length(histories).to_numpy().astype(np.int64)
    n = lengths.size
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths + 1, out=offsets[1:])
    tokens = np.empty(offsets[-1], np.int64)
    tokens[np.arange(values.size) + np.repeat(np.arange(n), lengths)] = values  # shifted by the targets before
    tokens[offsets[1:] - 1] = table.column("target").to_numpy()
    user_ids = table.column("user_id").to_numpy(zero_copy_only=False)
    if user_ids.dtype == object:
        user_ids = user_ids.astype(str)
    return HistoryBatch(
        user_ids=user_ids,
        user_index=table.column("user_index").to_numpy().astype(np.int64),
        tokens=tokens,
        offsets=offsets,
    )
