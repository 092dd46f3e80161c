"""The next-item losses on constructed inputs: exact values, gradients and the sampling corrections."""

import math

import pytest
import torch
import torch.nn.functional as F

from hf_recsys.modeling import losses

pytestmark = pytest.mark.usefixtures("single_thread")


def _inputs(n=37, hidden=8, vocab=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=g, dtype=torch.float64)
    w = torch.randn(vocab, hidden, generator=g, dtype=torch.float64)
    targets = torch.randint(1, vocab, (n,), generator=g)
    return h, w, targets


def _ran_fused(loss):
    """Whether the chunked autograd function is in the loss's graph (not the no-grad fallback)."""
    pending, visited = [loss.grad_fn], set()
    while pending:
        node = pending.pop()
        if node is None or node in visited:
            continue
        if "_ChunkedLinearCrossEntropy" in type(node).__name__:
            return True
        visited.add(node)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return False


def _cos(a, b):
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_size", [1, 5, 7, 1000])
def test_chunked_cross_entropy_equals_f_cross_entropy(label_smoothing, chunk_size):
    h, w, targets = _inputs()
    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    fused = losses.full_cross_entropy(h1, targets, w1, label_smoothing=label_smoothing, chunk_size=chunk_size)
    assert _ran_fused(fused)  # the fused path ran, not the fallback
    (2.5 * fused).backward()  # a non-unit upstream gradient must scale the stored gradients

    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()
    reference = F.cross_entropy(h2 @ w2[1:].t(), targets - 1, label_smoothing=label_smoothing)
    (2.5 * reference).backward()

    torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)
    assert torch.equal(w1.grad[0], torch.zeros_like(w1.grad[0]))  # the padding row is not a class


def test_full_cross_entropy_without_gradients_uses_plain_path():
    h, w, targets = _inputs()
    with torch.no_grad():
        value = losses.full_cross_entropy(h, targets, w, label_smoothing=0.1)
    torch.testing.assert_close(value, F.cross_entropy(h @ w[1:].t(), targets - 1, label_smoothing=0.1))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_size", [4, 1000])
def test_chunked_cross_entropy_with_target_distribution(label_smoothing, chunk_size):
    """Several weighted targets per row equal the cross-entropy against that soft distribution (autograd)."""
    h, w, _ = _inputs()
    g = torch.Generator().manual_seed(1)
    targets = torch.randint(1, w.shape[0], (h.shape[0], 3), generator=g)
    targets[::4, 2] = 0  # a history that ends: no third item, weight 0
    weights = torch.rand(targets.shape, generator=g, dtype=torch.float64) * (targets != 0)
    weights = weights / weights.sum(1, keepdim=True)

    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    fused = losses.full_cross_entropy(h1, targets, w1, label_smoothing, chunk_size, target_weights=weights)
    assert _ran_fused(fused)
    fused.backward()

    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()
    soft = torch.zeros(h.shape[0], w.shape[0] - 1, dtype=torch.float64)
    soft.scatter_add_(1, (targets - 1).clamp_min(0), weights)
    reference = F.cross_entropy(h2 @ w2[1:].t(), soft, label_smoothing=label_smoothing)
    reference.backward()

    torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # the evaluation path gives the same value
        plain = losses.full_cross_entropy(h, targets, w, label_smoothing, target_weights=weights)
    torch.testing.assert_close(plain, reference.detach(), rtol=1e-10, atol=1e-12)


def _seen_reference(h, w, targets, weights, histories, positions, label_smoothing, row_weights=None):
    """Autograd cross-entropy where row n's softmax leaves out the items of ``histories[n][: positions[n] + 1]``
    except its own targets; with ``row_weights``, the weighted mean over rows."""
    logits = h @ w[1:].t()
    excluded = torch.zeros_like(logits, dtype=torch.bool)
    for n, (history, t) in enumerate(zip(histories, positions)):
        for item in history[: t + 1]:
            if item:
                excluded[n, item - 1] = True
        for item, weight in zip(targets[n].tolist(), weights[n].tolist()):
            if weight > 0:
                excluded[n, item - 1] = False
    log_p = logits.masked_fill(excluded, -torch.inf).log_softmax(-1)
    picked = log_p.gather(1, (targets - 1).clamp_min(0))
    nll = -torch.where(weights > 0, picked * weights, 0.0).sum(1)
    if label_smoothing:
        mean_log_p = log_p.masked_fill(excluded, 0.0).sum(1) / (~excluded).sum(1)
        nll = (1 - label_smoothing) * nll - label_smoothing * mean_log_p
    return nll.mean() if row_weights is None else (nll * row_weights).sum() / row_weights.sum()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_size", [3, 1000])
