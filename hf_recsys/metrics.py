"""Full-ranking evaluation of next-item recommendation: NDCG@k, HR@k (= Recall@k), MRR@k and coverage@k.

Protocol: every history has exactly one relevant item (its next item, the "target"); the model ranks the whole
catalogue, the padding token and (by default) the items already in the history are removed, and only the top-k ids
are kept. With a single relevant item the metrics reduce to functions of the target's 1-based rank `r` in the list:

- ``hr@k``   = 1 if r <= k else 0 (hit rate; equal to Recall@k because there is one relevant item),
- ``ndcg@k`` = 1 / log2(r + 1) if r <= k else 0 (the ideal DCG is 1),
- ``mrr@k``  = 1 / r if r <= k else 0,
- ``coverage@k`` = number of distinct items in any top-k list / num_items (a catalogue-level number, not per user).

Everything here is vectorised numpy/torch (a full ML-1M evaluation is a few milliseconds once the top-k ids exist).
Two adapters plug it into `transformers.Trainer`: `make_preprocess_logits_for_metrics` turns the (B, V) logits
into (B, k) ids on the device, batch by batch, so the Trainer never stores full score matrices, and
`make_compute_metrics` turns the gathered ids and targets into the metric dictionary.

This module imports only numpy and torch: `import evaluate` costs seconds, and transformers is not needed for
the computation itself (the `evaluate` metric lives in `hf_recsys.evaluate_metric`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "IGNORE_INDEX",
    "KS",
    "exclude_items",
    "make_compute_metrics",
    "make_preprocess_logits_for_metrics",
    "per_user_metrics",
    "ranking_metrics",
    "target_ranks",
    "top_k_excluding_seen",
]

KS: tuple[int, ...] = (1, 5, 10, 20)
"""Cut-offs reported by default (see docs/INTERFACES.md, "Metric names")."""

IGNORE_INDEX = -100
"""Padding value used by the Trainer (and `accelerate`) for labels and for rows added when gathering."""

PER_USER_NAMES = ("ndcg", "hr", "mrr")
"""Metrics that are an average over users (coverage is catalogue-level and has no per-user value)."""


def _to_numpy(x: Any) -> np.ndarray:
    """A numpy view of a numpy array, a torch tensor (any device) or a nested list."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Validate the cut-offs: a non-empty sequence of positive integers (duplicates removed, order kept)."""
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must hold at least one cut-off")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"every cut-off in ks must be a positive integer, got {k!r} in {ks!r}")
    return tuple(dict.fromkeys(int(k) for k in ks))


