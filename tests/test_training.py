"""End-to-end training through the Trainer on a small synthetic data set: the run folder, reproducibility,
resuming after a kill, refusing to overwrite another run, baselines, and the CLI scripts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_recsys.training import DataArguments, ModelArguments, RecTrainingArguments, run_training

REPO = Path(__file__).resolve().parents[1]


def _args(sequences_file: Path, out: Path, epochs: int = 3, **overrides):
    model = ModelArguments(hidden_size=16, intermediate_size=32, num_hidden_layers=1, hidden_dropout_prob=0.1)
    data = DataArguments(
        dataset="sequences",
        sequences_path=str(sequences_file),
        cache_dir=str(out.parent / "hf_cache"),
        max_length=20,
    )
    training = dict(
        output_dir=str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        learning_rate=1e-2,
        compile_loss=False,
        disable_tqdm=True,
        seed=7,
        save_total_limit=None,
        early_stopping_patience=0,
        warmup_steps=0,
    )
    training.update(overrides)
    return model, data, RecTrainingArguments(**training)


def test_training_writes_a_complete_run_and_beats_popularity(sequences_file, tmp_path):
    results = run_training(*_args(sequences_file, tmp_path / "run", epochs=8))
    out = tmp_path / "run"
    for name in ("config.json", "model.safetensors", "item_vocab.json", "user_vocab.json", "results.json", "README.md"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pkl")), "weights must be safetensors only"
    saved = json.loads((out / "results.json").read_text())
    assert saved["metrics"]["test"] == pytest.approx(results["metrics"]["test"])
    assert {"ndcg@10", "hr@10", "mrr@10", "coverage@10", "ndcg@1", "hr@20"} <= set(saved["metrics"]["test"])
    assert [row["epoch"] for row in saved["history"] if "valid_ndcg@10" in row] == [1, 2, 3, 4, 5, 6, 7, 8]
    # the pattern is learnable: the model must beat the popularity baseline by a wide margin
    assert results["metrics"]["test"]["hr@10"] > 2 * results["baselines"]["popularity"]["test"]["hr@10"]
    # best epoch kept: validation NDCG@10 of the saved model equals the best one seen during training
    best = max(row["valid_ndcg@10"] for row in saved["history"] if "valid_ndcg@10" in row)
    assert results["metrics"]["validation"]["ndcg@10"] == pytest.approx(best, abs=1e-6)
    # results.json records the loss as trained: the unset seen-item mask resolved from --exclude_seen
    config = json.loads((out / "config.json").read_text())
    assert saved["training"]["exclude_seen_in_loss"] is config["exclude_seen_in_loss"]
    assert saved["training"]["exclude_seen_in_loss"] is True  # CE + exclude_seen (the defaults)


def test_same_seed_same_metrics(sequences_file, tmp_path):
    def ranking(results):
        return {k: v for k, v in results["metrics"]["test"].items() if "@" in k or k == "loss"}

    a = run_training(*_args(sequences_file, tmp_path / "a", epochs=2))
    b = run_training(*_args(sequences_file, tmp_path / "b", epochs=2))
    assert ranking(a) == ranking(b)
    c = run_training(*_args(sequences_file, tmp_path / "c", epochs=2, seed=8))
    assert ranking(c) != ranking(a)


def test_resume_after_kill_reaches_the_same_metrics(sequences_file, tmp_path):
    full = run_training(*_args(sequences_file, tmp_path / "full", epochs=3, load_best_model_at_end=False))
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "full").glob("checkpoint-*"))
    assert len(steps) == 3, "one checkpoint per epoch"
    # "killed" after epoch 2: a run that stopped there, then resumed from its last checkpoint
    part = _args(sequences_file, tmp_path / "part", epochs=3, max_steps=steps[1], load_best_model_at_end=False)
    run_training(*part)
    checkpoints = sorted((tmp_path / "part").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, "no checkpoint was written"
    resumed = run_training(
        *_args(
            sequences_file,
            tmp_path / "part",
            epochs=3,
            load_best_model_at_end=False,
            resume_from_checkpoint=str(checkpoints[-1]),
        )
    )

    def ranking(results):
        return {k: v for k, v in results["metrics"]["test"].items() if "@" in k or k == "loss"}

    assert ranking(resumed) == pytest.approx(ranking(full), abs=1e-4)


def test_refuses_to_overwrite_another_run(sequences_file, tmp_path):
    run_training(*_args(sequences_file, tmp_path / "run", epochs=1))
    with pytest.raises(FileExistsError, match="already holds a trained run"):
        run_training(*_args(sequences_file, tmp_path / "run", epochs=1))
    run_training(*_args(sequences_file, tmp_path / "run", epochs=1, overwrite_output_dir=True))


def _item_table(num_items: int):
    """Feature fields of items 101..100+num_items: genres (multi) and decade (categorical); the last item has
    neither."""
    import pandas as pd

    from hf_recsys.data.features import build_feature_fields, read_feature_table

    ids = list(range(101, 101 + num_items))
    genres = ["Drama", "Drama|Comedy", "Drama", "Drama|Noir", "Drama|Noir", None][:num_items]
    decade = ["1970s", "1970s", "1980s", "1990s", "1990s", None][:num_items]
    table = pd.DataFrame({"item_id": ids, "genres": genres, "decade": decade})
    kinds = {"genres": "multi", "decade": "categorical"}
    return build_feature_fields(read_feature_table(table, "item_id", kinds=kinds), ids)


def _user_table(num_users: int):
    import pandas as pd

    from hf_recsys.data.features import build_feature_fields, read_feature_table

    ids = list(range(1, num_users + 1))
    table = pd.DataFrame({"user_id": ids, "gender": (["F", "M"] * num_users)[:num_users], "age": ["18"] * num_users})
    return build_feature_fields(read_feature_table(table, "user_id", kinds="categorical"), ids)


def test_item_features_become_input_embeddings_that_travel_with_the_model(tmp_path):
    """--use_item_features: the item table's feature fields size the config, their matrices live in the model as a
    buffer, change what the model reads (two items with the same id embedding but different features are told
    apart) and survive save/load. By default they are used whenever the data has them; asked for on data without
    an item table, the model is refused with a message naming the flag."""
    from hf_recsys.data.features import EncodedFeatures
    from hf_recsys.modeling import RecTransformerForNextItemPrediction
    from hf_recsys.training import build_model

    num_items = 6
    features = _item_table(num_items)
    fields = [{"name": "genres", "size": 4, "max_values": 2}, {"name": "decade", "size": 4, "max_values": 1}]
    values = np.concatenate([features.matrices["genres"], features.matrices["decade"]], axis=1)
    assert values[1:].any() and not values[num_items].any()  # the last item has no value
    args = ModelArguments(hidden_size=16, intermediate_size=32, num_hidden_layers=1, use_item_features=True)
    model = build_model(args, num_items, 0, max_length=8, item_features=features)
    assert model.config.item_feature_fields == fields
    emb = model.rec_transformer.embeddings
    assert torch.equal(emb.item_feature_values, torch.as_tensor(values, dtype=torch.int32))
    with torch.no_grad():  # same id embedding, different side features: different vectors
        emb.item_embeddings.weight[2] = emb.item_embeddings.weight[1]
        vectors = emb.item_vectors(torch.tensor([1, 2]))
    assert not torch.allclose(vectors[0], vectors[1])

    model.save_pretrained(tmp_path / "m")
    loaded = RecTransformerForNextItemPrediction.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.item_feature_fields == fields
    assert torch.equal(loaded.rec_transformer.embeddings.item_feature_values, torch.as_tensor(values).int())
    ids = torch.tensor([[0, 3, 1, 5, 2]])
    with torch.no_grad():
        expected = model.eval()(input_ids=ids).logits
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-6)

    default = build_model(ModelArguments(hidden_size=16), num_items, 0, item_features=features)
    assert default.config.item_feature_fields == fields  # on: the data has them
    assert default.config.item_features_in_output
    inputs_only = build_model(
        ModelArguments(hidden_size=16, item_features_in_output=False), num_items, 0, item_features=features
    )
    assert inputs_only.config.item_feature_fields == fields and not inputs_only.config.item_features_in_output
    off_args = ModelArguments(hidden_size=16, use_item_features=False)
    off = build_model(off_args, num_items, 0, item_features=features)
    assert off.config.item_feature_fields == [] and not off.config.item_features_in_output  # the flag decides
    assert not hasattr(off.rec_transformer.embeddings, "item_feature_values")
    bare = build_model(ModelArguments(hidden_size=16), num_items, 0)
    assert bare.config.item_feature_fields == []  # nothing to use: off
    no_fields = EncodedFeatures({}, {}, None, {})  # a table without feature columns
    assert (
        build_model(ModelArguments(hidden_size=16), num_items, 0, item_features=no_fields).config.item_feature_fields
        == []
    )
    with pytest.raises(ValueError, match=r"use_item_features.*no item table"):
        build_model(args, num_items, 0)
    with pytest.raises(ValueError, match=r"use_item_features.*no item table"):
        build_model(args, num_items, 0, item_features=no_fields)
    with pytest.raises(ValueError, match=r"'genres'.*\(8, 2\)"):  # matrices of another catalogue
        build_model(args, num_items + 1, 0, item_features=features)


def test_user_features_are_on_when_the_model_reads_the_user():
    """--use_user_features: by default on when the data has a user table and user_conditioning is not none; the
    model then holds every user's values and reads them from user_ids."""
    from hf_recsys.training import build_model

    users = _user_table(4)
    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1}
    fields = [{"name": "gender", "size": 3, "max_values": 1}, {"name": "age", "size": 2, "max_values": 1}]
    model = build_model(ModelArguments(**small, user_conditioning="add"), 6, 4, user_features=users)
    assert model.config.user_feature_fields == fields
    stored = model.rec_transformer.user.user_feature_values
    expected = np.concatenate([users.matrices["gender"], users.matrices["age"]], axis=1)
    assert torch.equal(stored, torch.as_tensor(expected, dtype=torch.int32)) and stored[1:].all()
    # the stored values are what a request passing them would give
    ids, user_ids = torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([1, 2])
    with torch.no_grad():
        model.eval()  # no dropout (of the user id either)
        torch.testing.assert_close(
            model(ids, user_ids=user_ids).logits,
            model(ids, user_ids=user_ids, user_features=stored[user_ids].long()).logits,
        )
    none = build_model(ModelArguments(**small, user_conditioning="none"), 6, 4, user_features=users)
    assert none.config.user_feature_fields == []  # the model does not read the user: nothing to add them to
    off = build_model(
        ModelArguments(**small, user_conditioning="add", use_user_features=False), 6, 4, user_features=users
    )
    assert off.config.user_feature_fields == []
    assert build_model(ModelArguments(**small, user_conditioning="add"), 6, 4).config.user_feature_fields == []
    with pytest.raises(ValueError, match="use_user_features needs --user_conditioning"):
        build_model(
            ModelArguments(**small, user_conditioning="none", use_user_features=True), 6, 4, user_features=users
        )
    with pytest.raises(ValueError, match=r"use_user_features.*no user table"):
        build_model(ModelArguments(**small, user_conditioning="add", use_user_features=True), 6, 4)
    with_items = build_model(
        ModelArguments(**small, user_conditioning="concat"), 6, 4, item_features=_item_table(6), user_features=users
    )
    assert [f["name"] for f in with_items.config.item_feature_fields] == ["genres", "decade"]
    assert [f["name"] for f in with_items.config.user_feature_fields] == ["gender", "age"]