@pytest.mark.parametrize("window", [1, 2])
@pytest.mark.parametrize("half_life", [0.0, 1.5])
def test_cross_entropy_leaving_seen_items_out_of_the_softmax(label_smoothing, chunk_size, window, half_life):
    """`seen` removes each position's already-read items from its softmax, but never its own targets (the data
    below repeats items, so a target can be a seen item); gradients and the no-grad path agree with autograd,
    also as a weighted mean over rows (recency weights)."""
    g = torch.Generator().manual_seed(2)
    vocab, hidden = 9, 6
    histories = torch.randint(1, vocab, (4, 7), generator=g)  # small catalogue: many repeats
    histories[1, 5:] = 0  # right padding
    histories[2, :3] = 0  # left padding
    labels = torch.roll(histories, -1, 1).masked_fill(torch.roll(histories, -1, 1) == 0, -100)
    labels[:, -1] = -100
    labels[histories == 0] = -100
    selected = labels != -100
    tokens, weights = losses.future_targets(labels, window, 0.5)
    tokens, weights = tokens[selected], weights[selected].double()
    weights = weights / weights.sum(1, keepdim=True)  # exactly 1 per row in float64
    rows, positions = selected.nonzero(as_tuple=True)
    seen = losses.SeenItems.from_histories(histories, selected, vocab)
    assert seen.mask().shape == (int(selected.sum()), vocab - 1)
    row_weights = losses.recency_weights(labels, half_life)[selected].double() if half_life else None

    h = torch.randn(len(rows), hidden, generator=g, dtype=torch.float64)
    w = torch.randn(vocab, hidden, generator=g, dtype=torch.float64)
    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    fused = losses.full_cross_entropy(h1, tokens, w1, label_smoothing, chunk_size, weights, seen, row_weights)
    assert _ran_fused(fused)
    fused.backward()
    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()
    histories_read = [histories[r].tolist() for r in rows]
    reference = _seen_reference(
        h2, w2, tokens, weights, histories_read, positions.tolist(), label_smoothing, row_weights
    )
    reference.backward()
    assert torch.isfinite(reference)
    torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        plain = losses.full_cross_entropy(
            h, tokens, w, label_smoothing, target_weights=weights, seen=seen, row_weights=row_weights
        )
    torch.testing.assert_close(plain, reference.detach(), rtol=1e-10, atol=1e-12)
    unmasked = losses.full_cross_entropy(h, tokens, w, label_smoothing, target_weights=weights, row_weights=row_weights)
    assert unmasked > plain  # leaving classes out of the softmax can only raise the targets' probability


def test_seen_items_positions_with_a_prepended_token():
    """With offset 1 (a user token at position 0), position t has read the first t items."""
    histories = torch.tensor([[4, 2, 3, 0]])
    selected = torch.tensor([[True, True, True, True, False]])
    seen = losses.SeenItems.from_histories(histories, selected, num_tokens=6, offset=1)
    mask = seen.mask()  # classes are tokens 1..5
    assert mask[0].tolist() == [False] * 5  # the user token has read nothing
    assert mask[1].tolist() == [False, False, False, True, False]  # item 4
    assert mask[3].tolist() == [False, True, True, True, False]  # items 4, 2, 3


def test_label_smoothing_with_seen_items_and_a_prepended_token():
    """With a user token at position 0 (offset 1), position p has read the first p items: the smoothing's mean
    over the classes in the softmax (added up per history, not over the logits) matches autograd."""
    g = torch.Generator().manual_seed(3)
    vocab, hidden = 7, 5
    histories = torch.randint(1, vocab, (3, 6), generator=g)  # repeats: a target can be a seen item
    histories[0, 4:] = 0
    targets = torch.cat([histories, torch.zeros(3, 1, dtype=torch.long)], 1)  # position p predicts item p
    selected = targets != 0
    seen = losses.SeenItems.from_histories(histories, selected, vocab, offset=1)
    rows, positions = selected.nonzero(as_tuple=True)
    tokens = targets[selected]
    h = torch.randn(len(rows), hidden, generator=g, dtype=torch.float64)
    w = torch.randn(vocab, hidden, generator=g, dtype=torch.float64)
    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    fused = losses.full_cross_entropy(h1, tokens, w1, 0.2, chunk_size=4, seen=seen)
    assert _ran_fused(fused)
    fused.backward()
    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()
    ones = torch.ones(len(rows), 1, dtype=torch.float64)
    histories_read = [histories[r].tolist() for r in rows]
    reference = _seen_reference(h2, w2, tokens[:, None], ones, histories_read, (positions - 1).tolist(), 0.2)
    reference.backward()
    torch.testing.assert_close(fused, reference, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-10, atol=1e-12)


