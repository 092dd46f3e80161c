"""The one path from an interaction log to split rows, shared by every builder (issue 21).

A builder's own work ends once it holds an :class:`~hf_recsys.data.interaction_log.InteractionLog`: the generic
:class:`~hf_recsys.data.interactions.InteractionsBuilder` reads any file or frame into one, the MovieLens builder
parses a release's ratings (or its SASRec-format fallback) into one. :func:`prepare_log` then does the rest, the same
way for both, so a MovieLens release and the same ratings read by ``load_interactions`` give identical splits::

    log -> chronological (stable by user, time) -> apply_filters (reported) -> chronological
        -> item ids / user ids (ascending) -> vocabularies -> Sequences -> the protocol's SplitRows

Builders differ only in what they put into the vocabularies (MovieLens adds titles, years, genres and
demographics), which they pass as ``item_vocab`` / ``user_vocab`` factories: each gets the ids in ascending order
and must give tokens ``1..n`` in that order, which is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import splits as _splits
from .filters import FilterReport, apply_filters
from .input_errors import InteractionDataError
from .interaction_log import ITEM, TIME, USER, InteractionLog, chronological
from .splits import Sequences, SplitRows
from .vocab import ItemVocab, UserVocab

__all__ = ["PreparedLog", "SplitOptions", "prepare_log", "sequences"]

NO_TIME_EXPECTED = "time_column= naming the column with the time of each interaction"
#: A log repeats (people come back to items) when at least this share of its interactions re-consume an item: the
#: share of right answers that leaving seen items out of the ranking would forbid.
REPEAT_SHARE = 0.01


class SplitOptions(Protocol):
    """The protocol options every builder's config has (``InteractionOptions``, ``MovieLensConfig``)."""

    protocol: str
    seed: int
    window_size: int
    window_step: int

    def fractions(self) -> tuple[float, float]: ...


@dataclass
class PreparedLog:
    """What :func:`prepare_log` makes of a log: everything a builder writes, before it is written.

    ``log`` is the filtered, chronological log; ``report`` what each filter removed; ``item_ids`` / ``user_ids`` the
    ids in token / user-index order (ascending); ``rows`` the protocol's rows per split; ``cuts`` the temporal
    protocol's ``validation_cut`` and ``test_cut`` (empty for the others).
    """

    log: InteractionLog
    report: FilterReport
    items: ItemVocab
    users: UserVocab
    item_ids: pa.Array
    user_ids: pa.Array
    seqs: Sequences
    rows: dict[str, SplitRows]
    num_before_filters: int
    cuts: dict[str, float] = field(default_factory=dict)

    @property
    def num_interactions(self) -> int:
        """Interactions after the filters (the tokens of all sequences)."""
        return int(self.seqs.tokens.size)

    @property
    def num_train_only(self) -> int:
        """Users kept for training only (``min_history``)."""
        return 0 if self.seqs.train_only is None else int(self.seqs.train_only.sum())

    @property
    def repeat_consumption(self) -> dict[str, Any]:
        """Whether people come back to items they already had: ``{"repeat_share", "repeats"}``.

        ``repeat_share`` is the share of interactions whose item the user already had earlier (0 for ratings, where
        each item is rated once; high for listening or groceries). ``repeats`` is ``repeat_share >=``
        :data:`REPEAT_SHARE`: excluding seen items from the ranking would then forbid at least that share of the
        right answers. It is the default of ``exclude_seen`` (not ``repeats``) in training, evaluation and serving.
        """
        seqs = self.seqs
        if not seqs.tokens.size:
            return {"repeat_share": 0.0, "repeats": False}
        users = np.repeat(np.arange(seqs.num_users, dtype=np.int64), seqs.lengths)
        pairs = users * (int(seqs.tokens.max()) + 1) + seqs.tokens.astype(np.int64)
        share = 1.0 - np.unique(pairs).size / pairs.size
        return {"repeat_share": round(float(share), 6), "repeats": bool(share >= REPEAT_SHARE)}

    @property
    def user_id_type(self) -> str:
        """``int64`` or ``string``: the type the rows' ``user_id`` keeps."""
        return "int64" if pa.types.is_integer(self.user_ids.type) else "string"

    @property
    def item_id_type(self) -> str:
        return "int64" if pa.types.is_integer(self.item_ids.type) else "string"


