"""Ranking metrics: the vectorised code against a slow reference, hand-computed cases, the Trainer adapters
(tuple inputs, -100 padding, a real `Trainer.evaluate`), and the `evaluate` metric module giving the same numbers.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hf_recsys.metrics import (
    KS,
    make_compute_metrics,
    make_preprocess_logits_for_metrics,
    per_user_metrics,
    ranking_metrics,
    target_ranks,
    top_k_excluding_seen,
)

EXPECTED_KEYS = [f"{name}@{k}" for k in (1, 5, 10, 20) for name in ("ndcg", "hr", "mrr")] + ["coverage@10"]


# ---------------------------------------------------------------------------------------------------------------
# Slow, obviously-correct reference (one user at a time, plain Python)
# ---------------------------------------------------------------------------------------------------------------
def reference_metrics(top_items, targets, num_items, ks=KS, coverage_k=10):
    """Textbook definitions, one user at a time: DCG of the single relevant item over an ideal DCG of 1."""
    totals = {f"{name}@{k}": 0.0 for k in ks for name in ("ndcg", "hr", "mrr")}
    for row, target in zip(top_items.tolist(), targets.tolist()):
        for k in ks:
            dcg = 0.0
            first_hit = None
            for position, item in enumerate(row[:k], start=1):
                if item == target:
                    dcg += 1.0 / math.log2(position + 1)
                    first_hit = position
                    break
            totals[f"ndcg@{k}"] += dcg  # ideal DCG with one relevant item = 1 / log2(2) = 1
            totals[f"hr@{k}"] += 1.0 if first_hit is not None else 0.0
            totals[f"mrr@{k}"] += 1.0 / first_hit if first_hit is not None else 0.0
    n = len(targets)
    out = {key: value / n for key, value in totals.items()}
    recommended = set()
    for row in top_items.tolist():
        for item in row[:coverage_k]:
            if 1 <= item <= num_items:
                recommended.add(item)
    out[f"coverage@{coverage_k}"] = len(recommended) / num_items
    return out


def reference_top_k(scores: torch.Tensor, seen: torch.Tensor, k: int, exclude_seen: bool) -> list[list[int]]:
    """Sort each row in Python, skipping the padding token and (optionally) the history's items."""
    out = []
    for row_scores, row_seen in zip(scores.tolist(), seen.tolist()):
        banned = {0} | ({s for s in row_seen if s > 0} if exclude_seen else set())
        order = sorted((i for i in range(len(row_scores)) if i not in banned), key=lambda i: -row_scores[i])
        out.append(order[:k])
    return out


def random_rankings(seed: int, n: int = 400, num_items: int = 3000, width: int = 25):
    """Unique top lists with targets placed at every rank 1..width in turn, and some misses."""
    rng = np.random.default_rng(seed)
    top = np.stack([rng.permutation(np.arange(1, num_items + 1))[:width] for _ in range(n)])
    targets = np.empty(n, dtype=np.int64)
    planned = np.empty(n, dtype=np.int64)  # 1-based rank, 0 = miss
    for i in range(n):
        rank = i % (width + 1)  # cycles through 0 (miss), 1, ..., width
        if rank == 0:
            missing = np.setdiff1d(np.arange(1, num_items + 1), top[i])
            targets[i] = rng.choice(missing)
        else:
            targets[i] = top[i, rank - 1]
        planned[i] = rank
    shuffle = rng.permutation(n)
    return top[shuffle], targets[shuffle], planned[shuffle], num_items


# ---------------------------------------------------------------------------------------------------------------
# ranking_metrics / per_user_metrics
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_vectorised_matches_reference_on_random_rankings(seed):
    top, targets, planned, num_items = random_rankings(seed)
    assert set(planned.tolist()) == set(range(26)), "the fixture must place hits at every rank and misses"
    np.testing.assert_array_equal(target_ranks(top, targets), planned)

    got = ranking_metrics(top, targets, num_items)
    want = reference_metrics(top, targets, num_items)
    assert list(got) == EXPECTED_KEYS
    for key in EXPECTED_KEYS:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15), key
    # the random data set must exercise the metrics: neither all hits nor all misses at any cut-off
    for k in KS:
        assert 0.0 < got[f"hr@{k}"] < 1.0
    assert 0.0 < got["coverage@10"] < ranking_metrics(top, targets, num_items, coverage_k=20)["coverage@20"] < 1.0