def test_recency_weights_halve_every_half_life_targets_back_from_each_history_end():
    labels = torch.tensor([[5, 6, 7, 8, -100, -100], [-100, 3, 4, -100, -100, -100], [-100] * 6])
    weights = losses.recency_weights(labels, half_life=2.0)
    expected = [[2**-1.5, 2**-1.0, 2**-0.5, 1.0, 0, 0], [0, 2**-0.5, 1.0, 0, 0, 0], [0] * 6]
    torch.testing.assert_close(weights, torch.tensor(expected))


def test_recency_weighted_rows_equal_repeated_rows():
    """Weights 2 and 1 on two rows are the plain mean over those rows with the first one repeated."""
    h, w, targets = _inputs(n=2)
    weighted = losses.full_cross_entropy(h, targets, w, row_weights=torch.tensor([2.0, 1.0]))
    repeated = losses.full_cross_entropy(h[[0, 0, 1]], targets[[0, 0, 1]], w)
    torch.testing.assert_close(weighted, repeated)


def test_future_targets():
    labels = torch.tensor([[5, 6, 7, 8, -100, -100], [3, 4, -100, -100, -100, -100]])
    tokens, weights = losses.future_targets(labels, window=3, decay=0.5)
    assert tokens.shape == weights.shape == (2, 6, 3)
    assert tokens[0, 0].tolist() == [5, 6, 7] and tokens[0, 2].tolist() == [7, 8, 0]
    assert tokens[0, 3].tolist() == [8, 0, 0] and tokens[1, 1].tolist() == [4, 0, 0]
    torch.testing.assert_close(weights[0, 0], torch.tensor([4.0, 2.0, 1.0]) / 7)
    torch.testing.assert_close(weights[0, 2], torch.tensor([2.0, 1.0, 0.0]) / 3)
    torch.testing.assert_close(weights[0, 3], torch.tensor([1.0, 0.0, 0.0]))
    assert weights[0, 4].sum() == 0  # padding positions are never selected: no target at all
    window_one, ones = losses.future_targets(labels, window=1, decay=0.5)
    assert torch.equal(window_one[..., 0], labels.clamp_min(0)) and torch.equal(ones[..., 0], (labels != -100).float())


def test_sampling_log_probs():
    uniform = losses.sampling_log_probs(6, None, torch.device("cpu"))
    assert uniform[0] == -math.inf
    torch.testing.assert_close(uniform[1:], torch.full((5,), -math.log(5)))

    counts = torch.tensor([7.0, 1.0, 2.0, 3.0, 4.0, 0.0])  # the padding count is ignored
    pop = losses.sampling_log_probs(6, counts, torch.device("cpu"))
    assert pop[0] == -math.inf
    torch.testing.assert_close(pop[1:5].exp(), counts[1:5] / 10, rtol=1e-4, atol=1e-6)
    assert torch.isfinite(pop[5]) and pop[5].exp() < 1e-5  # never-seen items stay drawable
    torch.testing.assert_close(pop[1:].exp().sum(), torch.tensor(1.0))