def prepare_log(
    log: InteractionLog,
    filters: Sequence[Any],
    options: SplitOptions,
    *,
    item_vocab: Callable[[list[Any]], ItemVocab] | None = None,
    user_vocab: Callable[[list[Any]], UserVocab] | None = None,
    no_time_expected: str = NO_TIME_EXPECTED,
) -> PreparedLog:
    """Sort, filter, tokenize and split ``log``: the pipeline of every builder (see the module docstring).

    ``filters`` are :func:`~hf_recsys.data.filters.apply_filters` entries (``min_history`` last, if any).
    ``item_vocab`` / ``user_vocab`` build the vocabularies from the ascending ids (default: plain
    ``ItemVocab(ids)`` / ``UserVocab(ids)``). The temporal protocol on a log without times raises
    :class:`~hf_recsys.data.input_errors.InteractionDataError` (``no_time_expected`` says what would fix it), before
    any filter runs; a filter that leaves nothing raises its ``EmptyFilterResultError``.
    """
    log = chronological(log)
    num_raw = log.num_rows
    if options.protocol == "temporal" and not log.has_time:
        raise InteractionDataError(
            "protocol='temporal' needs a time column (the temporal protocol needs timestamps); this source has none "
            "(its order is the time order)",
            source=log.source,
            expected=no_time_expected,
        )
    log, report = apply_filters(log, filters)
    log = chronological(log)
    seqs, item_ids, user_ids = sequences(log)
    items = (item_vocab or ItemVocab)(item_ids.to_pylist())
    users = (user_vocab or UserVocab)(user_ids.to_pylist())
    n = len(item_ids)
    if items.decode(1) != item_ids[0].as_py() or items.decode(n) != item_ids[n - 1].as_py():
        raise RuntimeError("ItemVocab did not assign tokens 1..n in ascending id order")  # the tokens' contract
    rows, cuts = split_rows(seqs, options)
    return PreparedLog(log, report, items, users, item_ids, user_ids, seqs, rows, num_raw, cuts)


def split_rows(seqs: Sequences, options: SplitOptions) -> tuple[dict[str, SplitRows], dict[str, float]]:
    """The rows of ``options.protocol`` (and the temporal cuts, else ``{}``)."""
    test_frac, val_frac = options.fractions()
    if options.protocol == "leave-one-out":
        return _splits.leave_one_out(seqs), {}
    if options.protocol == "seed-windows":
        return _splits.seed_windows(
            seqs, options.window_size, options.window_step, test_frac, val_frac, options.seed
        ), {}
    if options.protocol == "temporal":
        return _splits.temporal(seqs, test_frac, val_frac)
    raise ValueError(f"unknown protocol {options.protocol!r}; expected one of {list(_splits.PROTOCOLS)}")


def sequences(log: InteractionLog) -> tuple[Sequences, pa.Array, pa.Array]:
    """Tokens (``1..n`` in ascending item id order) and per-user runs of a chronological log, plus the item and user
    ids in ascending order (token ``t`` is ``item_ids[t - 1]``, user row ``r`` is ``user_ids[r]``)."""
    table = log.table
    items_col, users_col = table[ITEM].combine_chunks(), table[USER].combine_chunks()
    uniq = pc.unique(items_col)
    item_ids = uniq.take(pc.sort_indices(uniq))
    tokens = (pc.index_in(items_col, value_set=item_ids).to_numpy() + ItemVocab.NUM_SPECIAL).astype(np.int32)
    uniq = pc.unique(users_col)
    user_ids = uniq.take(pc.sort_indices(uniq))
    codes = pc.index_in(users_col, value_set=user_ids).to_numpy()
    if codes.size > 1 and np.any(codes[1:] < codes[:-1]):
        raise RuntimeError("the log is not sorted by user (chronological() contract)")
    lengths = np.bincount(codes, minlength=len(user_ids)).astype(np.int64)
    train_only = None
    if log.train_only_users is not None and len(log.train_only_users):
        value_set = log.train_only_users.cast(user_ids.type)
        train_only = pc.is_in(user_ids, value_set=value_set).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(user_ids.type):
        ids = user_ids.to_numpy().astype(np.int64)
    else:
        ids = np.array(user_ids.to_pylist(), dtype=object)
    seqs = Sequences(
        user_ids=ids,
        offsets=np.cumsum(lengths) - lengths,
        lengths=lengths,
        tokens=tokens,
        timestamps=pc.fill_null(table[TIME], 0).to_numpy().astype(np.int64),
        train_only=train_only,
    )
    return seqs, item_ids, user_ids
