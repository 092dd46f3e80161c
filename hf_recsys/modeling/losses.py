"""Next-item losses, computed only at positions that have a label (never on padding).

Every function takes the hidden states of the labelled positions ``hidden`` (N, H), their target item tokens
``targets`` (N,) and the output item table ``item_weight`` (V, H) whose row 0 is the padding token, and returns
a scalar loss. Part of the self-contained modeling package: imports nothing from ``hf_recsys``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F


class SeenItems(NamedTuple):
    """Which classes each labelled row has already seen, to leave them out of its softmax.

    ``first_position`` (B, C) is, per history row and class, the first position at which the item occurs
    (int32 max when it does not); labelled row n comes from history row ``row[n]`` at ``position[n]``, so it
    has seen class c iff ``first_position[row[n], c] <= position[n]``. O(B x C) memory instead of O(N x C).
    """

    first_position: torch.Tensor
    row: torch.Tensor
    position: torch.Tensor

    @classmethod
    def from_histories(
        cls, input_ids: torch.Tensor, selected: torch.Tensor, num_tokens: int, offset: int = 0
    ) -> SeenItems:
        """From (B, L) item tokens in [0, num_tokens) (0 = padding, not a class) and the (B, L + offset) bool
        mask of labelled positions, where labelled position t has read ``input_ids[:, : t + 1 - offset]``."""
        b, length = input_ids.shape
        positions = torch.arange(offset, length + offset, dtype=torch.int32, device=input_ids.device)
        first = torch.full((b, num_tokens), torch.iinfo(torch.int32).max, dtype=torch.int32, device=input_ids.device)
        first.scatter_reduce_(1, input_ids.long(), positions.expand(b, -1), reduce="amin")
        row, position = selected.nonzero(as_tuple=True)
        return cls(first[:, 1:], row, position.to(torch.int32))

    def mask(self) -> torch.Tensor:
        """(N, C) bool: True where labelled row n has already seen the class."""
        return self.first_position[self.row] <= self.position[:, None]


def _cross_entropy_chunk(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    target_weights: torch.Tensor,
    seen: SeenItems | None = None,
    row_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed ``log Z - sum_k w_k z_k`` of one chunk of rows and its gradients w.r.t. ``hidden`` and ``weight``.

    ``targets`` (n, k) are class indices and ``target_weights`` (n, k) their share of each row's target
    distribution (k = 1 with weight 1 is the plain next-item cross-entropy). Rows may sum to s < 1: label
    smoothing passes (1 - eps) and adds its eps share outside (see `_mean_logit_in_softmax`). ``seen`` (for these
    n rows) leaves the classes each row has already seen out of its softmax. ``row_weights`` (n,) scales each
    row's loss (and its gradients).
    """
    logits = hidden @ weight.t()
    if seen is not None:  # computed here so that torch.compile fuses it into the pass over the logits
        logits = logits.masked_fill(_excluded(seen, targets, target_weights), -torch.inf)
    shift = logits.amax(dim=1, keepdim=True)
    logits = logits - shift
    # where() rather than a product: a weight-0 filler target may be an excluded class (-inf), and -inf * 0 = nan
    target_logit = torch.where(target_weights > 0, logits.gather(1, targets) * target_weights, 0.0).sum(1)
    exp = logits.exp()
    sum_exp = exp.sum(dim=1, keepdim=True)
    # the shift cancels only where the target weights sum to 1: add back what it took from the rest
    nll = sum_exp.log().squeeze(1) - target_logit + (1.0 - target_weights.sum(1)) * shift.squeeze(1)
    # d loss / d logits = softmax - target distribution
    grad = (exp / sum_exp).scatter_add(1, targets, -target_weights)
    if row_weights is not None:
        nll = nll * row_weights
        grad = grad * row_weights[:, None]
    return nll.sum(), grad @ weight, grad.t() @ hidden