def test_sampled_softmax_log_q_correction_on_a_constructed_case(monkeypatch):
    """Fixed negatives (sampler patched): logits are score - log q, accidental hits (negative == positive) masked."""
    h, w, _ = _inputs(n=3, vocab=6)
    targets = torch.tensor([1, 2, 3])
    negatives = torch.tensor([1, 4, 4, 5])
    monkeypatch.setattr(torch, "multinomial", lambda probs, num, replacement=False: negatives)
    counts = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 10.0])
    log_q = (counts / counts[1:].sum()).log()

    value = losses.sampled_softmax(h, targets, w, num_negatives=4, item_counts=counts)

    scores = h @ w.t() - log_q  # logQ-corrected scores of every token
    expected = []
    for row, target in enumerate(targets.tolist()):
        candidates = [scores[row, target]] + [scores[row, n] for n in negatives.tolist() if n != target]
        expected.append(-torch.log_softmax(torch.stack(candidates), 0)[0])
    torch.testing.assert_close(value, torch.stack(expected).mean(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("popularity", [False, True])
def test_sampled_softmax_with_many_negatives_follows_the_full_softmax_gradient(popularity):
    """With (far) more negatives than items, the logQ-corrected sampled softmax points where the full one does.

    Removing accidental hits drops the positive's own softmax term, which only rescales each row's gradient by
    (1 - p_target): the direction is the full softmax's. Popularity sampling is strongly skewed here, so without
    the correction the direction would be visibly off.
    """
    torch.manual_seed(0)
    h, w, targets = _inputs(n=6, vocab=30)
    counts = torch.arange(30, dtype=torch.float64) ** 3 if popularity else None

    h_full = h.clone().requires_grad_()
    F.cross_entropy(h_full @ w[1:].t(), targets - 1, reduction="sum").backward()
    h_sampled = h.clone().requires_grad_()
    (losses.sampled_softmax(h_sampled, targets, w, num_negatives=100_000, item_counts=counts) * 6).backward()

    cos = _cos(h_sampled.grad, h_full.grad)
    assert cos.min() > 0.995, cos


def test_sampled_softmax_ignores_negatives_equal_to_the_positive(monkeypatch):
    h, w, _ = _inputs(n=4, vocab=10)
    targets = torch.full((4,), 3)
    monkeypatch.setattr(torch, "multinomial", lambda probs, num, replacement=False: torch.full((num,), 3))
    value = losses.sampled_softmax(h, targets, w, num_negatives=8)
    assert value.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("num_negatives", "t", "expected_beta"), [(10, 0.75, None), (10, 0.0, 1.0), (200, 0.75, 1.0)])
def test_gbce_matches_the_gsasrec_formula(monkeypatch, num_negatives, t, expected_beta):
    num_items = 50
    h, w, targets = _inputs(n=5, vocab=num_items + 1)
    k = min(num_negatives, num_items)
    negatives = torch.arange(1, k + 1)
    monkeypatch.setattr(torch, "randint", lambda low, high, size, device=None: negatives)

    value = losses.gbce(h, targets, w, num_negatives=num_negatives, t=t)

    alpha = min(k / (num_items - 1), 1.0)  # a sampling rate: at most 1 (every other item is a negative)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    if expected_beta is not None:
        assert beta == pytest.approx(expected_beta)
    scores = h @ w.t()
    pos = scores.gather(1, targets[:, None]).squeeze(1)
    neg = scores[:, negatives]
    hit = negatives[None, :] == targets[:, None]
    per_row = -beta * F.logsigmoid(pos) - F.logsigmoid(-neg).masked_fill(hit, 0).sum(1)
    torch.testing.assert_close(value, per_row.mean() / (1 + k))


def test_gbce_calibration_lowers_the_positive_weight():
    """beta < 1 for partial sampling and t > 0: the positive's log-likelihood is down-weighted."""
    h, w, targets = _inputs(n=5, vocab=51)
    torch.manual_seed(0)
    calibrated = losses.gbce(h, targets, w, num_negatives=10, t=1.0)
    torch.manual_seed(0)
    plain = losses.gbce(h, targets, w, num_negatives=10, t=0.0)
    assert calibrated < plain


def test_binary_cross_entropy_value(monkeypatch):
    h, w, targets = _inputs(n=5, vocab=12)
    negatives = torch.tensor([3, 4, 5, 6, 7])
    monkeypatch.setattr(torch, "randint", lambda low, high, size, device=None: negatives)
    value = losses.binary_cross_entropy(h, targets, w)
    pos = (h * w[targets]).sum(1)
    neg = (h * w[negatives]).sum(1)
    torch.testing.assert_close(value, -(F.logsigmoid(pos) + F.logsigmoid(-neg)).mean() / 2)


def test_default_chunks_of_a_movielens_sized_catalogue_equal_the_reference():
    """The default chunking (~4M logits: 1,024 rows of a 3,416-item catalogue, so two chunks and a short last one
    here) with seen items left out, in float32 as training runs it: value and gradients within 1e-5 of the
    full-logits autograd reference."""
    g = torch.Generator().manual_seed(5)
    vocab, hidden = 3417, 16
    histories = torch.randint(1, vocab, (16, 150), generator=g)
    histories[3, 100:] = 0  # right padding
    labels = torch.randint(1, vocab, histories.shape, generator=g).masked_fill(histories == 0, -100)
    selected = labels != -100
    seen = losses.SeenItems.from_histories(histories, selected, vocab)
    assert (1 << 22) // (vocab - 1) >= 1024 and int(selected.sum()) > 2 * 1024
    h = torch.randn(int(selected.sum()), hidden, generator=g)
    w = torch.randn(vocab, hidden, generator=g) * 0.3
    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    fused = losses.full_cross_entropy(h1, labels[selected], w1, seen=seen)
    assert _ran_fused(fused)
    fused.backward()

    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()
    targets = labels[selected] - 1
    excluded = seen.mask() & (torch.arange(vocab - 1) != targets[:, None])
    reference = F.cross_entropy((h2 @ w2[1:].t()).masked_fill(excluded, -torch.inf), targets)
    reference.backward()
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-5, atol=1e-6)
