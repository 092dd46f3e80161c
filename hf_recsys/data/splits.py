"""Split protocols: chronological token sequences -> train / validation / test rows.

Every builder (a named release or any interaction log) hands its data here as one :class:`Sequences` (all users'
token sequences, concatenated, each in time order) and gets back, per split, a :class:`SplitRows`: index arrays into
``Sequences.tokens`` that say "given ``tokens[start:target]``, the next item is ``tokens[target]``". Rows are never
materialised as Python lists until they are written (:func:`iter_rows`), so a protocol costs a few numpy passes.

Protocols (``docs/INTERFACES.md``):

* :func:`leave_one_out` (``"leave-one-out"``): per user the last item is the test target, the one before it the
  validation target, the one before that the train target (training uses every position of the train row).
  Train-only users (too short to evaluate, see :func:`hf_recsys.data.filters.min_history`) give one train row of
  their whole sequence and no evaluation rows, as SASRec does.
* :func:`seed_windows` (``"seed-windows"``): fixed-length windows with a stride, assigned at random (seeded) to
  the three splits.
* :func:`temporal` (``"temporal"``): two global time cuts (quantiles of the timestamps); needs timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from datasets.builder import Key

from .vocab import UserVocab

__all__ = [
    "PROTOCOLS",
    "ROW_FEATURES",
    "SPLITS",
    "PreEncodedFeatures",
    "Sequences",
    "SplitRows",
    "iter_rows",
    "leave_one_out",
    "row_features",
    "seed_windows",
    "temporal",
]

PROTOCOLS = ("leave-one-out", "seed-windows", "temporal")
SPLITS = ("train", "validation", "test")


def protocol_fractions(
    protocol: str, test_fraction: float | None, validation_fraction: float | None
) -> tuple[float, float]:
    """(test, validation) fractions with the protocol's defaults for the unset ones: seed-windows puts 15 % of the
    windows in test, temporal 10 % of the interactions after its test cut; validation takes 10 % in both."""
    test = (0.15 if protocol == "seed-windows" else 0.1) if test_fraction is None else float(test_fraction)
    return test, 0.1 if validation_fraction is None else float(validation_fraction)


def check_protocol_options(
    protocol: str, window_size: int, window_step: int, test_fraction: float | None, validation_fraction: float | None
) -> None:
    """Refuse split options that cannot work, before any file is read (every builder's options call this)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
    if window_size < 2 or window_step < 1:
        raise ValueError(f"need window_size >= 2 and window_step >= 1, got {window_size}, {window_step}")
    for name, value in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if protocol == "temporal" and sum(protocol_fractions(protocol, test_fraction, validation_fraction)) >= 1.0:
        raise ValueError("temporal: test_fraction + validation_fraction must be < 1")


ROW_FEATURES = datasets.Features(
    {
        "user_id": datasets.Value("int64"),
        "user_index": datasets.Value("int32"),
        "input_ids": datasets.List(datasets.Value("int32")),
        "target": datasets.Value("int32"),
        "timestamp": datasets.Value("int64"),
    }
)
"""Row schema of every split of every protocol (see ``docs/INTERFACES.md``), for integer user ids."""


def row_features(user_id_type: str = "int64") -> datasets.Features:
    """The row schema with ``user_id`` of the given type (``int64`` or ``string``): ids keep their original type."""
    if user_id_type not in ("int64", "string"):
        raise ValueError(f"user_id_type={user_id_type!r}: expected 'int64' or 'string'")
    return datasets.Features({**ROW_FEATURES, "user_id": datasets.Value(user_id_type)})


@dataclass
class Sequences:
    """All users' chronological token sequences, concatenated (user rows are 0-based user-vocabulary order).

    ``train_only`` (optional, one bool per user) marks users that stay in training only: no validation or test
    rows are made for them.
    """

    user_ids: np.ndarray  # (U,) original ids in vocabulary order (int64, or object for strings)
    offsets: np.ndarray  # (U,) start of each user's sequence in ``tokens``
    lengths: np.ndarray  # (U,)
    tokens: np.ndarray  # (N,) int32
    timestamps: np.ndarray  # (N,) int64, 0 when unknown
    train_only: np.ndarray | None = None  # (U,) bool

    @property
    def num_users(self) -> int:
        return int(self.lengths.size)


@dataclass
class SplitRows:
    """Rows of one split: ``input_ids = tokens[start:target]``, ``target = tokens[target]``, user ``user_row``."""

    user_row: np.ndarray
    start: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return int(self.target.size)

    def take(self, index: np.ndarray) -> SplitRows:
        """The rows at ``index`` (a bool mask or positions), in that order."""
        return SplitRows(self.user_row[index], self.start[index], self.target[index])


def _evaluated(seqs: Sequences, user_row: np.ndarray) -> np.ndarray:
    """Mask of rows whose user is not train-only."""
    if seqs.train_only is None:
        return np.ones(user_row.size, dtype=bool)
    return ~seqs.train_only[user_row]


def leave_one_out(seqs: Sequences) -> dict[str, SplitRows]:
    """Leave-one-out: test ``items[:-1] -> items[-1]``, validation ``items[:-2] -> items[-2]``, train
    ``items[:-3] -> items[-3]``; a row needs a non-empty history. Train-only users get one train row
    ``items[:-1] -> items[-1]`` (their whole sequence, for training) and no evaluation rows."""
    rows = {}
    train_only = np.zeros(seqs.num_users, dtype=bool) if seqs.train_only is None else seqs.train_only
    for split, back in (("train", 3), ("validation", 2), ("test", 1)):
        if split == "train":
            back_per_user = np.where(train_only, 1, back)
            users = np.flatnonzero(seqs.lengths > back_per_user)  # non-empty input
            back_users = back_per_user[users]
        else:
            users = np.flatnonzero((seqs.lengths > back) & ~train_only)
            back_users = back
        rows[split] = SplitRows(users, seqs.offsets[users], seqs.offsets[users] + seqs.lengths[users] - back_users)
    return rows


def seed_windows(
    seqs: Sequences, size: int, step: int, test_frac: float, val_frac: float, seed: int
) -> dict[str, SplitRows]:
    """Windows of ``size`` items every ``step`` items per user, shuffled with ``seed`` into test (``test_frac``),
    validation (``val_frac`` of the rest) and train. Train-only users' windows all go to train."""
    counts = (seqs.lengths + step - 1) // step
    user_row = np.repeat(np.arange(seqs.lengths.size), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    s = (np.arange(user_row.size) - first) * step
    end = np.minimum(s + size, seqs.lengths[user_row])
    keep = end - s > 1
    user_row, s, end = user_row[keep], s[keep], end[keep]
    start = seqs.offsets[user_row] + s
    target = seqs.offsets[user_row] + end - 1
    pool = np.flatnonzero(_evaluated(seqs, user_row))  # windows that may be held out
    rng = np.random.default_rng(seed)
    perm = pool[rng.permutation(pool.size)]
    n_test = round(pool.size * test_frac)
    rest = perm[n_test:]
    n_val = round(rest.size * val_frac)
    train = rest[n_val:]
    if pool.size != user_row.size:
        train = np.concatenate([train, np.flatnonzero(~_evaluated(seqs, user_row))])
    parts = {"train": train, "validation": rest[:n_val], "test": perm[:n_test]}
    out = {}
    for split, idx in parts.items():
        idx = np.sort(idx)
        out[split] = SplitRows(user_row[idx], start[idx], target[idx])
    return out


def temporal(seqs: Sequences, test_frac: float, val_frac: float) -> tuple[dict[str, SplitRows], dict[str, float]]:
    """Global time cuts at the ``1 - test_frac`` and ``1 - test_frac - val_frac`` timestamp quantiles.

    Train: per user, the prefix up to the validation cut. Validation (test): every interaction between the cuts
    (after the test cut) with its full history. Train-only users give no evaluation rows. Returns the rows and the
    cuts (``validation_cut``, ``test_cut``, unix seconds). Raises ``ValueError`` without timestamps.
    """
    ts = seqs.timestamps
    if not np.any(ts):
        raise ValueError("the temporal protocol needs timestamps; this source has none (SASRec format?)")
    t_test = float(np.quantile(ts, 1.0 - test_frac))
    t_val = float(np.quantile(ts, 1.0 - test_frac - val_frac))
    user_of = np.repeat(np.arange(seqs.lengths.size), seqs.lengths)
    pos = np.arange(ts.size)
    has_history = pos > seqs.offsets[user_of]
    out = {}
    # train: per user, the prefix before the validation cut (training uses every position of it)
    n_before = np.bincount(user_of[ts <= t_val], minlength=seqs.lengths.size)
    users = np.flatnonzero(n_before >= 2)
    out["train"] = SplitRows(users, seqs.offsets[users], seqs.offsets[users] + n_before[users] - 1)
    evaluated = _evaluated(seqs, user_of)
    for split, mask in (("validation", (ts > t_val) & (ts <= t_test)), ("test", ts > t_test)):
        idx = np.flatnonzero(mask & has_history & evaluated)
        out[split] = SplitRows(user_of[idx], seqs.offsets[user_of[idx]], idx)
    return out, {"validation_cut": t_val, "test_cut": t_test}


class PreEncodedFeatures(datasets.Features):
    """Features whose ``encode_example`` is the identity.

    :func:`iter_rows` yields rows that are already plain Python ints, strings and lists of ints in the exact
    schema, so the generic per-row encoding (which dominates write time, ~25 us/row) is skipped; Arrow still
    type-checks every batch against the schema when writing.
    """

    def encode_example(self, example: dict[str, Any]) -> dict[str, Any]:
        return example


def iter_rows(rows: SplitRows, seqs: Sequences) -> Iterator[tuple[Key, dict[str, Any]]]:
    """The ``(key, row)`` pairs of one split, in row order, for a builder's ``_generate_examples``."""
    tokens = seqs.tokens
    user_ids = seqs.user_ids[rows.user_row].tolist()
    targets = tokens[rows.target].tolist()
    stamps = seqs.timestamps[rows.target].tolist()
    user_index = (rows.user_row + UserVocab.NUM_SPECIAL).tolist()
    for i, (s, t) in enumerate(zip(rows.start.tolist(), rows.target.tolist())):
        yield (
            Key(0, i),
            {
                "user_id": user_ids[i],
                "user_index": user_index[i],
                "input_ids": tokens[s:t].tolist(),
                "target": targets[i],
                "timestamp": stamps[i],
            },
        )


class SplitRowsBuilder(datasets.GeneratorBasedBuilder):
    """The part every next-item builder shares: its `_split_generators` hand each split its `SplitRows` and the
    `Sequences`, and the rows are written with `PreEncodedFeatures` (already in the exact schema)."""

    def _prepare_split(self, split_generator: datasets.SplitGenerator, **kwargs: Any) -> None:
        features = self.info.features
        self.info.features = PreEncodedFeatures(features)
        try:
            super()._prepare_split(split_generator, **kwargs)
        finally:
            self.info.features = features

    def _generate_examples(self, rows: SplitRows, seqs: Sequences) -> Iterator[tuple[Key, dict[str, Any]]]:
        yield from iter_rows(rows, seqs)