def _mean_logit_in_softmax(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    target_weights: torch.Tensor,
    seen: SeenItems | None,
) -> torch.Tensor:
    """(N,) mean logit over the classes in each row's softmax, by autograd, without the (N, C) logits.

    Label smoothing's share is ``eps * (log Z - mean logit)``; the chunks compute ``log Z``. The mean is
    ``hidden . (sum of the rows of weight in the softmax) / their count``. Without ``seen`` that sum is the
    whole table's. With it, the classes a row has seen come off: each history's items are added up in the
    order they first occur (a cumulative sum over positions), so row n reads its prefix sum at its position,
    and its targets that it has seen are added back (they stay in the softmax). O(B x L x H), where masking the
    logits costs as much as the cross-entropy itself.
    """
    total = weight.sum(0)
    if seen is None:
        return hidden @ total / weight.shape[0]
    first = seen.first_position
    rows = seen.row.long()
    positions = seen.position.long()
    num_positions = int(positions.max()) + 1
    history, item = (first < num_positions).nonzero(as_tuple=True)
    first_at = first[history, item].long()
    # each first read adds its output row and a 1 (the count) at its position; the prefix sums are what row n read
    added = torch.cat([weight[item], hidden.new_ones(item.shape[0], 1)], 1)
    read = hidden.new_zeros(first.shape[0], num_positions, weight.shape[1] + 1)
    read = read.index_put((history, first_at), added, accumulate=True).cumsum(1)[rows, positions]
    read, count = read[:, :-1], read[:, -1]
    kept = (target_weights > 0) & (first[rows[:, None], targets] <= positions[:, None])
    if targets.shape[1] > 1:  # a class listed twice among a row's targets comes back once
        kept = kept & ~((targets[:, :, None] == targets[:, None, :]) & kept[:, None, :]).tril(-1).any(2)
    kept = kept.to(hidden.dtype)
    in_softmax = total - read + (kept[:, :, None] * weight[targets]).sum(1)
    return (hidden * in_softmax).sum(1) / (weight.shape[0] - count + kept.sum(1))


_compiled_chunk = None