@pytest.mark.parametrize("seed", [10, 11])
def test_reference_agreement_with_custom_cut_offs_and_random_targets(seed):
    rng = np.random.default_rng(seed)
    num_items = 30
    top = np.stack([rng.permutation(np.arange(1, num_items + 1))[:7] for _ in range(200)])
    targets = rng.integers(1, num_items + 1, size=200)
    ks = (2, 3, 7)
    got = ranking_metrics(top, targets, num_items, ks=ks, coverage_k=3)
    want = reference_metrics(top, targets, num_items, ks=ks, coverage_k=3)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


def test_hand_computed_single_users():
    top = np.array([[7, 8, 9, *range(10, 27)]])  # 20 unique ids, item 9 at rank 3

    def at(target: int) -> dict[str, float]:
        return ranking_metrics(top, np.array([target]), num_items=100)

    first = at(7)
    for k in KS:
        assert first[f"ndcg@{k}"] == 1.0 and first[f"hr@{k}"] == 1.0 and first[f"mrr@{k}"] == 1.0

    third = at(9)
    assert third["ndcg@1"] == 0.0 and third["hr@1"] == 0.0 and third["mrr@1"] == 0.0
    assert third["ndcg@5"] == pytest.approx(0.5)  # 1 / log2(3 + 1)
    assert third["hr@5"] == 1.0
    assert third["mrr@5"] == pytest.approx(1 / 3)
    assert third["ndcg@20"] == pytest.approx(0.5)

    sixth = at(12)  # rank 6: outside @5, inside @10
    assert sixth["hr@5"] == 0.0 and sixth["ndcg@5"] == 0.0 and sixth["mrr@5"] == 0.0
    assert sixth["hr@10"] == 1.0
    assert sixth["ndcg@10"] == pytest.approx(1 / math.log2(7))
    assert sixth["mrr@10"] == pytest.approx(1 / 6)

    last = at(26)  # rank 20
    assert last["hr@10"] == 0.0
    assert last["ndcg@20"] == pytest.approx(1 / math.log2(21))
    assert last["mrr@20"] == pytest.approx(1 / 20)

    miss = at(99)
    assert all(value == 0.0 for key, value in miss.items() if not key.startswith("coverage"))


def test_average_over_users_and_coverage_by_hand():
    # two users, num_items=40; user 0 hits at rank 1, user 1 misses
    top = np.array([list(range(1, 21)), list(range(11, 31))])
    result = ranking_metrics(top, np.array([1, 40]), num_items=40)
    assert result["ndcg@10"] == pytest.approx(0.5)
    assert result["hr@1"] == pytest.approx(0.5)
    assert result["mrr@20"] == pytest.approx(0.5)
    # top-10 lists: 1..10 and 11..20 -> 20 distinct items of 40; columns 11..20 must not count
    assert result["coverage@10"] == pytest.approx(0.5)


def test_coverage_ignores_padding_and_no_item_slots():
    top = np.array([[3, 0, -1, -1, 4] + [-1] * 15, [3, 4, 0, -1, 5] + [-1] * 15])
    result = ranking_metrics(top, np.array([3, 5]), num_items=10)
    assert result["coverage@10"] == pytest.approx(0.3)  # {3, 4, 5}
    assert result["hr@1"] == pytest.approx(0.5)
    assert result["hr@5"] == pytest.approx(1.0)


def test_duplicate_target_in_a_list_counts_once_at_first_position():
    top = np.array([[5, 2, 2, 2, *range(6, 22)]])
    result = ranking_metrics(top, np.array([2]), num_items=30)
    assert result["hr@5"] == 1.0
    assert result["ndcg@5"] == pytest.approx(1 / math.log2(3))
    assert result["mrr@5"] == pytest.approx(0.5)