def test_recipe_flags_reach_the_model():
    """The recipe's attention and output-layer flags build what they say: by default every block has a relative
    attention bias and the output layer is the item table; turned off, plain attention and a separate table."""
    from hf_recsys.training import build_model

    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2}
    default = build_model(ModelArguments(**small), 6, 0)
    assert default.config.relative_attention_bias and default.config.tie_word_embeddings
    assert all(layer.attention.relative_bias is not None for layer in default.rec_transformer.layers)
    assert default.get_output_embeddings().weight is default.get_input_embeddings().weight
    off = build_model(ModelArguments(**small, relative_attention_bias=False, tie_word_embeddings=False), 6, 0)
    assert all(layer.attention.relative_bias is None for layer in off.rec_transformer.layers)
    assert off.get_output_embeddings().weight is not off.get_input_embeddings().weight


def test_item_features_refused_on_a_file_without_movie_metadata(sequences_file, tmp_path):
    model, data, training = _args(sequences_file, tmp_path / "run", epochs=1)
    model.use_item_features = True
    with pytest.raises(ValueError, match=r"use_item_features.*no item table"):
        run_training(model, data, training)
    assert not (tmp_path / "run" / "results.json").exists()


def test_cli_train_then_evaluate(sequences_file, tmp_path):
    out = tmp_path / "cli"
    common = ["--dataset", "sequences", "--sequences_path", str(sequences_file), "--cache_dir", str(tmp_path / "c")]
    trained = subprocess.run(
        [sys.executable, "-m", "hf_recsys", "train", *common, "--output_dir", str(out), "--num_train_epochs", "2",
         "--hidden_size", "16", "--intermediate_size", "32", "--max_length", "20", "--no_compile_loss",
         "--disable_tqdm", "true", "--learning_rate", "0.01"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    # early stopping is on (the default patience) but must not look at the final valid/test evaluations
    assert "early stopping required" not in trained.stderr
    if not torch.cuda.is_available():  # batches are not pinned for a GPU that is not there (torch warns per epoch)
        assert "pin_memory" not in trained.stderr
    saved = json.loads((out / "results.json").read_text())["metrics"]["test"]
    proc = subprocess.run(
        [sys.executable, "-m", "hf_recsys", "evaluate", "--model", str(out), *common, "--split", "test"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    printed = json.loads(proc.stdout[proc.stdout.rindex("\n{") :])  # the JSON block printed last
    assert printed["ndcg@10"] == pytest.approx(saved["ndcg@10"], abs=1e-4)
    assert printed["hr@10"] == pytest.approx(saved["hr@10"], abs=1e-4)


def test_evaluate_pretrained_aligns_other_data_to_the_model_vocabulary(sequences_file, tmp_path):
    """Scoring a model on data it was not trained on: its own data gives its results.json numbers; other data is
    aligned to the model's vocabulary, and targets among movies the model never saw are counted as misses."""
    from hf_recsys.training import evaluate_pretrained

    out = tmp_path / "run"
    results = run_training(*_args(sequences_file, out, epochs=2))
    cache = str(tmp_path / "hf_cache")

    def evaluate(path: Path) -> dict:
        data_args = DataArguments(dataset="sequences", sequences_path=str(path), cache_dir=cache, max_length=20)
        return evaluate_pretrained(str(out), data_args, split="test")

    same = evaluate(sequences_file)
    assert same["ndcg@10"] == pytest.approx(results["metrics"]["test"]["ndcg@10"], abs=1e-5)
    assert "unknown_target_share" not in same

    lines = sequences_file.read_text().split()
    pairs = [(int(u), int(i)) for u, i in zip(lines[::2], lines[1::2], strict=True)]
    # every user gets one more, never-seen movie as the last (test) item, and user ids move by 100
    last = {u: i for u, i in pairs}
    extended = [(u + 100, i) for u, i in pairs] + [(u + 100, 1000 + u) for u in last]
    extended.sort(key=lambda pair: pair[0])  # stable: each user's order is kept
    other = tmp_path / "other.txt"
    other.write_text("\n".join(f"{u} {i}" for u, i in extended) + "\n")
    shifted = evaluate(other)
    assert shifted["unknown_target_share"] == 1.0
    assert shifted["unknown_history_share"] == 0.0
    assert shifted["hr@20"] == 0.0 and shifted["ndcg@10"] == 0.0  # unknown targets can never be hit


def test_time_budget_decays_the_learning_rate_then_stops():
    from types import SimpleNamespace

    import torch
    from transformers import TrainerControl

    from hf_recsys.training import TimeBudgetCallback

    callback = TimeBudgetCallback(minutes=1.0, decay_fraction=0.5)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    args = SimpleNamespace(world_size=1, device="cpu", eval_strategy="epoch")
    for elapsed, expected_lr, stops in [(10, 1.0, False), (45, 0.5, False), (54, 0.2, False), (61, 0.0, True)]:
        optimizer.param_groups[0]["lr"] = 1.0  # what the constant scheduler sets before each callback
        callback.start = time.monotonic() - elapsed
        control = callback.on_step_end(args, None, TrainerControl(), optimizer=optimizer)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected_lr, abs=0.02)
        assert control.should_training_stop is stops
    with pytest.raises(ValueError, match="decay_fraction"):
        TimeBudgetCallback(1.0, decay_fraction=1.5)


def test_budgeted_run_skips_early_validations_and_keeps_the_best_validated_epoch(sequences_file, tmp_path, capsys):
    # a 60-minute budget whose decay never starts in this short run: epochs 3 and 6 and the last one are validated
    out = tmp_path / "run"
    args = _args(sequences_file, out, epochs=7, max_train_minutes=60, budget_eval_interval=3, save_total_limit=None)
    results = run_training(*args)
    history = json.loads((out / "results.json").read_text())["history"]
    validated = [row["epoch"] for row in history if "valid_ndcg@10" in row]
    assert validated == [3, 6, 7]
    # every epoch is still checkpointed, for resuming
    steps = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert steps == [steps[0] * epoch for epoch in range(1, 8)]
    best = max(row["valid_ndcg@10"] for row in history if "valid_ndcg@10" in row)
    assert results["metrics"]["validation"]["ndcg@10"] == pytest.approx(best, abs=1e-6)
    printed = capsys.readouterr().out
    assert printed.count("(not validated)") == 4 and printed.count("valid NDCG@10") >= 3


def test_time_budget_validates_every_nth_epoch_until_the_rate_halves_then_every_epoch():
    from types import SimpleNamespace

    from transformers import TrainerControl

    from hf_recsys.training import TimeBudgetCallback

    args = SimpleNamespace(world_size=1, device="cpu", eval_strategy="epoch")

    def validated(callback: TimeBudgetCallback, elapsed: float, epoch: float) -> tuple[bool, bool]:
        callback.start = time.monotonic() - elapsed
        control = TrainerControl(should_evaluate=True, should_save=True)  # what the epoch strategy asks for
        state = SimpleNamespace(epoch=epoch, global_step=int(epoch) * 10, max_steps=1000)
        control = callback.on_epoch_end(args, state, control)
        return control.should_evaluate, control.should_save

    # the decay starts at 30 s; the learning rate is half its peak at 45 s
    budget = TimeBudgetCallback(minutes=1.0, decay_fraction=0.5, eval_interval=5)
    for elapsed in (10, 31, 44):
        early = [validated(budget, elapsed, e)[0] for e in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.0)]
        assert early == [False, False, False, False, True, False, True]
    assert validated(budget, 10, 3.0) == (False, True)  # still checkpointed: a resumed run loses one epoch at most
    assert all(validated(budget, 46, e) == (True, True) for e in (11.0, 12.0, 13.0))  # low rate: every epoch
    for every_epoch in (TimeBudgetCallback(1.0, 0.5, eval_interval=1), TimeBudgetCallback(1.0, 0.0, eval_interval=5)):
        assert all(validated(every_epoch, 10, e) == (True, True) for e in (1.0, 2.0, 3.0))
    budget.start = time.monotonic() - 10
    stopping = TrainerControl(should_evaluate=True, should_save=True, should_training_stop=True)
    state = SimpleNamespace(epoch=3.0, global_step=30, max_steps=1000)
    assert budget.on_epoch_end(args, state, stopping).should_evaluate  # stopped by the budget: the last epoch
    last = SimpleNamespace(epoch=3.0, global_step=30, max_steps=30)  # the last of num_train_epochs
    assert budget.on_epoch_end(args, last, TrainerControl(should_evaluate=True)).should_evaluate
    with pytest.raises(ValueError, match="eval_interval"):
        TimeBudgetCallback(1.0, 0.5, eval_interval=0)


def test_evaluation_excludes_the_whole_history_also_before_the_model_window(tmp_path):
    """The standard protocol (SASRec, gSASRec, SASRec+) never ranks an item the user has seen. The model reads only
    the last `max_length` items, but the items before that window must stay out of the ranking too."""
    import datasets

    from hf_recsys.data import ROW_FEATURES
    from hf_recsys.metrics import ranking_metrics
    from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction
    from hf_recsys.training import evaluate_split, make_trainer, sorted_for_eval

    num_items, window = 60, 4
    torch.manual_seed(0)
    config = RecTransformerConfig(
        num_items=num_items, hidden_size=16, num_hidden_layers=1, intermediate_size=32, max_position_embeddings=window
    )
    model = RecTransformerForNextItemPrediction(config).eval()
    gen = torch.Generator().manual_seed(3)
    histories = [(torch.randperm(num_items, generator=gen)[:n] + 1).tolist() for n in (25, 13, 3, 30, 9, 2)]
    rows = {
        "user_id": list(range(1, 7)), "user_index": list(range(1, 7)),
        "input_ids": [h[:-1] for h in histories], "target": [h[-1] for h in histories], "timestamp": [0] * 6,
    }  # fmt: skip
    dataset = sorted_for_eval(datasets.Dataset.from_dict(rows, features=ROW_FEATURES))
    args = RecTrainingArguments(
        output_dir=str(tmp_path), per_device_eval_batch_size=4, eval_strategy="no", save_strategy="no",
        load_best_model_at_end=False, compile_loss=False, use_cpu=True, report_to="none", disable_tqdm=True,
    )  # fmt: skip
    trainer = make_trainer(model, args, dataset, None, window)
    top = trainer.predict(dataset).predictions  # (N, 20) ids, seen items excluded

    full = [torch.as_tensor(h) for h in dataset["input_ids"]]
    padded = torch.nn.utils.rnn.pad_sequence(full, batch_first=True)
    with torch.no_grad():  # the model truncates to its window itself; exclusion covers all it was given
        want = model.recommend(padded, k=20).item_ids.numpy()
        window_only = model.recommend(
            torch.nn.utils.rnn.pad_sequence([h[-window:] for h in full], batch_first=True), k=20
        )
    np.testing.assert_array_equal(top, want)
    for ids, history in zip(top, full):
        assert not set(ids.tolist()) & set(history.tolist())
    # the case is real: excluding only the window would recommend items read before it
    assert any(set(ids.tolist()) & set(h[:-window].tolist()) for ids, h in zip(window_only.item_ids, full))
    metrics = evaluate_split(trainer, dataset, "test")
    expected = ranking_metrics(want, np.asarray(dataset["target"]), num_items)
    assert metrics["ndcg@20"] == pytest.approx(expected["ndcg@20"]) and metrics["hr@10"] == pytest.approx(
        expected["hr@10"]
    )


def test_bf16_autocast_trains_with_a_float32_loss_and_float32_scores(sequences_file, tmp_path):
    """What a GPU run does by default (bf16 autocast), on the CPU's autocast: the run trains end to end, the loss and
    the scores stay float32, and the first step's loss is the float32 one to bf16 precision."""
    from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction

    config = RecTransformerConfig(num_items=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2)
    model = RecTransformerForNextItemPrediction(config)
    ids, labels = torch.randint(1, 41, (4, 12)), torch.randint(1, 41, (4, 12))
    reference = model(input_ids=ids, labels=labels).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        assert out.loss.dtype == torch.float32
        with torch.no_grad():
            assert model.eval()(input_ids=ids).logits.dtype == torch.float32
    assert out.loss.item() == pytest.approx(reference.item(), rel=2e-2)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    results = run_training(*_args(sequences_file, tmp_path / "run", epochs=2, bf16=True, use_cpu=True))
    assert results["metrics"]["test"]["ndcg@10"] > 0


def test_weight_average_is_what_validation_and_checkpoints_see_and_training_never_updates():
    from types import SimpleNamespace

    from transformers import TrainerControl

    from hf_recsys.training import WeightAverageCallback

    model = torch.nn.Linear(2, 1, bias=False)
    callback = WeightAverageCallback(epochs=1.0)
    args = SimpleNamespace(gradient_accumulation_steps=1)
    callback.on_train_begin(args, None, None, model=model, train_dataloader=[None] * 10)  # 10 steps per epoch
    assert callback._decay == pytest.approx(0.9)
    average, trained = model.weight.detach().clone(), model.weight.detach().clone()
    for step in range(1, 31):
        callback.on_step_begin(args, None, TrainerControl())
        torch.testing.assert_close(model.weight.detach(), trained)  # the optimizer only sees the trained weights
        with torch.no_grad():
            model.weight.add_(1.0)  # a training step
        trained += 1.0
        evaluate = step % 10 == 0
        callback.on_step_end(args, SimpleNamespace(global_step=step), TrainerControl(should_evaluate=evaluate))
        decay = min(0.9, (1.0 + step) / (10.0 + step))
        average = decay * average + (1 - decay) * trained
        torch.testing.assert_close(model.weight.detach(), average if evaluate else trained)  # validation: the average
    assert (model.weight.detach() < trained).all()  # the average lags the trend
    # an iterable dataset has no length: the steps per epoch come from the Trainer's plan
    planned = SimpleNamespace(gradient_accumulation_steps=1, num_train_epochs=3.0)
    other = WeightAverageCallback(epochs=1.0)
    other.on_train_begin(planned, SimpleNamespace(max_steps=30), None, model=model, train_dataloader=iter([]))
    assert other._decay == pytest.approx(0.9)
    with pytest.raises(ValueError, match="epochs"):
        WeightAverageCallback(0)


def test_run_with_a_weight_average_saves_the_average(sequences_file, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    run_training(*_args(sequences_file, out, epochs=2, weight_average_epochs=1.0))
    plain = tmp_path / "plain"
    run_training(*_args(sequences_file, plain, epochs=2))
    averaged, trained = load_file(out / "model.safetensors"), load_file(plain / "model.safetensors")
    # same seed, same batches, same updates: only the saved weights differ
    assert averaged.keys() == trained.keys()
    assert any(not torch.equal(averaged[k], trained[k]) for k in averaged)
    # the weights kept are the ones validated: their validation score is the best one the run logged
    results = json.loads((out / "results.json").read_text())
    best = max(row["valid_ndcg@10"] for row in results["history"] if "valid_ndcg@10" in row)
    assert results["metrics"]["validation"]["ndcg@10"] == pytest.approx(best, abs=1e-6)
    assert results["training"]["weight_average_epochs"] == 1.0