def compile_cross_entropy(enabled: bool = True) -> None:
    """Run the cross-entropy chunks through ``torch.compile`` (fuses the softmax passes; ~2-3x faster on
    CPU, after a one-off compilation of ~30-60 s). Training turns this on; tests and inference leave it off."""
    global _compiled_chunk
    _compiled_chunk = torch.compile(_cross_entropy_chunk, dynamic=True) if enabled else None


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Mean softmax cross-entropy of ``hidden @ weight.T`` whose gradients are computed in the forward pass.

    The (N, V) logits never exist at once: each chunk of rows is scored, turned into probabilities and
    immediately multiplied back into the gradients of ``hidden`` and ``weight`` while it is still in cache.
    Backward only rescales the stored gradients. Memory is O(chunk x V) instead of O(N x V).
    """

    @staticmethod
    def forward(
        ctx,
        hidden,
        weight,
        targets,
        target_weights,
        chunk_size: int,
        seen=None,
        row_weights=None,
    ):
        chunk_fn = _compiled_chunk or _cross_entropy_chunk
        n = hidden.shape[0]
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight)
        total = hidden.new_zeros(())
        for start in range(0, n, chunk_size):
            rows = slice(start, start + chunk_size)
            chunk_seen = None if seen is None else seen._replace(row=seen.row[rows], position=seen.position[rows])
            chunk_row_weights = None if row_weights is None else row_weights[rows]
            loss, grad_h, grad_w = chunk_fn(
                hidden[rows],
                weight,
                targets[rows],
                target_weights[rows],
                chunk_seen,
                chunk_row_weights,
            )
            total += loss
            grad_hidden[rows] = grad_h
            grad_weight += grad_w
        ctx.save_for_backward(grad_hidden / n, grad_weight / n)
        return total / n

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_output, grad_weight * grad_output, None, None, None, None, None


def _excluded(seen: SeenItems, targets: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
    """(n, C) bool: the classes each row has seen, minus its targets (weight > 0): a target must stay in the
    softmax, or its probability would be 0 (on data with repeats a target can be a seen item)."""
    classes = torch.arange(seen.first_position.shape[1], device=targets.device)
    is_target = ((targets[:, :, None] == classes) & (target_weights[:, :, None] > 0)).any(1)
    return seen.mask() & ~is_target


def full_cross_entropy(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    label_smoothing: float = 0.0,
    chunk_size: int | None = None,
    target_weights: torch.Tensor | None = None,
    seen: SeenItems | None = None,
    row_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy over the whole catalogue (SASRec+ / "CE" in the literature; the default).

    Exact and the strongest loss on catalogues of a few thousand items. The padding row is not a class.
    ``targets`` is (N,) item tokens, or (N, k) tokens with ``target_weights`` (N, k) summing to 1 per row: a
    target distribution over several items (see `future_targets`); token 0 entries must have weight 0.
    Computed chunk by chunk with gradients fused into the forward pass (see `_ChunkedLinearCrossEntropy`);
    chunks hold about 4M logits (1,024 rows for ML-1M). Without gradients (evaluation) the same value is
    computed from the full logits. With ``seen``, each row's softmax leaves out the items its history already
    holds (its targets excepted): the loss then matches evaluation, which never ranks seen items. With
    ``row_weights`` (N,) >= 0 the result is the weighted mean of the rows' losses.
    """
    weight = item_weight[1:]
    if row_weights is not None:  # rescaled to mean 1, so that the weighted mean is a plain mean of scaled rows
        row_weights = (row_weights * (row_weights.numel() / row_weights.sum().clamp_min(1e-12))).to(hidden.dtype)
    if targets.dim() == 1:
        targets = targets[:, None]
    if target_weights is None:
        if targets.shape[1] != 1:
            raise ValueError("several targets per row need target_weights")
        target_weights = torch.ones(targets.shape, dtype=hidden.dtype, device=hidden.device)
    classes = (targets - 1).clamp_min(0)
    if not (torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)):
        logits = hidden @ weight.t()
        excluded = None if seen is None else _excluded(seen, classes, target_weights)
        if excluded is not None:
            logits = logits.masked_fill(excluded, -torch.inf)
        log_p = logits.log_softmax(-1)
        nll = -torch.where(target_weights > 0, log_p.gather(1, classes) * target_weights, 0.0).sum(1)
        if label_smoothing:
            in_softmax = torch.ones_like(log_p, dtype=torch.bool) if excluded is None else ~excluded
            mean_log_p = log_p.masked_fill(~in_softmax, 0.0).sum(1) / in_softmax.sum(1)
            nll = (1 - label_smoothing) * nll - label_smoothing * mean_log_p
        return (nll if row_weights is None else nll * row_weights).mean()
    if chunk_size is None:
        chunk_size = max(64, min(1024, (1 << 22) // weight.shape[0]))
    target_weights = target_weights.to(hidden.dtype)
    loss = _ChunkedLinearCrossEntropy.apply(
        hidden, weight, classes, target_weights * (1 - label_smoothing), chunk_size, seen, row_weights
    )
    if label_smoothing:  # the smoothing's - eps * mean logit; its eps * log Z is in the chunks
        mean_logit = _mean_logit_in_softmax(hidden, weight, classes, target_weights, seen)
        loss = loss - label_smoothing * (mean_logit if row_weights is None else mean_logit * row_weights).mean()
    return loss


def future_targets(labels: torch.Tensor, window: int, decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The next `window` items after each position as a weighted target distribution.

    ``labels`` (B, L) holds the next item of each position (-100 = none). Returns (B, L, window) tokens (0
    where the history ends) and weights proportional to ``decay ** j`` over the items that exist, summing to
    1 per position. Position t is thus trained to put most mass on the item right after it and some on the
    few after that: people who rate films often rate them in batches whose order within a session is arbitrary, so the
    next few items are a less noisy target than the single next one.
    """
    padded = torch.cat([labels, labels.new_full((labels.shape[0], window - 1), -100)], dim=1)
    tokens = padded.unfold(1, window, 1)  # (B, L, window): labels[t], labels[t+1], ...
    valid = tokens != -100
    weights = decay ** torch.arange(window, dtype=torch.float32, device=labels.device) * valid
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    return tokens.masked_fill(~valid, 0), weights


def recency_weights(labels: torch.Tensor, half_life: float) -> torch.Tensor:
    """(B, L) weight of each labelled position (0 where ``labels`` is -100): 0.5 ** (d / half_life), with d the
    number of labelled positions after it in its row (0 for the last target of each history).

    Evaluation scores one next item per user, after the whole history. Decaying the weight of older targets
    moves the training signal to the end of each history and evens out long and short histories, which a
    plain mean over positions weighs by their length.
    """
    labelled = labels != -100
    after = labelled.flip(1).long().cumsum(1).flip(1) - 1  # labelled positions at or after t, minus t itself
    return torch.where(labelled, torch.exp2(-after.float() / half_life), 0.0)


def sampling_log_probs(num_tokens: int, item_counts: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """Log-probability (V,) of drawing each token as a negative: uniform over items 1..V-1, or proportional to
    ``item_counts`` (smoothed so every item can be drawn). Token 0 (padding) gets -inf."""
    if item_counts is None or float(item_counts[1:].sum()) <= 0:
        log_probs = torch.full((num_tokens,), -math.log(num_tokens - 1), device=device)
    else:
        probs = item_counts.float().clamp_min(0)
        probs = probs + probs[1:].sum() * 1e-6 / (num_tokens - 1)
        log_probs = (probs / probs[1:].sum()).log()
    log_probs[0] = -math.inf
    return log_probs


def sampled_softmax(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    num_negatives: int,
    item_counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax over the positive and ``num_negatives`` negatives shared by the batch, with logQ correction.

    Costs N x (1 + K) logits instead of N x V, so it trains catalogues of 100k+ items; subtracting
    log q(item) from every logit makes the sampled softmax an unbiased estimate of the full one's gradient
    (Bengio & Senecal; Yi et al. 2019). Negatives that happen to equal a row's positive are masked out.
    """
    log_q = sampling_log_probs(item_weight.shape[0], item_counts, hidden.device)
    negatives = torch.multinomial(log_q.exp(), num_negatives, replacement=True)
    pos_logits = (hidden * item_weight[targets]).sum(-1) - log_q[targets]
    neg_logits = hidden @ item_weight[negatives].t() - log_q[negatives]
    neg_logits = neg_logits.masked_fill(negatives[None, :] == targets[:, None], torch.finfo(hidden.dtype).min)
    logits = torch.cat([pos_logits[:, None], neg_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(targets))


def binary_cross_entropy(hidden: torch.Tensor, targets: torch.Tensor, item_weight: torch.Tensor) -> torch.Tensor:
    """Original SASRec loss: the positive against one uniformly drawn negative per position."""
    negatives = torch.randint(1, item_weight.shape[0], targets.shape, device=hidden.device)
    pos = (hidden * item_weight[targets]).sum(-1)
    neg = (hidden * item_weight[negatives]).sum(-1)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg)).mean() / 2


def gbce(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_weight: torch.Tensor,
    num_negatives: int,
    t: float,
) -> torch.Tensor:
    """gSASRec's generalised BCE (Petrov & Macdonald, RecSys 2023).

    With sampling rate alpha = K / (V - 1), the positive's probability is raised to the power
    beta = alpha * (t * (1 - 1/alpha) + 1/alpha), which undoes the overconfidence that negative sampling
    causes in plain BCE. Negatives are shared by the batch (one matrix product instead of N x K gathers).
    """
    num_items = item_weight.shape[0] - 1
    k = min(num_negatives, num_items)
    negatives = torch.randint(1, item_weight.shape[0], (k,), device=hidden.device)
    alpha = min(k / max(num_items - 1, 1), 1.0)  # a sampling rate: above 1 would make beta > 1 (over-correction)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    pos = (hidden * item_weight[targets]).sum(-1)
    neg = hidden @ item_weight[negatives].t()
    neg_loss = -F.logsigmoid(-neg).masked_fill(negatives[None, :] == targets[:, None], 0.0)
    return (-beta * F.logsigmoid(pos) + neg_loss.sum(-1)).mean() / (1 + k)