def _check_inputs(top_items: Any, targets: Any, num_items: int | None, max_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert the ranking inputs; raise ValueError with a message naming the problem."""
    top = _to_numpy(top_items)
    tgt = _to_numpy(targets)
    if top.ndim != 2:
        raise ValueError(f"top_items must be 2-D (num_users, K) item ids, got shape {top.shape}")
    if not np.issubdtype(top.dtype, np.integer):
        raise ValueError(f"top_items must hold integer item ids, got dtype {top.dtype}")
    if tgt.ndim == 2 and tgt.shape[1] == 1:
        tgt = tgt[:, 0]
    if tgt.ndim != 1:
        raise ValueError(f"targets must be 1-D (num_users,) item ids, got shape {tgt.shape}")
    if not np.issubdtype(tgt.dtype, np.integer):
        raise ValueError(f"targets must hold integer item ids, got dtype {tgt.dtype}")
    if top.shape[0] != tgt.shape[0]:
        raise ValueError(
            f"top_items has {top.shape[0]} rows but targets has {tgt.shape[0]}: one target per ranked list is needed"
        )
    if top.shape[1] < max_k:
        raise ValueError(
            f"top_items keeps only {top.shape[1]} items per row but metrics at k={max_k} are requested: "
            f"keep at least {max_k} (e.g. make_preprocess_logits_for_metrics(k={max_k}))"
        )
    if num_items is not None:
        if isinstance(num_items, bool) or not isinstance(num_items, int | np.integer) or num_items < 1:
            raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
        if top.size and int(top.max()) > num_items:
            raise ValueError(
                f"top_items holds item id {int(top.max())} but the catalogue has num_items={num_items} "
                "(item tokens are 1..num_items; num_items excludes the padding token)"
            )
        if tgt.size and int(tgt.max()) > num_items:
            raise ValueError(f"targets holds item id {int(tgt.max())} but the catalogue has num_items={num_items}")
    if tgt.size and int(tgt.min()) < 1:
        bad = int(tgt.min())
        hint = " (padding rows: drop targets equal to -100 first)" if bad == IGNORE_INDEX else ""
        raise ValueError(f"targets must be item tokens >= 1 (0 is the padding token), got {bad}{hint}")
    return top, tgt


def target_ranks(top_items: Any, targets: Any, max_k: int | None = None) -> np.ndarray:
    """1-based position of each target in its top list (first occurrence), 0 when it is not in the first `max_k`.

    Why the first occurrence: lists are assumed to hold each item once, but if one ever repeats the target the
    user still counts as one hit at the better position, never twice.
    """
    top = _to_numpy(top_items)
    tgt = _to_numpy(targets).reshape(-1)
    if max_k is not None:
        top = top[:, :max_k]
    hits = top == tgt[:, None]
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1) + 1, 0).astype(np.int64)


def per_user_metrics(
    top_items: Any,
    targets: Any,
    num_items: int | None = None,
    ks: Sequence[int] = KS,
) -> dict[str, np.ndarray]:
    """Per-user NDCG@k, HR@k and MRR@k as (N,) float64 arrays, keyed like `ranking_metrics` (``ndcg@10``, ...).

    Why per user: under distributed or batched evaluation the averages must be taken exactly once over all users
    (summing per-batch means would weight small batches too much); these arrays can be concatenated first.

    Args:
        top_items: (N, K) integer item ids, best first, K >= max(ks). Negative ids (e.g. -1 for "no item left")
            and the padding token 0 never match a target.
        targets: (N,) integer item tokens, each >= 1 (and <= num_items when given).
        num_items: catalogue size (item tokens are 1..num_items); only used to validate the ids here.
        ks: cut-offs.
    """
    ks = _check_ks(ks)
    top, tgt = _check_inputs(top_items, targets, num_items, max(ks))
    ranks = target_ranks(top, tgt, max(ks))
    found = ranks > 0
    safe = np.where(found, ranks, 1).astype(np.float64)
    gain = np.where(found, 1.0 / np.log2(safe + 1.0), 0.0)
    reciprocal = np.where(found, 1.0 / safe, 0.0)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        within = found & (ranks <= k)
        out[f"ndcg@{k}"] = np.where(within, gain, 0.0)
        out[f"hr@{k}"] = within.astype(np.float64)
        out[f"mrr@{k}"] = np.where(within, reciprocal, 0.0)
    return out


def coverage(top_items: Any, num_items: int, k: int = 10) -> float:
    """Share of the catalogue (items 1..num_items) that appears in at least one top-`k` list.

    The padding token 0 and negative "no item" ids are not items and are not counted.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"coverage_k must be a positive integer, got {k!r}")
    top = _to_numpy(top_items)
    if top.ndim != 2 or top.shape[1] < k:
        raise ValueError(f"coverage@{k} needs (N, K>={k}) top lists, got shape {top.shape}")
    head = top[:, :k].reshape(-1)
    head = head[(head >= 1) & (head <= num_items)]
    return float(np.unique(head).size / num_items)