def test_per_user_arrays_average_to_the_metrics():
    top, targets, _, num_items = random_rankings(7, n=60)
    result, per_user = ranking_metrics(top, targets, num_items, return_per_user=True)
    assert set(per_user) == {k for k in EXPECTED_KEYS if not k.startswith("coverage")}
    for key, values in per_user.items():
        assert values.shape == (60,)
        assert values.mean() == pytest.approx(result[key])
    standalone = per_user_metrics(top, targets, num_items=num_items)
    for key in per_user:
        np.testing.assert_array_equal(standalone[key], per_user[key])
    # averaging per-user values over two halves (distributed shards) gives the global numbers exactly
    halves = [per_user_metrics(top[s], targets[s], num_items) for s in (slice(0, 17), slice(17, None))]
    for key in per_user:
        assert np.concatenate([h[key] for h in halves]).mean() == pytest.approx(result[key], rel=1e-15)


def test_accepts_torch_tensors_and_wider_lists():
    top, targets, _, num_items = random_rankings(3, n=50, width=30)
    from_numpy = ranking_metrics(top, targets, num_items)
    from_torch = ranking_metrics(torch.from_numpy(top), torch.from_numpy(targets), num_items)
    assert from_numpy == from_torch
    assert ranking_metrics(top[:, :20], targets, num_items) == from_numpy  # columns past max(ks) are ignored


def test_without_num_items_coverage_is_skipped():
    top, targets, _, num_items = random_rankings(5, n=30)
    assert "coverage@10" not in ranking_metrics(top, targets, None)
    assert "coverage@10" not in ranking_metrics(top, targets, num_items, coverage_k=None)