def ranking_metrics(
    top_items: Any,
    targets: Any,
    num_items: int | None,
    ks: Sequence[int] = KS,
    coverage_k: int | None = 10,
    return_per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """Mean NDCG@k, HR@k, MRR@k over users for each k in `ks`, plus ``coverage@{coverage_k}``.

    Args:
        top_items: (N, K) integer item ids per user, best first, K >= max(ks) (and >= coverage_k). Each row is
            assumed to hold distinct items; -1 may fill slots for which no item was left (never a hit).
        targets: (N,) the next item of each history (tokens 1..num_items). Rows padded with -100 must be removed
            by the caller (`make_compute_metrics` does this); they raise here rather than count as misses.
        num_items: catalogue size, the denominator of coverage. None skips coverage and the id range checks.
        ks: cut-offs; keys are ``ndcg@k``, ``hr@k``, ``mrr@k`` in this order for each k.
        coverage_k: cut-off of the coverage metric; None skips it.
        return_per_user: also return the per-user arrays of `per_user_metrics`.

    Returns:
        {"ndcg@1": ..., "hr@1": ..., "mrr@1": ..., ..., "coverage@10": ...} as Python floats, and with
        `return_per_user` a second dict of (N,) arrays.

    Raises:
        ValueError: wrong shapes or dtypes, too few items per row for the cut-offs, ids outside the catalogue,
            targets < 1, or no rows at all (a mean over zero users is undefined).
    """
    per_user = per_user_metrics(top_items, targets, num_items=num_items, ks=ks)
    n = len(next(iter(per_user.values())))
    if n == 0:
        raise ValueError("no rows to evaluate: ranking metrics are averages over at least one user")
    result = {name: float(values.mean()) for name, values in per_user.items()}
    if coverage_k is not None and num_items is not None:
        result[f"coverage@{coverage_k}"] = coverage(top_items, num_items, coverage_k)
    if return_per_user:
        return result, per_user
    return result


def exclude_items(scores: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """A copy of `scores` (B, V) with -inf at the padding token (column 0) and at every item token of `seen`.

    Args:
        scores: (B, V) scores over the vocabulary (column 0 = padding token, columns 1..V-1 = items).
        seen: (B, L) integer item tokens per row, e.g. each user's whole history. 0 and negative entries (-100 is
            what the Trainer and `accelerate` pad with across batches and processes) are padding and ignored.

    The input tensor is not modified; integer scores come back as float.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (batch, vocab_size), got shape {tuple(scores.shape)}")
    batch, vocab = scores.shape
    if seen.ndim != 2 or seen.shape[0] != batch:
        raise ValueError(
            f"seen must be (batch={batch}, L) history tokens, got shape {tuple(seen.shape)} "
            f"for scores of shape {tuple(scores.shape)}"
        )
    if seen.is_floating_point() or seen.is_complex() or seen.dtype == torch.bool:
        raise ValueError(f"seen must hold integer item tokens, got dtype {seen.dtype}")
    masked = scores.float().clone() if not scores.is_floating_point() else scores.clone()
    masked[:, 0] = -torch.inf
    if seen.numel():
        top_seen = int(seen.max())
        if top_seen >= vocab:
            raise ValueError(f"seen holds item token {top_seen} but scores have only {vocab} columns")
        # Padding (0, -100, any negative) is mapped to column 0, which is masked anyway.
        masked.scatter_(1, seen.to(device=masked.device, dtype=torch.long).clamp_min(0), -torch.inf)
    return masked


def top_k_excluding_seen(
    scores: torch.Tensor,
    seen: torch.Tensor | None,
    k: int,
    exclude_seen: bool = True,
) -> torch.Tensor:
    """Ids of the `k` best-scored items per row, never the padding token and, by default, never a seen item.

    Args:
        scores: (B, V) scores over the vocabulary (column 0 = padding token, columns 1..V-1 = items).
        seen: (B, L) integer history tokens. 0 and negative entries (-100 is what the Trainer and `accelerate`
            pad with across batches and processes) are padding and ignored. May be None when `exclude_seen` is False.
        k: how many ids to keep per row (1 <= k <= V).
        exclude_seen: remove the items of the history (the standard full-ranking protocol for next-item
            recommendation); False keeps them, e.g. for re-consumption data sets.

    Returns:
        (B, k) int64 ids on the device of `scores`, best first. A slot for which no eligible item is left (a history
        covering nearly the whole catalogue) holds -1, so it can never count as a hit.

    The input tensor is not modified.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (batch, vocab_size), got shape {tuple(scores.shape)}")
    batch, vocab = scores.shape
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k > vocab:
        raise ValueError(f"k={k} is larger than the number of scored tokens ({vocab})")
    if exclude_seen and seen is None:
        raise ValueError("exclude_seen=True needs the histories (seen); pass exclude_seen=False to keep them")
    nothing = torch.zeros((batch, 0), dtype=torch.long)
    masked = exclude_items(scores, seen if exclude_seen else nothing)  # the padding token is always excluded
    values, ids = masked.topk(k, dim=1)
    return ids.masked_fill(values == -torch.inf, -1)


def _first_tensor(x: Any) -> Any:
    """The first element of a (possibly nested) tuple/list, else `x` itself (model outputs and label tuples)."""
    while isinstance(x, tuple | list):
        if not x:
            raise ValueError("expected a tensor or a non-empty tuple of tensors, got an empty sequence")
        x = x[0]
    return x


def make_preprocess_logits_for_metrics(
    k: int = 20, exclude_seen: bool = True, rankable_items: int | None = None
) -> Callable[[Any, Any], torch.Tensor]:
    """A `Trainer(preprocess_logits_for_metrics=...)` function keeping only the top-`k` item ids of each batch.

    Why: the Trainer would otherwise accumulate (N, V) float logits (6,040 x 3,417 for ML-1M, and far more for
    larger catalogues); ids are (N, k) integers and ranking happens on the device batch by batch.

    The returned function takes `(logits, labels)` where
      - `logits` is the (B, V) next-item score tensor, or a tuple whose first element is it (model outputs with
        hidden states); a (B, T, V) tensor is accepted and its last position is used;
      - `labels` is what the Trainer collects for `label_names`. `label_names=["labels", "input_ids"]` gives
        `(targets (B,), input_ids (B, L))`: the histories are needed to exclude seen items. With
        `exclude_seen=False` a bare targets tensor is fine too (the package's own `NextItemTrainer` takes the whole
        histories out of the scores before this function, and uses it with `exclude_seen=False`).

    With `rankable_items`, only item tokens 1..rankable_items can be recommended: a model grown with rows for
    movies it never learnt (evaluated on other data) must not rank them.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if rankable_items is not None and (
        isinstance(rankable_items, bool) or not isinstance(rankable_items, int) or rankable_items < 1
    ):
        raise ValueError(f"rankable_items must be a positive integer or None, got {rankable_items!r}")

    def preprocess_logits_for_metrics(logits: Any, labels: Any) -> torch.Tensor:
        scores = _first_tensor(logits)
        if not isinstance(scores, torch.Tensor):
            raise ValueError(f"logits must be a tensor or a tuple starting with one, got {type(scores).__name__}")
        if scores.ndim == 3:
            scores = scores[:, -1, :]
        if rankable_items is not None:
            scores = scores.clone()
            scores[:, rankable_items + 1 :] = -torch.inf
        seen = None
        if exclude_seen:
            if not isinstance(labels, tuple | list) or len(labels) < 2:
                raise ValueError(
                    "excluding seen items needs the histories: set TrainingArguments(label_names=['labels', "
                    "'input_ids']) so labels arrive as (targets, input_ids), or use exclude_seen=False"
                )
            seen = labels[1]
        return top_k_excluding_seen(scores, seen, k=k, exclude_seen=exclude_seen)

    return preprocess_logits_for_metrics


def _targets_from_label_ids(label_ids: Any) -> np.ndarray:
    """The (N,) targets out of the Trainer's `label_ids`: a tuple (targets, input_ids, ...) or the targets alone."""
    if isinstance(label_ids, tuple | list):
        if not label_ids:
            raise ValueError("label_ids is an empty tuple: the targets are missing")
        label_ids = label_ids[0]
    tgt = _to_numpy(label_ids)
    if tgt.ndim == 2 and tgt.shape[1] == 1:
        tgt = tgt[:, 0]
    if tgt.ndim != 1:
        raise ValueError(
            f"expected one target per row (shape (N,)), got label_ids of shape {tgt.shape}: evaluate with 1-D "
            "next-item labels, not per-position training labels"
        )
    return tgt


def make_compute_metrics(
    num_items: int, ks: Sequence[int] = KS, coverage_k: int | None = 10
) -> Callable[..., dict[str, float]]:
    """A `Trainer(compute_metrics=...)` function: ranking metrics from gathered top-k ids and targets.

    `eval_pred.predictions` are the (N, K) ids of `make_preprocess_logits_for_metrics` (or a tuple starting with
    them); `eval_pred.label_ids` is `(targets, input_ids)` or the targets alone. Rows whose target is -100 (padding
    added when gathering across processes) are dropped before averaging, so each user counts exactly once.

    Also works with `TrainingArguments(batch_eval_metrics=True)`: the Trainer then calls it per batch with
    `compute_result=False` (per-user values are accumulated, an empty dict is returned) and with
    `compute_result=True` on the last batch (the averages over all accumulated users are returned and the state is
    reset for the next evaluation).
    """
    ks = _check_ks(ks)
    pending_ids: list[np.ndarray] = []
    pending_targets: list[np.ndarray] = []

    def rows(eval_pred: Any) -> tuple[np.ndarray, np.ndarray]:
        top = _to_numpy(_first_tensor(eval_pred.predictions))
        tgt = _targets_from_label_ids(eval_pred.label_ids)
        if top.ndim != 2 or top.shape[0] != tgt.shape[0]:
            raise ValueError(
                f"predictions of shape {top.shape} do not match {tgt.shape[0]} targets: "
                "expected (N, K) top-k ids from make_preprocess_logits_for_metrics"
            )
        keep = tgt != IGNORE_INDEX
        return top[keep], tgt[keep]

    def compute_metrics(eval_pred: Any, compute_result: bool | None = None) -> dict[str, float]:
        if compute_result is None:
            top, tgt = rows(eval_pred)
            return ranking_metrics(top, tgt, num_items, ks=ks, coverage_k=coverage_k)
        top, tgt = rows(eval_pred)
        pending_ids.append(top)
        pending_targets.append(tgt)
        if not compute_result:
            return {}
        try:
            return ranking_metrics(
                np.concatenate(pending_ids), np.concatenate(pending_targets), num_items, ks=ks, coverage_k=coverage_k
            )
        finally:
            pending_ids.clear()
            pending_targets.clear()

    return compute_metrics