@pytest.mark.parametrize(
    ("top", "targets", "kwargs", "message"),
    [
        (np.ones((3, 10), dtype=np.int64), np.ones(3, dtype=np.int64), {}, "k=20"),
        (np.ones((3, 20), dtype=np.int64), np.ones(4, dtype=np.int64), {}, "3 rows but targets has 4"),
        (np.ones(20, dtype=np.int64), np.ones(1, dtype=np.int64), {}, "2-D"),
        (np.ones((3, 20)), np.ones(3, dtype=np.int64), {}, "integer"),
        (np.ones((3, 20), dtype=np.int64), np.ones((3, 2), dtype=np.int64), {}, "1-D"),
        (np.ones((2, 20), dtype=np.int64), np.array([1, -100]), {}, "-100"),
        (np.ones((2, 20), dtype=np.int64), np.array([1, 0]), {}, "padding token"),
        (np.full((2, 20), 51), np.array([1, 2]), {}, "item id 51"),
        (np.ones((2, 20), dtype=np.int64), np.array([1, 77]), {}, "item id 77"),
        (np.ones((0, 20), dtype=np.int64), np.ones(0, dtype=np.int64), {}, "no rows"),
        (np.ones((2, 20), dtype=np.int64), np.ones(2, dtype=np.int64), {"ks": ()}, "at least one"),
        (np.ones((2, 20), dtype=np.int64), np.ones(2, dtype=np.int64), {"ks": (0, 5)}, "positive integer"),
        (np.ones((2, 5), dtype=np.int64), np.ones(2, dtype=np.int64), {"ks": (5,)}, "coverage@10"),
    ],
)
def test_bad_inputs_raise(top, targets, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ranking_metrics(top, targets, 50, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# top_k_excluding_seen
# ---------------------------------------------------------------------------------------------------------------
def test_top_k_excludes_padding_and_seen_items():
    scores = torch.tensor([[9.0, 1.0, 8.0, 7.0, 6.0, 5.0], [9.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    seen = torch.tensor([[2, 0, 0], [5, 4, -100]])
    got = top_k_excluding_seen(scores, seen, k=3)
    assert got.tolist() == [[3, 4, 5], [3, 2, 1]]
    assert got.dtype == torch.int64
    kept = top_k_excluding_seen(scores, seen, k=3, exclude_seen=False)
    assert kept.tolist() == [[2, 3, 4], [5, 4, 3]]  # seen items stay, the padding token never appears
    assert scores[0, 0] == 9.0 and scores[0, 2] == 8.0  # the input is not modified


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_matches_reference_with_random_padding(seed):
    gen = torch.Generator().manual_seed(seed)
    batch, vocab, length, k = 16, 60, 12, 20
    scores = torch.randn(batch, vocab, generator=gen)
    scores[:, 0] = 100.0  # the padding column must be removed even when it scores best
    seen = torch.randint(1, vocab, (batch, length), generator=gen)
    lengths = torch.randint(0, length + 1, (batch,), generator=gen)
    pad = torch.arange(length)[None, :] >= lengths[:, None]
    seen = seen.masked_fill(pad, 0)
    seen[::2] = seen[::2].masked_fill(pad[::2], -100)  # Trainer-style -100 padding on half the rows
    for exclude in (True, False):
        got = top_k_excluding_seen(scores, seen, k=k, exclude_seen=exclude).tolist()
        assert got == reference_top_k(scores, seen, k, exclude)
    excluded = top_k_excluding_seen(scores, seen, k=k)
    for row, history in zip(excluded.tolist(), seen.tolist()):
        assert 0 not in row and not set(row) & {s for s in history if s > 0}


def test_top_k_marks_slots_without_an_eligible_item():
    scores = torch.arange(6, dtype=torch.float32)[None, :]  # 5 items
    seen = torch.tensor([[5, 4, 3, -100]])
    assert top_k_excluding_seen(scores, seen, k=4).tolist() == [[2, 1, -1, -1]]
    # such a slot never counts as a hit, even when the target is a seen item
    assert ranking_metrics(np.array([[2, 1, -1, -1]]), np.array([3]), 5, ks=(4,), coverage_k=4)["hr@4"] == 0.0


def test_top_k_half_precision_and_integer_scores():
    scores = torch.tensor([[0.0, 0.5, 2.0, 1.0]], dtype=torch.bfloat16)
    assert top_k_excluding_seen(scores, torch.tensor([[2]]), k=2).tolist() == [[3, 1]]
    assert top_k_excluding_seen(torch.tensor([[5, 1, 3, 2]]), torch.tensor([[0]]), k=2).tolist() == [[2, 3]]


@pytest.mark.parametrize(
    ("scores", "seen", "k", "message"),
    [
        (torch.zeros(2, 5), torch.tensor([[5], [1]]), 2, "token 5"),
        (torch.zeros(2, 5), torch.ones(2, 1, dtype=torch.long), 6, "larger than"),
        (torch.zeros(2, 5), torch.ones(2, 1, dtype=torch.long), 0, "positive integer"),
        (torch.zeros(2, 5), torch.ones(3, 1, dtype=torch.long), 2, "batch=2"),
        (torch.zeros(2, 5), torch.ones(2, 1), 2, "integer item tokens"),
        (torch.zeros(2, 5), None, 2, "needs the histories"),
        (torch.zeros(2, 3, 5), torch.ones(2, 1, dtype=torch.long), 2, "2-D"),
    ],
)
def test_top_k_bad_inputs_raise(scores, seen, k, message):
    with pytest.raises(ValueError, match=message):
        top_k_excluding_seen(scores, seen, k=k)


# ---------------------------------------------------------------------------------------------------------------
# Trainer adapters
# ---------------------------------------------------------------------------------------------------------------
def test_preprocess_logits_with_tuple_inputs_and_padded_histories():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 30, generator=gen)
    logits[:, 0] = -torch.inf
    targets = torch.tensor([3, 4, 5, 6])
    input_ids = torch.tensor([[1, 2, 0], [7, -100, -100], [9, 8, 7], [0, 0, 11]])
    preprocess = make_preprocess_logits_for_metrics(k=20)

    expected = top_k_excluding_seen(logits, input_ids, 20)
    assert torch.equal(preprocess(logits, (targets, input_ids)), expected)
    hidden = torch.randn(4, 3, 8)
    assert torch.equal(preprocess((logits, hidden), (targets, input_ids)), expected)
    assert torch.equal(preprocess(logits[:, None, :].expand(4, 2, 30), [targets, input_ids]), expected)
    assert not set(expected[1].tolist()) & {0, 7}

    with pytest.raises(ValueError, match="label_names"):
        preprocess(logits, targets)  # histories missing: would silently inflate the metrics
    keep_seen = make_preprocess_logits_for_metrics(k=5, exclude_seen=False)
    assert torch.equal(keep_seen(logits, targets), top_k_excluding_seen(logits, None, 5, exclude_seen=False))
    with pytest.raises(ValueError, match="positive integer"):
        make_preprocess_logits_for_metrics(k=0)

    # rankable_items: tokens above it are never recommended, and the caller's logits are left untouched
    known_only = make_preprocess_logits_for_metrics(k=20, rankable_items=24)
    before = logits.clone()
    top = known_only(logits, (targets, input_ids))
    assert torch.equal(logits, before)
    assert top.max() <= 24
    masked = logits.clone()
    masked[:, 25:] = -torch.inf
    assert torch.equal(top, top_k_excluding_seen(masked, input_ids, 20))
    with pytest.raises(ValueError, match="rankable_items"):
        make_preprocess_logits_for_metrics(k=5, rankable_items=0)


def _eval_pred(predictions, label_ids):
    from transformers import EvalPrediction

    return EvalPrediction(predictions=predictions, label_ids=label_ids)


def test_compute_metrics_drops_gather_padding_rows():
    top, targets, _, num_items = random_rankings(1, n=80)
    clean = ranking_metrics(top, targets, num_items)
    # rows added when gathering across processes: target -100, predictions -100, histories -100
    padded_top = np.concatenate([top, np.full((3, top.shape[1]), -100)])
    padded_targets = np.concatenate([targets, np.full(3, -100)])
    histories = np.concatenate([np.ones((80, 4), dtype=np.int64), np.full((3, 4), -100)])
    compute = make_compute_metrics(num_items)

    assert compute(_eval_pred(padded_top, (padded_targets, histories))) == clean
    assert compute(_eval_pred(padded_top, padded_targets)) == clean
    assert compute(_eval_pred((padded_top,), (padded_targets[:, None], histories))) == clean
    # the padding rows really are there: counting them as misses would lower the numbers
    assert ranking_metrics(padded_top[:81], np.append(targets, 1), num_items)["hr@20"] < clean["hr@20"]


def test_compute_metrics_bad_inputs():
    compute = make_compute_metrics(50)
    with pytest.raises(ValueError, match="do not match"):
        compute(_eval_pred(np.ones((3, 20), dtype=np.int64), np.ones(4, dtype=np.int64)))
    with pytest.raises(ValueError, match="per-position"):
        compute(_eval_pred(np.ones((3, 20), dtype=np.int64), np.ones((3, 6), dtype=np.int64)))


def test_compute_metrics_in_batch_eval_mode_averages_once_over_all_users():
    top, targets, _, num_items = random_rankings(2, n=90)
    compute = make_compute_metrics(num_items)
    want = ranking_metrics(top, targets, num_items)
    for _ in range(2):  # the state resets after each evaluation
        bounds = [(0, 7), (7, 50), (50, 90)]  # uneven batches: a mean of batch means would differ
        outs = [
            compute(
                SimpleNamespace(predictions=torch.from_numpy(top[a:b]), label_ids=(torch.from_numpy(targets[a:b]),)),
                compute_result=(b == 90),
            )
            for a, b in bounds
        ]
        assert outs[0] == {} and outs[1] == {}
        assert outs[2] == pytest.approx(want)


def test_trainer_evaluate_end_to_end(tmp_path):
    """A real `Trainer.evaluate` with label_names=["labels", "input_ids"] gives the metrics of direct computation."""
    from transformers import Trainer, TrainingArguments

    from hf_recsys import RecTransformerConfig, RecTransformerForNextItemPrediction

    torch.manual_seed(0)
    num_items = 40
    config = RecTransformerConfig(
        num_items=num_items, hidden_size=16, num_hidden_layers=1, intermediate_size=32, max_position_embeddings=16
    )
    model = RecTransformerForNextItemPrediction(config).eval()
    gen = torch.Generator().manual_seed(1)
    rows = []
    for i in range(11):  # histories of different lengths: later batches are shorter, so concatenation pads -100
        length = 12 - i
        history = torch.randperm(num_items, generator=gen)[:length] + 1
        rows.append({"input_ids": history[:-1].tolist(), "labels": int(history[-1])})
    rows[3]["labels"] = rows[3]["input_ids"][0]  # a re-watched item: excluded, so always a miss

    def collate(batch):
        width = max(len(r["input_ids"]) for r in batch)
        ids = torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in batch])
        return {
            "input_ids": ids,
            "attention_mask": (ids != 0).long(),
            "labels": torch.tensor([r["labels"] for r in batch]),
        }

    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=4,
        label_names=["labels", "input_ids"],
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        eval_dataset=rows,
        data_collator=collate,
        compute_metrics=make_compute_metrics(num_items),
        preprocess_logits_for_metrics=make_preprocess_logits_for_metrics(k=20),
    )
    metrics = trainer.evaluate()

    batch = collate(rows)
    with torch.no_grad():
        recommended = model.recommend(batch["input_ids"], k=20, attention_mask=batch["attention_mask"]).item_ids
    want = ranking_metrics(recommended.numpy(), batch["labels"].numpy(), num_items)
    assert ranking_metrics(recommended.numpy()[3:4], np.array([rows[3]["labels"]]), num_items)["hr@20"] == 0.0
    for key in EXPECTED_KEYS:
        assert metrics[f"eval_{key}"] == pytest.approx(want[key], abs=1e-9), key
    assert 0.0 < metrics["eval_coverage@10"] <= 1.0


# ---------------------------------------------------------------------------------------------------------------
# evaluate module (import evaluate once: it costs seconds)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evaluate_lib():
    return pytest.importorskip("evaluate")


@pytest.fixture(scope="module")
def loaded_metric(evaluate_lib):
    from hf_recsys.evaluate_metric import METRIC_PATH

    return evaluate_lib.load(METRIC_PATH)


def test_evaluate_metric_matches_ranking_metrics(loaded_metric, evaluate_lib):
    from hf_recsys.evaluate_metric import NextItemRanking

    assert isinstance(loaded_metric, evaluate_lib.Metric)
    assert type(loaded_metric).__name__ == "NextItemRanking"
    assert "ndcg" in loaded_metric.description.lower() and loaded_metric.citation
    top, targets, _, num_items = random_rankings(4, n=120)
    want = ranking_metrics(top, targets, num_items)
    for metric in (loaded_metric, NextItemRanking()):
        got = metric.compute(predictions=top.tolist(), references=targets.tolist(), num_items=num_items)
        assert list(got) == EXPECTED_KEYS
        assert got == pytest.approx(want, rel=1e-12)
    # incremental use through add_batch gives the same numbers
    for a in range(0, 120, 50):
        loaded_metric.add_batch(predictions=top[a : a + 50].tolist(), references=targets[a : a + 50].tolist())
    assert loaded_metric.compute(num_items=num_items) == pytest.approx(want, rel=1e-12)


def test_evaluate_metric_options_and_errors(loaded_metric):
    got = loaded_metric.compute(predictions=[[5, 3, 9], [1, 2, 4]], references=[3, 7], ks=[1, 3], coverage_k=3)
    assert got == pytest.approx(
        {"ndcg@1": 0.0, "hr@1": 0.0, "mrr@1": 0.0, "ndcg@3": 0.5 / math.log2(3), "hr@3": 0.5, "mrr@3": 0.25}
    )
    with pytest.raises(ValueError, match="k=20"):
        loaded_metric.compute(predictions=[[1, 2, 3]], references=[1], num_items=10)


def test_exclude_items_masks_padding_and_every_given_token_without_touching_the_input():
    from hf_recsys.metrics import exclude_items

    scores = torch.arange(12, dtype=torch.int64).reshape(2, 6)
    seen = torch.tensor([[2, 5, 0], [-100, 1, 1]])
    masked = exclude_items(scores, seen)
    assert masked.dtype == torch.float32 and scores[0, 0] == 0  # float copy, input untouched
    assert torch.isneginf(masked[:, 0]).all()
    assert torch.isneginf(masked[0, [2, 5]]).all() and torch.isfinite(masked[0, [1, 3, 4]]).all()
    assert torch.isneginf(masked[1, 1]) and torch.isfinite(masked[1, 2:]).all()
    with pytest.raises(ValueError, match="only 6 columns"):
        exclude_items(scores, torch.tensor([[6], [1]]))
    with pytest.raises(ValueError, match=r"seen must be \(batch=2"):
        exclude_items(scores, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="integer item tokens"):
        exclude_items(scores, torch.ones(2, 1))
