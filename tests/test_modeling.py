"""RecTransformer config + model: what issue 4 demands, on tiny models (hidden 16-32, 50 items)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

import hf_recsys
from hf_recsys.modeling import RecTransformerConfig, RecTransformerForNextItemPrediction

NUM_ITEMS = 50
NUM_USERS = 8
MODES = ("none", "add", "prepend", "concat")
# the block types: plain pre-LayerNorm (GELU), LiGR (sigmoid-gated residuals, SwiGLU feed-forward) and plain
# attention with a learnt bias per query-key distance
BLOCKS = ({}, {"hidden_act": "swiglu", "residual_gating": True}, {"relative_attention_bias": True})
BLOCK_IDS = ("pre-ln", "ligr", "relative-bias")
USER_MODES = ("add", "prepend", "concat")
# the auto_map files and every sibling they import (save_pretrained follows the relative imports)
CODE_FILES = (
    "configuration_rec_transformer.py",
    "modeling_rec_transformer.py",
    "layers.py",
    "losses.py",
    "recommending.py",
    "catalogue_editing.py",
)


def make_config(**overrides):
    kwargs = {
        "num_items": NUM_ITEMS,
        "num_users": NUM_USERS,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 12,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        # the mechanics under test, not the training recipe's regularisers (the recipe is tested in test_cli.py)
        "user_dropout_prob": 0.0,
        "relative_attention_bias": False,
        "exclude_seen_in_loss": False,
    }
    kwargs.update(overrides)
    return RecTransformerConfig(**kwargs)


def make_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return randomize_relative_bias(RecTransformerForNextItemPrediction(make_config(**overrides)).eval())


def randomize_relative_bias(model):
    """Relative attention biases start at 0 (plain attention); random ones make every check below see them."""
    with torch.no_grad():
        for layer in model.rec_transformer.layers:
            if layer.attention.relative_bias is not None:
                layer.attention.relative_bias.normal_()
    return model


def pad(seqs, side="right", length=None):
    length = length or max(len(s) for s in seqs)
    rows = [[0] * (length - len(s)) + list(s) if side == "left" else list(s) + [0] * (length - len(s)) for s in seqs]
    return torch.tensor(rows, dtype=torch.long)


# a multi-valued field (genres: up to 3 of 4 values) and a categorical one (decade: 3 values), as MovieLens has
ITEM_FIELDS = [{"name": "genres", "size": 5, "max_values": 3}, {"name": "decade", "size": 4, "max_values": 1}]
# two categorical user fields (e.g. gender, age group)
USER_FIELDS = [{"name": "gender", "size": 3, "max_values": 1}, {"name": "age", "size": 5, "max_values": 1}]
SIDES = {"item_feature_fields": ITEM_FIELDS}


def random_values(fields, rows, seed=0):
    """Random values for every row of every field (row 0 = padding / unknown user: all 0); some slots are 0."""
    g = torch.Generator().manual_seed(seed)
    values = {}
    for f in fields:
        m = torch.randint(1, f["size"], (rows, f["max_values"]), generator=g)
        if f["max_values"] > 1:  # multi rows have 1..max_values values, the rest padding
            m[:, 1:] *= torch.rand(rows, f["max_values"] - 1, generator=g) < 0.6
        m[0] = 0
        values[f["name"]] = m
    return values


def set_side_features(model, seed=0):
    """Random feature values for every item (and every user, when the model reads user features), so the
    embedding bags train."""
    config = model.config
    if config.item_feature_fields:
        model.set_item_features(random_values(config.item_feature_fields, config.vocab_size, seed))
    if config.user_feature_fields and config.user_conditioning != "none":
        model.set_user_features(random_values(config.user_feature_fields, config.num_users + 1, seed + 1))


def bag_vector(bag, values):
    """An embedding bag's mean, by hand: the mean embedding of the non-zero values (0 without any)."""
    values = [int(v) for v in values if v != 0]
    if not values:
        return torch.zeros(bag.weight.shape[1])
    return bag.weight[values].mean(0)


def assert_same_weights(a, b):
    """Every parameter and buffer (persistent or not: item counts, side features, sinusoidal table) bit-identical."""
    tensors_a = dict(a.named_parameters()) | dict(a.named_buffers())
    tensors_b = dict(b.named_parameters()) | dict(b.named_buffers())
    assert tensors_a.keys() == tensors_b.keys()
    for name, tensor in tensors_a.items():
        assert torch.equal(tensor, tensors_b[name]), name


def synthetic_sequences():
    """16 histories of 9 items, each an arithmetic walk (distinct start, step 1-3) over the catalogue: the next item
    is a deterministic function of the history, so a tiny model can fit every transition."""
    g = torch.Generator().manual_seed(0)
    starts = torch.randperm(NUM_ITEMS, generator=g)[:16]
    steps = torch.arange(16) % 3 + 1
    return 1 + (starts[:, None] + torch.arange(9)[None, :] * steps[:, None]) % NUM_ITEMS


pytestmark = pytest.mark.usefixtures("single_thread")


SEQS = [[5, 9, 2, 7, 1, 3], [4, 8], [10, 11, 12, 13], [6]]
SEQ_USERS = torch.tensor([1, 2, 3, 0])


# --------------------------------------------------------------------------------------------- save / load


@pytest.mark.parametrize(
    "overrides",
    [
        {"user_conditioning": "prepend", "position_embedding_type": "sinusoidal"},
        {"user_conditioning": "concat", "tie_word_embeddings": False, "user_feature_fields": USER_FIELDS},
        {"user_conditioning": "add", **SIDES, "user_feature_fields": USER_FIELDS},
        {"user_conditioning": "none", **SIDES, "item_features_in_output": True},
        {"user_conditioning": "add", "hidden_act": "swiglu", "residual_gating": True},
        {"user_conditioning": "none", "output_item_bias": True},
        {"user_conditioning": "prepend", "relative_attention_bias": True},
    ],
    ids=[
        "prepend-sinusoidal",
        "concat-untied-features",
        "add-item-features",
        "item-features-in-output",
        "add-ligr-block",
        "output-item-bias",
        "prepend-relative-bias",
    ],
)
def test_save_pretrained_from_pretrained_roundtrip(tmp_path, overrides):
    model = make_model(**overrides)
    set_side_features(model)  # the feature values are buffers: they must travel with the weights
    model.set_item_popularity(torch.arange(NUM_ITEMS + 1, dtype=torch.float32))
    ids = pad(SEQS, "left")
    kwargs = {"user_ids": SEQ_USERS}  # known users' feature values come from the model itself
    expected = model(ids, logits_to_keep=0, **kwargs).logits

    model.save_pretrained(tmp_path)
    saved = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", *CODE_FILES} <= saved
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "rec_transformer"
    assert config["item_feature_fields"] == overrides.get("item_feature_fields", [])
    assert config["user_feature_fields"] == overrides.get("user_feature_fields", [])
    assert config["auto_map"]["AutoConfig"] == "configuration_rec_transformer.RecTransformerConfig"
    assert config["auto_map"]["AutoModel"] == "modeling_rec_transformer.RecTransformerForNextItemPrediction"

    for loader in (RecTransformerForNextItemPrediction, AutoModel):
        loaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(loaded, RecTransformerForNextItemPrediction)
        assert_same_weights(loaded, model)
        # identical weights; the logits may differ in the last ulp only (kernels depend on memory alignment)
        torch.testing.assert_close(loaded(ids, logits_to_keep=0, **kwargs).logits, expected, rtol=0, atol=1e-6)
        tied = loaded.output_embeddings.weight is loaded.get_input_embeddings().weight
        assert tied == model.config.tie_word_embeddings
    assert AutoConfig.from_pretrained(tmp_path).to_dict()["user_conditioning"] == overrides["user_conditioning"]


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["hf_recsys"] = None  # installed (editable) in this venv: make it unimportable before anything else
    try:
        import hf_recsys  # noqa: F401
    except ImportError:
        blocked = True
    else:
        blocked = False

    import torch
    from transformers import AutoConfig, AutoModel

    folder, inputs_path, out_path, package_dir = sys.argv[1:5]
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    inputs = torch.load(inputs_path)
    with torch.no_grad():
        logits = model(**inputs, logits_to_keep=0).logits
        recommended = model.recommend(inputs["input_ids"], user_ids=inputs["user_ids"], k=5).item_ids
    leaked = sorted(
        name for name, module in sys.modules.items()
        if module is not None and (getattr(module, "__file__", None) or "").startswith(package_dir)
    )
    torch.save(
        {
            "blocked": blocked,
            "leaked": leaked,
            "config_module": type(config).__module__,
            "model_module": type(model).__module__,
            "model_class": type(model).__name__,
            "logits": logits,
            "recommended": recommended,
        },
        out_path,
    )
    """
)


def test_trust_remote_code_load_in_a_fresh_process_without_hf_recsys(tmp_path):
    model = make_model(user_conditioning="prepend", position_embedding_type="sinusoidal")
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    inputs = {"input_ids": pad(SEQS, "left"), "user_ids": SEQ_USERS}
    torch.save(inputs, tmp_path / "inputs.pt")
    (tmp_path / "load.py").write_text(REMOTE_CODE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf_home"),
        HF_MODULES_CACHE=str(tmp_path / "hf_modules"),
        OMP_NUM_THREADS="1",
    )
    package_dir = str(Path(hf_recsys.__file__).resolve().parent)
    args = [str(folder), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt"), package_dir]
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "load.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = torch.load(tmp_path / "out.pt")
    assert result["blocked"], "hf_recsys was importable in the subprocess: the test would prove nothing"
    assert result["leaked"] == []
    assert result["config_module"].startswith("transformers_modules.")
    assert result["model_module"].startswith("transformers_modules.")
    assert result["model_class"] == "RecTransformerForNextItemPrediction"
    with torch.no_grad():
        expected = model(**inputs, logits_to_keep=0).logits
        expected_items = model.recommend(inputs["input_ids"], user_ids=inputs["user_ids"], k=5).item_ids
    torch.testing.assert_close(result["logits"], expected, rtol=0, atol=1e-6)
    assert torch.equal(result["recommended"], expected_items)


# --------------------------------------------------------------------------------------------- causality


@pytest.mark.parametrize("block", BLOCKS, ids=BLOCK_IDS)
@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
@pytest.mark.parametrize("mode", MODES)
def test_later_items_never_change_earlier_outputs(mode, position, block):
    model = make_model(user_conditioning=mode, position_embedding_type=position, **block)
    offset = 1 if mode == "prepend" else 0  # hidden position of item j is j + offset (0 = user token)
    ids = torch.randint(1, NUM_ITEMS + 1, (3, 8), generator=torch.Generator().manual_seed(1))
    left_padded = ids.clone()
    left_padded[2, :3] = 0  # forces the explicit-mask attention path for the whole batch
    users = torch.tensor([1, 2, 0])
    for batch, positions in ((ids, (0, 3, 7)), (left_padded, (4, 7))):
        base = model(batch, user_ids=users, logits_to_keep=0).logits
        for t in positions:
            changed = batch.clone()
            changed[:, t] = changed[:, t] % NUM_ITEMS + 1
            out = model(changed, user_ids=users, logits_to_keep=0).logits
            torch.testing.assert_close(out[:, : t + offset], base[:, : t + offset], rtol=0, atol=1e-6)
            # ... while the changed position itself does react (the check above is not vacuous)
            assert (out[:, t + offset, 1:] - base[:, t + offset, 1:]).abs().amax(-1).min() > 1e-4


# --------------------------------------------------------------------------------------------- padding


@pytest.mark.parametrize("block", BLOCKS, ids=BLOCK_IDS)
@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
@pytest.mark.parametrize("mode", MODES)
def test_left_right_padding_and_single_rows_agree(mode, position, block):
    model = make_model(user_conditioning=mode, position_embedding_type=position, **block)
    offset = 1 if mode == "prepend" else 0
    right, left = pad(SEQS, "right"), pad(SEQS, "left")
    length = right.shape[1]
    all_right = model(right, user_ids=SEQ_USERS, logits_to_keep=0).logits
    all_left = model(left, user_ids=SEQ_USERS, logits_to_keep=0).logits
    last_right = model(right, user_ids=SEQ_USERS).logits
    last_left = model(left, user_ids=SEQ_USERS).logits
    # an explicit attention mask that only repeats the padding changes nothing
    torch.testing.assert_close(model(left, attention_mask=left != 0, user_ids=SEQ_USERS).logits, last_left)

    for i, seq in enumerate(SEQS):
        n = len(seq)
        alone = model(torch.tensor([seq]), user_ids=SEQ_USERS[i : i + 1], logits_to_keep=0).logits[0]
        real_right = all_right[i, : offset + n]
        real_left = torch.cat([all_left[i, :offset], all_left[i, offset + length - n :]])
        torch.testing.assert_close(real_right, alone, rtol=0, atol=1e-5)
        torch.testing.assert_close(real_left, alone, rtol=0, atol=1e-5)
        torch.testing.assert_close(last_right[i], alone[-1], rtol=0, atol=1e-5)
        torch.testing.assert_close(last_left[i], alone[-1], rtol=0, atol=1e-5)

    right_rec = model.recommend(right, user_ids=SEQ_USERS, k=5)
    left_rec = model.recommend(left, user_ids=SEQ_USERS, k=5)
    assert torch.equal(right_rec.item_ids, left_rec.item_ids)


def test_int32_inputs_match_int64():
    model = make_model(user_conditioning="prepend")
    ids = pad(SEQS, "left")
    expected = model(ids, user_ids=SEQ_USERS).logits
    got = model(ids.int(), user_ids=SEQ_USERS.int()).logits
    torch.testing.assert_close(got, expected)
    loss = model(ids.int(), labels=torch.where(ids > 0, ids % NUM_ITEMS + 1, -100).int()).loss
    assert torch.isfinite(loss)


# --------------------------------------------------------------------------------------------- losses


LOSS_SETTINGS = [
    ("ce", "uniform"),
    ("sampled_softmax", "uniform"),
    ("sampled_softmax", "popularity"),
    ("bce", "uniform"),
    ("gbce", "uniform"),
]
LOSS_IDS = ["ce", "sampled-uniform", "sampled-popularity", "bce", "gbce"]


@pytest.mark.parametrize(("loss_type", "sampling"), LOSS_SETTINGS, ids=LOSS_IDS)
def test_every_loss_overfits_a_small_sequence_set(loss_type, sampling):
    seqs = synthetic_sequences()
    inputs, labels = seqs[:, :-1], seqs[:, 1:]
    users = torch.arange(1, 17) % (NUM_USERS + 1)
    model = make_model(
        hidden_size=32,
        intermediate_size=64,
        num_users=NUM_USERS,
        user_conditioning="add",
        loss_type=loss_type,
        negative_sampling=sampling,
        num_negatives=32,
    ).train()
    model.set_item_popularity(torch.bincount(seqs.flatten(), minlength=NUM_ITEMS + 1).float())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = []
    # softmax losses fit in ~100 steps; the sigmoid losses first push every score down, then separate slowly
    steps = {"ce": 100, "sampled_softmax": 150, "bce": 300, "gbce": 600}[loss_type]
    for _ in range(steps):
        loss = model(inputs, user_ids=users, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    initial, final = history[0], sum(history[-10:]) / 10
    assert final < 0.2 * initial, (initial, final)

    with torch.no_grad():
        logits = model.eval()(inputs, user_ids=users, logits_to_keep=0).logits
    accuracy = (logits.argmax(-1) == labels).float().mean().item()
    assert accuracy > (0.9 if loss_type in ("ce", "sampled_softmax") else 0.7), accuracy


@pytest.mark.parametrize("block", BLOCKS, ids=BLOCK_IDS)
@pytest.mark.parametrize(("loss_type", "sampling"), LOSS_SETTINGS, ids=LOSS_IDS)
@pytest.mark.parametrize("mode", MODES)
def test_gradients_reach_every_trainable_parameter(mode, loss_type, sampling, block):
    model = make_model(
        **block,
        user_conditioning=mode,
        loss_type=loss_type,
        negative_sampling=sampling,
        num_negatives=16,
        user_feature_fields=USER_FIELDS,
        item_feature_fields=ITEM_FIELDS,
        output_item_bias=True,
        tie_word_embeddings=mode != "concat",  # the untied output table must train too
    ).train()
    set_side_features(model)  # users 1-3 have stored feature values; the unknown user 0 has none
    model.set_item_popularity(torch.arange(NUM_ITEMS + 1, dtype=torch.float32))
    ids = pad(SEQS, "left")
    labels = torch.where(ids > 0, ids % NUM_ITEMS + 1, -100)
    model(ids, user_ids=SEQ_USERS, labels=labels).loss.backward()

    names = [name for name, _ in model.named_parameters()]
    if mode == "none":  # parameters that could never get a gradient must not exist
        assert not [n for n in names if ".user." in n or "user_projection" in n]
    assert any("user_projection" in n for n in names) == (mode == "concat")
    for name, param in model.named_parameters():
        assert param.requires_grad, name
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name
    # padding is never a class, never a target: its row never moves
    assert not model.get_input_embeddings().weight.grad[0].any()
    assert not model.get_output_embeddings().weight.grad[0].any()
    assert not model.output_bias.grad[0]
    # nor does a feature bag's padding row (0 = padding, missing or unknown adds nothing)
    bags = [*model.rec_transformer.embeddings.item_features.bags]
    if mode != "none":
        bags += [*model.rec_transformer.user.user_features.bags]
    assert len(bags) == (2 if mode == "none" else 4)
    for bag in bags:
        assert not bag.weight.grad[0].any()


@pytest.mark.parametrize("tie", [True, False])
def test_item_features_in_output_score_items_with_their_side_vectors(tie):
    """item_features_in_output: scores are <hidden, output row + genre mean + decade embedding>, the fused training
    loss is the cross-entropy of exactly those scores, and the feature bags get gradient from the output side."""
    sides = {**SIDES, "tie_word_embeddings": tie}
    model = make_model(**sides, item_features_in_output=True, exclude_seen_in_loss=False)
    plain = make_model(**sides, item_features_in_output=False)  # same seed: same weights; read, not scored
    for m in (model, plain):
        set_side_features(m)
    emb = model.rec_transformer.embeddings
    side = emb.side_vectors()
    assert side.shape == (NUM_ITEMS + 1, 16) and not side[0].any()  # padding adds nothing
    genres, decade = emb.item_features.bags
    values = emb.item_feature_values[3]
    expected_row3 = bag_vector(genres, values[:3]) + bag_vector(decade, values[3:])
    torch.testing.assert_close(side[3], expected_row3)
    torch.testing.assert_close(model.output_weight(), model.get_output_embeddings().weight + side)

    ids = pad(SEQS, "left")
    with torch.no_grad():
        hidden = model.rec_transformer(ids).last_hidden_state[:, -1]
        logits = model(ids).logits
        reference = hidden @ (model.get_output_embeddings().weight + side).t()
        torch.testing.assert_close(logits[:, 1:], reference[:, 1:])
        assert torch.isneginf(logits[:, 0]).all()
        torch.testing.assert_close(logits[:, 1:] - plain(ids).logits[:, 1:], (hidden @ side.t())[:, 1:])

    labels = torch.where(ids > 0, ids % NUM_ITEMS + 1, -100)
    loss = model(ids, labels=labels).loss
    all_logits = model(ids, logits_to_keep=0).logits
    torch.testing.assert_close(loss, F.cross_entropy(all_logits[labels != -100], labels[labels != -100]))
    loss.backward()
    plain(ids, labels=labels).loss.backward()
    for i, name in enumerate(("genres", "decade")):
        with_output = emb.item_features.bags[i].weight.grad
        input_only = plain.rec_transformer.embeddings.item_features.bags[i].weight.grad
        assert not torch.allclose(with_output, input_only), name  # the scores' share of the gradient

    assert not make_config(item_features_in_output=True).item_features_in_output  # nothing to score with


@pytest.mark.parametrize("features", [False, True], ids=["ids-only", "features-in-output"])
def test_output_item_bias_adds_a_learnt_score_per_item(features):
    """output_item_bias: scores are <hidden, output row> + b_item at serving time, the fused training loss is the
    cross-entropy of exactly those scores, and the bias starts at zero (the model scores as without it)."""
    sides = {**SIDES, "item_features_in_output": True} if features else {}
    model = make_model(**sides, output_item_bias=True, exclude_seen_in_loss=False)
    plain = make_model(**sides)  # same seed, same weights, no bias
    for m in (model, plain):
        if features:
            set_side_features(m)
    ids = pad(SEQS, "left")
    assert not model.output_bias.any()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, plain(ids).logits)
        model.output_bias.copy_(torch.randn(NUM_ITEMS + 1))
        hidden = model.rec_transformer(ids).last_hidden_state[:, -1]
        logits = model(ids).logits
        reference = hidden @ model.output_weight().t() + model.output_bias
        torch.testing.assert_close(logits[:, 1:], reference[:, 1:])
        assert torch.isneginf(logits[:, 0]).all()
        top = model.recommend(ids, k=5, exclude_seen=False).item_ids
        assert torch.equal(top, reference[:, 1:].topk(5).indices + 1)

    labels = torch.where(ids > 0, ids % NUM_ITEMS + 1, -100)
    loss = model(ids, labels=labels).loss
    all_logits = model(ids, logits_to_keep=0).logits
    torch.testing.assert_close(loss, F.cross_entropy(all_logits[labels != -100], labels[labels != -100]))
    loss.backward()
    # d loss / d b_item = mean over labelled positions of (softmax - one-hot target): the bias trains
    selected = labels[labels != -100]
    expected = (all_logits[labels != -100].softmax(-1) - F.one_hot(selected, NUM_ITEMS + 1)).mean(0)
    torch.testing.assert_close(model.output_bias.grad, expected.detach())


@pytest.mark.parametrize("mode", MODES)
def test_training_loss_only_scores_labelled_positions(mode):
    """The per-position CE equals cross-entropy of the full logits at labelled positions only (pad excluded);
    with a prepended user token, that token predicts the first item."""
    model = make_model(user_conditioning=mode, hidden_size=16)
    ids = pad(SEQS, "left")
    labels = torch.where(ids > 0, ids % NUM_ITEMS + 1, -100)
    loss = model(ids, user_ids=SEQ_USERS, labels=labels).loss
    logits = model(ids, user_ids=SEQ_USERS, logits_to_keep=0).logits
    if mode == "prepend":
        first = torch.tensor([[s[0]] for s in SEQS])
        labels = torch.cat([first, labels], dim=1)
    torch.testing.assert_close(loss, F.cross_entropy(logits[labels != -100], labels[labels != -100]))
    # the same histories right-padded (the collator's layout) give the same loss
    right = pad(SEQS, "right")
    right_labels = torch.where(right > 0, right % NUM_ITEMS + 1, -100)
    torch.testing.assert_close(model(right, user_ids=SEQ_USERS, labels=right_labels).loss, loss)


@pytest.mark.parametrize("mode", ["none", "prepend"])
def test_future_window_loss_is_the_soft_next_items_cross_entropy(mode):
    """future_window=k trains position t on items t+1..t+k (weights decay^j, renormalised where the history
    ends); window 1 is the plain next-item loss."""
    ids = pad(SEQS, "right")
    labels = torch.where(ids > 0, ids % NUM_ITEMS + 1, -100)
    plain = make_model(user_conditioning=mode, hidden_size=16)
    windowed = make_model(user_conditioning=mode, hidden_size=16, future_window=3, future_decay=0.5)
    windowed.load_state_dict(plain.state_dict())
    logits = plain(ids, user_ids=SEQ_USERS, logits_to_keep=0).logits
    if mode == "prepend":
        first = torch.tensor([[s[0]] for s in SEQS])
        labels = torch.cat([first, labels], dim=1)
    log_p = logits[..., 1:].log_softmax(-1)
    expected = []
    for row in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if labels[row, t] == -100:
                continue
            future = [labels[row, t + j].item() for j in range(3) if t + j < labels.shape[1]]
            future = [(item, 0.5**j) for j, item in enumerate(future) if item != -100]
            total = sum(w for _, w in future)
            expected.append(-sum(w / total * log_p[row, t, item - 1] for item, w in future))
    with torch.no_grad():
        got = windowed(pad(SEQS, "right"), user_ids=SEQ_USERS, labels=labels if mode == "none" else labels[:, 1:]).loss
    torch.testing.assert_close(got, torch.stack(expected).mean(), rtol=1e-5, atol=1e-6)
    # with gradients the fused chunked path gives the same value
    fused = windowed(pad(SEQS, "right"), user_ids=SEQ_USERS, labels=labels if mode == "none" else labels[:, 1:]).loss
    torch.testing.assert_close(fused, got, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["none", "prepend"])
def test_recency_half_life_weighs_each_target_by_its_distance_to_the_history_end(mode):
    """recency_half_life=h: the loss is the mean of the per-position losses weighted by 0.5 ** (d / h), with d
    the number of targets after that position in its history (the user token's target included)."""
    ids = pad(SEQS, "right")
    labels = torch.where(ids > 0, ids % NUM_ITEMS + 1, -100)
    plain = make_model(user_conditioning=mode, hidden_size=16, exclude_seen_in_loss=True)
    weighted = make_model(user_conditioning=mode, hidden_size=16, exclude_seen_in_loss=True, recency_half_life=2.0)
    weighted.load_state_dict(plain.state_dict())
    logits = plain(ids, user_ids=SEQ_USERS, logits_to_keep=0).logits
    full_labels = labels
    if mode == "prepend":
        full_labels = torch.cat([torch.tensor([[s[0]] for s in SEQS]), labels], dim=1)
    losses, weights = [], []
    for row in range(full_labels.shape[0]):
        targets = [t for t in range(full_labels.shape[1]) if full_labels[row, t] != -100]
        for t in targets:
            target = int(full_labels[row, t])
            read = {int(i) for i in ids[row, : t + 1 - (mode == "prepend")] if i} - {target}
            scores = logits[row, t].clone()
            scores[list(read)] = -torch.inf
            losses.append(-scores.log_softmax(-1)[target])
            weights.append(0.5 ** ((targets[-1] - t) / 2.0))  # targets are contiguous: distance in positions
    weights = torch.tensor(weights)
    expected = (torch.stack(losses) * weights).sum() / weights.sum()
    for grad in (False, True):  # the evaluation path and the fused training path
        with torch.set_grad_enabled(grad):
            got = weighted(ids, user_ids=SEQ_USERS, labels=labels).loss
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, plain(ids, user_ids=SEQ_USERS, labels=labels).loss)


@pytest.mark.parametrize("mode", ["none", "prepend"])
def test_exclude_seen_in_loss_leaves_read_items_out_of_each_softmax(mode):
    """exclude_seen_in_loss: position t's softmax excludes the items it has read (the user token has read none)."""
    ids = pad(SEQS, "left")
    labels = torch.where(ids > 0, ids % NUM_ITEMS + 1, -100)
    plain = make_model(user_conditioning=mode, hidden_size=16)
    masked = make_model(user_conditioning=mode, hidden_size=16, exclude_seen_in_loss=True)
    masked.load_state_dict(plain.state_dict())
    logits = plain(ids, user_ids=SEQ_USERS, logits_to_keep=0).logits
    full_labels = labels
    offset = 0
    if mode == "prepend":
        full_labels = torch.cat([torch.tensor([[s[0]] for s in SEQS]), labels], dim=1)
        offset = 1
    expected = []
    for row in range(full_labels.shape[0]):
        for t in range(full_labels.shape[1]):
            target = int(full_labels[row, t])
            if target == -100:
                continue
            read = {int(i) for i in ids[row, : t + 1 - offset] if i} - {target}
            scores = logits[row, t].clone()
            scores[list(read)] = -torch.inf
            expected.append(-scores.log_softmax(-1)[target])
    for grad in (False, True):  # the evaluation path and the fused training path
        with torch.set_grad_enabled(grad):
            got = masked(ids, user_ids=SEQ_USERS, labels=labels).loss
        torch.testing.assert_close(got, torch.stack(expected).mean(), rtol=1e-5, atol=1e-6)
    assert got < plain(ids, user_ids=SEQ_USERS, labels=labels).loss


def test_one_dimensional_labels_give_the_next_item_loss_and_hidden_states():
    model = make_model()
    ids = pad(SEQS, "right")
    targets = torch.tensor([1, 2, 3, 4])
    out = model(ids, labels=targets, output_hidden_states=True)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, targets))
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert out.logits.shape == (4, NUM_ITEMS + 1)
    assert (out.logits[:, 0] == -torch.inf).all()
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(ids, labels=targets, logits_to_keep=0)
    with pytest.raises(ValueError, match="labels"):
        model(ids, labels=torch.ones(4, 3, dtype=torch.long))


# --------------------------------------------------------------------------------------------- recommend


def test_recommend_excludes_seen_and_padding_and_sorts():
    model = make_model(user_conditioning="add")
    ids = pad(SEQS, "left")
    rec = model.recommend(ids, user_ids=SEQ_USERS, k=10)
    assert rec.item_ids.shape == rec.scores.shape == (4, 10)
    for row, seq in enumerate(SEQS):
        items = rec.item_ids[row].tolist()
        assert 0 not in items
        assert not set(items) & set(seq)
        assert len(set(items)) == 10
    assert (rec.scores[:, :-1] >= rec.scores[:, 1:]).all()
    # the scores are the model's own logits of those items, and nothing better was left out
    logits = model(ids, user_ids=SEQ_USERS).logits
    torch.testing.assert_close(rec.scores, logits.gather(1, rec.item_ids))
    masked = logits.scatter(1, ids, -torch.inf)
    assert (masked.topk(10).values == rec.scores).all()

    # the whole catalogue minus the history can be asked for; one more cannot
    everything = model.recommend(ids[3:], user_ids=SEQ_USERS[3:], k=NUM_ITEMS - 1)
    assert set(everything.item_ids[0].tolist()) == set(range(1, NUM_ITEMS + 1)) - set(SEQS[3])
    with pytest.raises(ValueError, match="left"):
        model.recommend(ids[3:], user_ids=SEQ_USERS[3:], k=NUM_ITEMS)


def test_recommend_exclude_options():
    model = make_model()
    ids = pad(SEQS, "right")
    logits = model(ids).logits
    # the best-scored seen item of row 0 ranks where its score puts it once exclude_seen=False
    seen_best = SEQS[0][logits[0, SEQS[0]].argmax().item()]
    rank = int((logits[0, 1:] > logits[0, seen_best]).sum())
    without_exclusion = model.recommend(ids, k=rank + 1, exclude_seen=False)
    assert without_exclusion.item_ids[0, rank] == seen_best
    assert seen_best not in model.recommend(ids, k=rank + 1).item_ids[0].tolist()
    everything = model.recommend(ids, k=NUM_ITEMS, exclude_seen=False).item_ids
    assert all(set(row) == set(range(1, NUM_ITEMS + 1)) for row in everything.tolist())

    top = model.recommend(ids, k=3).item_ids
    excluded = torch.stack([top[:, 0], torch.zeros(4, dtype=torch.long)], dim=1)  # 0 entries are ignored
    rec = model.recommend(ids, k=3, exclude_item_ids=excluded).item_ids
    assert not (rec == top[:, :1]).any()
    assert torch.equal(rec[:, :2], top[:, 1:])


@pytest.mark.parametrize(
    ("k", "message"),
    [(0, "positive integer"), (-1, "positive integer"), (2.5, "positive integer"), (NUM_ITEMS + 1, "catalogue")],
)
def test_recommend_rejects_bad_k(k, message):
    model = make_model()
    with pytest.raises(ValueError, match=message):
        model.recommend(pad(SEQS), k=k, exclude_seen=False)


def test_recommend_empty_history():
    model = make_model(user_conditioning="add")
    with pytest.raises(ValueError, match="at least one item"):
        model.recommend(torch.tensor([[1, 2], [0, 0]]), k=3)
    with pytest.raises(ValueError, match="empty histories"):
        model.recommend(torch.zeros(2, 0, dtype=torch.long), k=3)

    prepend = make_model(user_conditioning="prepend")
    rec = prepend.recommend(torch.tensor([[0, 0], [3, 4]]), user_ids=torch.tensor([2, 1]), k=3)
    assert rec.item_ids.shape == (2, 3) and (rec.item_ids > 0).all()
    from_nothing = prepend.recommend(torch.zeros(2, 0, dtype=torch.long), user_ids=torch.tensor([2, 1]), k=3)
    assert torch.equal(from_nothing.item_ids[0], rec.item_ids[0])


def test_recommend_runs_in_eval_mode_and_restores_training_mode():
    model = make_model(user_conditioning="add", user_dropout_prob=1.0, hidden_dropout_prob=0.5)
    ids = pad(SEQS)
    expected = model.recommend(ids, user_ids=SEQ_USERS, k=5)
    model.train()
    got = model.recommend(ids, user_ids=SEQ_USERS, k=5)
    assert model.training
    assert torch.equal(got.item_ids, expected.item_ids)
    torch.testing.assert_close(got.scores, expected.scores)


# --------------------------------------------------------------------------------------------- resizing


@pytest.mark.parametrize("tie", [True, False])
def test_resize_item_embeddings(tmp_path, tie):
    model = make_model(
        tie_word_embeddings=tie,
        user_conditioning="add",
        **SIDES,
        output_item_bias=True,
    )
    set_side_features(model)
    with torch.no_grad():
        model.output_bias.copy_(torch.randn(NUM_ITEMS + 1))
    model.set_item_popularity(torch.arange(NUM_ITEMS + 1, dtype=torch.float32))
    emb = model.rec_transformer.embeddings
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    old_values = emb.item_feature_values.clone()
    assert old_values[1:].any()
    old_bias = model.output_bias.detach().clone()
    ids = pad(SEQS, "left")
    before = model(ids, user_ids=SEQ_USERS, logits_to_keep=0).logits

    model.resize_item_embeddings(NUM_ITEMS + 10)

    new_in, new_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert model.config.num_items == NUM_ITEMS + 10
    assert new_in.shape == new_out.shape == (NUM_ITEMS + 11, 16)
    assert torch.equal(new_in[: NUM_ITEMS + 1], old_in)
    assert torch.equal(new_out[: NUM_ITEMS + 1], old_out)
    assert (new_in is new_out) == tie
    values = emb.item_feature_values  # old rows bit-identical, new items' values unknown (0) until set
    assert values.shape == (NUM_ITEMS + 11, 4) and values.dtype == torch.int32
    assert torch.equal(values[: NUM_ITEMS + 1], old_values)
    assert not values[NUM_ITEMS + 1 :].any()
    torch.testing.assert_close(emb.side_vectors(torch.arange(NUM_ITEMS + 1, NUM_ITEMS + 11)), torch.zeros(10, 16))
    assert torch.equal(model.output_bias[: NUM_ITEMS + 1], old_bias)
    assert torch.equal(model.output_bias[NUM_ITEMS + 1 :], old_bias[1:].mean().expand(10))
    assert torch.equal(model.rec_transformer.item_counts[: NUM_ITEMS + 1], torch.arange(NUM_ITEMS + 1.0))
    assert not model.rec_transformer.item_counts[NUM_ITEMS + 1 :].any()
    after = model(ids, user_ids=SEQ_USERS, logits_to_keep=0).logits
    torch.testing.assert_close(after[..., : NUM_ITEMS + 1], before, rtol=0, atol=1e-6)
    assert torch.isfinite(after[..., NUM_ITEMS + 1 :]).all()

    # new items are valid inputs and targets now, and the tie survives an optimiser step
    grown = torch.tensor([[NUM_ITEMS + 3, NUM_ITEMS + 10, 2]])
    loss = model.train()(grown, labels=torch.tensor([[NUM_ITEMS + 10, 2, NUM_ITEMS + 5]])).loss
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.eval()
    assert (model.get_input_embeddings().weight is model.get_output_embeddings().weight) == tie

    model.save_pretrained(tmp_path)
    loaded = RecTransformerForNextItemPrediction.from_pretrained(tmp_path).eval()
    assert loaded.config.num_items == NUM_ITEMS + 10
    assert (loaded.get_input_embeddings().weight is loaded.get_output_embeddings().weight) == tie
    assert_same_weights(loaded, model)
    torch.testing.assert_close(loaded(grown).logits, model(grown).logits, rtol=0, atol=1e-6)

    model.resize_item_embeddings(20)  # shrinking keeps the first rows too
    assert torch.equal(model.get_input_embeddings().weight, loaded.get_input_embeddings().weight[:21])
    with pytest.raises(ValueError, match="input_ids"):
        model.rec_transformer.check_inputs(grown)


@pytest.mark.parametrize("mode", USER_MODES)
def test_resize_user_embeddings(tmp_path, mode):
    model = make_model(user_conditioning=mode, user_feature_fields=USER_FIELDS)
    set_side_features(model)
    user = model.rec_transformer.user
    old = user.user_embeddings.weight.detach().clone()
    old_values = user.user_feature_values.clone()
    assert old_values[1:].any()
    ids = pad(SEQS, "left")
    before = model(ids, user_ids=SEQ_USERS).logits

    model.resize_user_embeddings(NUM_USERS + 4)

    new = model.rec_transformer.user.user_embeddings.weight
    assert model.config.num_users == NUM_USERS + 4
    assert torch.equal(new[: NUM_USERS + 1], old)
    assert all(torch.equal(row, old[0]) for row in new[NUM_USERS + 1 :])  # newcomers start as the unknown user
    values = user.user_feature_values  # old users keep their values; newcomers' are unknown (0) until set
    assert values.shape == (NUM_USERS + 5, 2) and values.dtype == torch.int32
    assert torch.equal(values[: NUM_USERS + 1], old_values)
    assert not values[NUM_USERS + 1 :].any()
    assert torch.equal(model(ids, user_ids=SEQ_USERS).logits, before)
    newcomers = torch.full((4,), NUM_USERS + 4)
    torch.testing.assert_close(model(ids, user_ids=newcomers).logits, model(ids, user_ids=torch.zeros(4).long()).logits)

    model.save_pretrained(tmp_path)
    loaded = RecTransformerForNextItemPrediction.from_pretrained(tmp_path).eval()
    assert loaded.config.num_users == NUM_USERS + 4
    assert_same_weights(loaded, model)
    torch.testing.assert_close(loaded(ids, user_ids=newcomers).logits, model(ids, user_ids=newcomers).logits)


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_ids_raise_clear_errors():
    model = make_model(user_conditioning="add", user_feature_fields=USER_FIELDS[:1])
    ids = pad(SEQS)
    with pytest.raises(ValueError, match="integer tensor"):
        model(ids.float())
    with pytest.raises(ValueError, match=r"shape \(batch, length\)"):
        model(ids[0])
    with pytest.raises(ValueError, match="integer tensor"):
        model(ids.tolist())
    # value checks read the tensors (a device sync): they run at the API boundary, not in forward
    check = model.rec_transformer.check_inputs
    with pytest.raises(ValueError, match=f"\\[0, {NUM_ITEMS}\\]"):
        check(torch.tensor([[1, NUM_ITEMS + 1]]))
    with pytest.raises(ValueError, match="item tokens"):
        check(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="integer tensor"):
        check(ids.float())
    with pytest.raises(ValueError, match="item tokens"):
        model.recommend(torch.tensor([[1, NUM_ITEMS + 1]]), k=3)
    with pytest.raises(IndexError):  # forward itself leaves out-of-range tokens to the embedding lookup
        model(torch.tensor([[1, NUM_ITEMS + 1]]))


def test_forward_never_reads_input_values(monkeypatch):
    """No .min()/.max() on the inputs inside forward (each would be a device sync on a GPU)."""
    model = make_model(user_conditioning="add", user_feature_fields=USER_FIELDS[:1])
    ids = pad(SEQS)
    calls = []
    for name in ("min", "max"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    model(ids, user_ids=SEQ_USERS)  # the stored feature values of each user
    model(ids, user_ids=SEQ_USERS, user_features=torch.ones(4, 1, dtype=torch.long))  # a request's own values
    assert calls == []


def test_bad_user_inputs_raise_clear_errors():
    model = make_model(user_conditioning="add", user_feature_fields=USER_FIELDS[:1])
    ids = pad(SEQS)
    check = model.rec_transformer.check_inputs
    with pytest.raises(ValueError, match="user_ids must be in"):
        check(ids, user_ids=torch.tensor([1, 2, 3, NUM_USERS + 1]))
    with pytest.raises(ValueError, match="user_ids must be in"):
        model.recommend(ids, user_ids=torch.tensor([1, 2, 3, -1]), k=3)
    with pytest.raises(ValueError, match=r"user_ids must be an integer tensor of shape \(4,\)"):
        model(ids, user_ids=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="user_ids must be an integer tensor"):
        model(ids, user_ids=torch.tensor([1.0, 2.0, 3.0, 0.0]))
    with pytest.raises(ValueError, match="user_ids must be an integer tensor"):
        model.recommend(ids, user_ids=torch.tensor([[1, 2, 3, 4]]), k=3)
    shape = r"user_features must be an integer tensor of shape \(4, 1\)"
    with pytest.raises(ValueError, match=shape):
        model(ids, user_ids=SEQ_USERS, user_features=torch.ones(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=shape):
        model(ids, user_ids=SEQ_USERS, user_features=torch.ones(4, 2, dtype=torch.long))  # wider than the fields
    with pytest.raises(ValueError, match=shape):
        model(ids, user_ids=SEQ_USERS, user_features=torch.ones(4, 1))
    out_of_range = r"user_features of field 'gender' must be in \[0, 2\]"
    with pytest.raises(ValueError, match=out_of_range):
        check(ids, user_ids=SEQ_USERS, user_features=torch.tensor([[1], [2], [3], [0]]))
    with pytest.raises(ValueError, match=out_of_range):
        model.recommend(ids, user_ids=SEQ_USERS, user_features=torch.tensor([[1], [2], [3], [0]]), k=3)
    with pytest.raises(ValueError, match=out_of_range):
        check(ids, user_ids=SEQ_USERS, user_features=torch.tensor([[1], [2], [-1], [0]]))
    check(ids, user_ids=SEQ_USERS, user_features=torch.tensor([[1], [2], [2], [0]]))  # in range: no error


@pytest.mark.parametrize("mode", ["none", "prepend"])
def test_overlong_histories_keep_the_most_recent_items(mode):
    max_len = 6
    model = make_model(max_position_embeddings=max_len, user_conditioning=mode)
    seqs = [list(range(1, 11)), [20, 21, 22, 23, 24, 25, 26, 27], [30, 31, 32], list(range(40, 46))]
    recent = [s[-max_len:] for s in seqs]
    users = torch.tensor([1, 2, 3, 0])
    for side in ("right", "left"):
        ids = pad(seqs, side)
        assert ids.shape[1] > max_len
        expected = model(pad(recent, side), user_ids=users).logits
        torch.testing.assert_close(model(ids, user_ids=users).logits, expected, rtol=0, atol=1e-5)
        row_alone = model(torch.tensor([recent[0]]), user_ids=users[:1]).logits
        torch.testing.assert_close(model(ids[:1], user_ids=users[:1]).logits, row_alone, rtol=0, atol=1e-5)
        rec = model.recommend(ids, user_ids=users, k=5).item_ids
        for row, seq in enumerate(seqs):  # even the items cut off by truncation stay excluded
            assert not set(rec[row].tolist()) & set(seq)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(pad(seqs), labels=torch.full(pad(seqs).shape, -100))

    strict = make_model(max_position_embeddings=max_len, user_conditioning=mode, truncate_long_inputs=False)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        strict(pad(seqs), user_ids=users)
    # a long padded tensor whose histories all fit is fine, and is not truncated
    fits = pad(recent[2:], "right", length=max_len + 3)
    torch.testing.assert_close(strict(fits).logits, strict(pad(recent[2:])).logits, rtol=0, atol=1e-5)


def test_settings_that_do_not_apply_are_stored_as_off():
    """The recipe's defaults switch on settings that only some setups use; a config stores what takes effect."""
    assert (
        RecTransformerConfig().exclude_seen_in_loss and not RecTransformerConfig(loss_type="gbce").exclude_seen_in_loss
    )
    assert not RecTransformerConfig().item_features_in_output  # no item side features
    assert RecTransformerConfig(item_feature_fields=ITEM_FIELDS).item_features_in_output
    assert not RecTransformerConfig(user_feature_fields=USER_FIELDS).item_features_in_output  # user fields: no


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"num_items": 0}, "num_items"),
        ({"num_users": -1}, "num_users"),
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        ({"num_attention_heads": 0}, "num_attention_heads"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_hidden_layers": -1}, "num_hidden_layers"),
        ({"intermediate_size": 0}, "intermediate_size"),
        ({"max_position_embeddings": 0}, "max_position_embeddings"),
        ({"hidden_act": "tanh"}, "hidden_act"),
        ({"position_embedding_type": "rope"}, "position_embedding_type"),
        ({"user_conditioning": "multiply"}, "user_conditioning"),
        ({"loss_type": "mse"}, "loss_type"),
        ({"negative_sampling": "hard"}, "negative_sampling"),
        ({"num_negatives": 0}, "num_negatives"),
        ({"gbce_t": 1.5}, "gbce_t"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"attention_probs_dropout_prob": -0.1}, "attention_probs_dropout_prob"),
        ({"user_dropout_prob": 2.0}, "user_dropout_prob"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"future_window": 0}, "future_window"),
        ({"future_window": 2, "loss_type": "bce"}, "future_window"),
        ({"future_decay": 0.0}, "future_decay"),
        ({"recency_half_life": -1.0}, "recency_half_life"),
        ({"recency_half_life": 50.0, "loss_type": "sampled_softmax"}, "recency_half_life"),
        ({"pad_token_id": 3}, "pad_token_id"),
        ({"item_feature_fields": [{"name": "genres", "size": 0, "max_values": 2}]}, "item_feature_fields"),
        ({"item_feature_fields": [{"name": "genres", "size": 5, "max_values": 0}]}, "item_feature_fields"),
        ({"item_feature_fields": [{"size": 5, "max_values": 1}]}, "item_feature_fields"),
        ({"item_feature_fields": [{"name": "", "size": 5}]}, "item_feature_fields"),
        ({"item_feature_fields": ["genres"]}, "item_feature_fields"),
        ({"item_feature_fields": [{"name": "genres", "size": 2.5}]}, "item_feature_fields"),
        ({"user_feature_fields": [{"name": "age", "size": 3}, {"name": "age", "size": 4}]}, "user_feature_fields"),
        ({"user_feature_fields": [{"name": "gender", "size": 3, "max_values": -1}]}, "user_feature_fields"),
        ({"user_feature_fields": [{"name": "gender", "max_values": 1}]}, "user_feature_fields"),
    ],
)
def test_invalid_config_values_raise_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        make_config(**overrides)


# --------------------------------------------------------------------------------------------- users


@pytest.mark.parametrize("mode", MODES)
def test_unknown_users_are_served_in_every_mode(mode):
    model = make_model(user_conditioning=mode)
    ids = pad(SEQS, "left")
    unknown = torch.zeros(4, dtype=torch.long)
    out = model(ids, user_ids=unknown).logits
    assert torch.isfinite(out[:, 1:]).all()
    torch.testing.assert_close(model(ids).logits, out)  # no user ids = unknown users
    rec = model.recommend(ids, user_ids=unknown, k=5)
    assert (rec.item_ids > 0).all()
    known = model(ids, user_ids=SEQ_USERS.clamp_min(1)).logits
    if mode == "none":
        torch.testing.assert_close(known, out)
    else:
        assert not torch.allclose(known, out)


@pytest.mark.parametrize("mode", USER_MODES)
def test_user_dropout_only_acts_in_training(mode):
    model = make_model(user_conditioning=mode, user_dropout_prob=1.0)
    ids = pad(SEQS, "left")
    users = torch.tensor([1, 2, 3, 4])
    unknown = torch.zeros(4, dtype=torch.long)
    assert not torch.allclose(model(ids, user_ids=users).logits, model(ids, user_ids=unknown).logits)
    model.train()  # every id is replaced by the unknown user (dropout probability 1)
    torch.testing.assert_close(model(ids, user_ids=users).logits, model(ids, user_ids=unknown).logits)


@pytest.mark.parametrize("block", BLOCKS, ids=BLOCK_IDS)
@pytest.mark.parametrize("mode", ["none", "add", "prepend", "concat"])
def test_last_position_fast_path_equals_full_scoring(mode, block):
    """Scoring the next item runs the last block only at the last position; it must equal full scoring."""
    torch.manual_seed(0)
    config = RecTransformerConfig(
        num_items=50,
        num_users=5,
        user_conditioning=mode,
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        **block,
    )
    model = randomize_relative_bias(RecTransformerForNextItemPrediction(config).eval())
    x = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [0, 0, 9, 10, 11]])
    users = torch.tensor([1, 2, 0])
    fast = model(x, user_ids=users).logits
    full = model(x, user_ids=users, logits_to_keep=0).logits
    last = torch.tensor([2, 4, 4]) + (1 if mode == "prepend" else 0)
    expected = full[torch.arange(3), last]
    finite = torch.isfinite(expected)
    assert torch.equal(finite, torch.isfinite(fast))
    torch.testing.assert_close(fast[finite], expected[finite], atol=1e-5, rtol=1e-5)


def test_ligr_block_gates_residuals_and_uses_swiglu():
    """The LiGR block computes x + sigmoid(G x) * attn(LN x), then the same around a SwiGLU feed-forward."""
    model = make_model(num_hidden_layers=1, hidden_act="swiglu", residual_gating=True)
    block = model.rec_transformer.layers[0]
    assert block.ffn[0].out_features == 2 * model.config.intermediate_size
    x = torch.randn(2, 5, model.config.hidden_size, generator=torch.Generator().manual_seed(3))
    up = block.ffn[0](block.ffn_norm(x))
    value, gate = up.chunk(2, dim=-1)
    torch.testing.assert_close(block.ffn[1](up), torch.nn.functional.silu(gate) * value)

    attended = block.attention(block.attention_norm(x), None)
    h = x + torch.sigmoid(block.attention_gate(x)) * attended
    expected = h + torch.sigmoid(block.ffn_gate(h)) * block.ffn(block.ffn_norm(h))
    torch.testing.assert_close(block(x, None), expected)
    # with the gates shut (large negative bias) the block is the identity: the gates really scale the updates
    with torch.no_grad():
        block.attention_gate.bias.fill_(-1e4)
        block.ffn_gate.bias.fill_(-1e4)
    torch.testing.assert_close(block(x, None), x)


def test_relative_attention_bias_adds_a_learnt_score_per_query_key_distance():
    from hf_recsys.modeling.layers import _additive

    """Attention logits are q.k / sqrt(d) + b[head, i - j] for keys j <= i; distances past the table share its
    last entry; a zero table is plain causal attention."""
    model = make_model(num_hidden_layers=1, num_attention_heads=2, relative_attention_bias=True)
    attention = model.rec_transformer.layers[0].attention
    bias = attention.relative_bias  # (heads, max_position_embeddings + 1)
    length, heads, dim = 15, 2, 8  # longer than the table (13 entries): the farthest keys share the last one
    x = torch.randn(2, length, 16, generator=torch.Generator().manual_seed(4))
    q, k, v = attention.qkv(x).view(2, length, 3, heads, dim).permute(2, 0, 3, 1, 4)
    distance = torch.arange(length)[:, None] - torch.arange(length)
    logits = q @ k.transpose(-1, -2) / dim**0.5 + bias[:, distance.clamp(0, bias.shape[1] - 1)]
    logits = logits.masked_fill(~torch.ones(length, length, dtype=torch.bool).tril(), -torch.inf)
    expected = attention.out((logits.softmax(-1) @ v).transpose(1, 2).reshape(2, length, 16))
    # the backbone hands every layer the mask as a 0 / -inf table and the distances clamped to the bias table
    causal, index = _additive(distance >= 0, x.dtype), distance.clamp(0, bias.shape[1] - 1)
    torch.testing.assert_close(attention(x, causal, distance=index), expected)
    # one query per row (the serving fast path) reads the same row of the biased logits
    last = torch.tensor([14, 6])
    keys = _additive((torch.arange(length) <= last[:, None])[:, None, None, :], x.dtype)
    fast = attention(x, keys, last, distance=(last[:, None, None] - torch.arange(length)).clamp(0, bias.shape[1] - 1))
    torch.testing.assert_close(fast[:, 0], expected[torch.arange(2), last])
    # a zero table is plain causal attention: the bias is not vacuous above
    plain = make_model(num_hidden_layers=1, num_attention_heads=2).rec_transformer.layers[0].attention
    with torch.no_grad():
        bias.zero_()
    torch.testing.assert_close(attention(x, causal, distance=index), plain(x, None))
    assert not torch.allclose(expected, plain(x, None))


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_byte_dropout_drops_at_the_rounded_rate_and_keeps_the_expectation(p):
    from hf_recsys.modeling.layers import ByteDropout

    drop = ByteDropout(p).train()
    x = torch.full((1000, 999), 2.0, requires_grad=True)  # an odd size: the last int64 is only partly used
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    rate = round(256 * p) / 256
    assert abs(1 - kept.float().mean().item() - rate) < 2e-3
    assert abs(y.mean().item() - 2.0) < 1e-2  # kept values are scaled by the exact inverse keep rate
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 * 256 / (256 - round(256 * p))))
    y.sum().backward()  # the gradient flows through kept values only, with the same scale
    torch.testing.assert_close(x.grad, kept.float() * 256 / (256 - round(256 * p)))
    # the mask is not one repeated pattern: rows differ
    assert not torch.equal(kept[0], kept[1])
    torch.manual_seed(0)
    assert torch.equal(drop(x.detach()), y.detach())  # reproducible from the seed
    assert torch.equal(drop.eval()(x), x)  # identity in evaluation
    assert torch.equal(ByteDropout(0.0).train()(x), x)


def test_item_dropout_hides_whole_items_in_training_only():
    """With item_dropout_prob, a hidden item's embedding (side features included) is zero and only its position
    is left; the rate is the configured one, the rest is untouched, and evaluation never hides anything."""
    model = make_model(item_dropout_prob=0.3, **SIDES)
    set_side_features(model)
    embeddings = model.rec_transformer.embeddings
    ids = torch.randint(1, NUM_ITEMS + 1, (200, 12))
    positions = torch.arange(12).expand(200, -1)
    full = embeddings.item_vectors(ids) * embeddings.scale + embeddings.position_embeddings(positions)
    assert torch.equal(embeddings.eval()(ids, positions), full)
    torch.manual_seed(0)
    hidden = embeddings.train()(ids, positions)
    only_position = torch.isclose(hidden, embeddings.position_embeddings(positions)).all(-1)
    assert abs(only_position.float().mean().item() - 0.3) < 0.03
    torch.testing.assert_close(hidden[~only_position], full[~only_position])
    with pytest.raises(ValueError, match="item_dropout_prob"):
        make_config(item_dropout_prob=1.0)


# --------------------------------------------------------------------------------------------- feature fields


def test_feature_fields_config_is_normalised_and_saved(tmp_path):
    """Fields are stored as plain {"name", "size", "max_values"} dicts (max_values 1 unless given); the widths
    are the fields' max_values side by side; a saved config restores them."""
    config = make_config(
        item_feature_fields=[{"name": "genres", "size": 5, "max_values": 3}, {"name": "decade", "size": 4}],
        user_feature_fields=USER_FIELDS,
        user_conditioning="add",
    )
    assert config.item_feature_fields == ITEM_FIELDS
    assert (config.item_feature_width, config.user_feature_width) == (4, 2)
    assert (make_config().item_feature_width, make_config().user_feature_width) == (0, 0)
    assert make_config().item_feature_fields == [] and make_config().user_feature_fields == []
    config.save_pretrained(tmp_path)
    loaded = RecTransformerConfig.from_pretrained(tmp_path)
    assert loaded.item_feature_fields == ITEM_FIELDS and loaded.user_feature_fields == USER_FIELDS
    assert loaded.item_feature_width == 4


def test_item_feature_bags_are_the_mean_of_each_fields_values():
    """side_vectors(ids) = mean embedding of the multi field's values (padding excluded) + the categorical
    field's embedding; a field with no value adds 0, padding and unknown rows add nothing."""
    model = make_model(**SIDES)
    emb = model.rec_transformer.embeddings
    assert emb.item_feature_values.shape == (NUM_ITEMS + 1, 4) and emb.item_feature_values.dtype == torch.int32
    genres_bag, decade_bag = emb.item_features.bags
    assert isinstance(genres_bag, torch.nn.EmbeddingBag) and genres_bag.mode == "mean"
    assert (genres_bag.num_embeddings, decade_bag.num_embeddings) == (5, 4)
    assert genres_bag.padding_idx == decade_bag.padding_idx == 0
    assert not genres_bag.weight[0].any() and not decade_bag.weight[0].any()  # the padding rows start at 0
    genres = torch.zeros(NUM_ITEMS + 1, 3, dtype=torch.long)
    decade = torch.zeros(NUM_ITEMS + 1, 1, dtype=torch.long)
    genres[1], decade[1] = torch.tensor([2, 4, 0]), 3  # two genres, a decade
    genres[2], decade[2] = torch.tensor([1, 2, 3]), 0  # three genres, no decade
    genres[3], decade[3] = torch.tensor([0, 0, 0]), 1  # no genre, a decade
    genres[4] = torch.tensor([0, 3, 0])  # padding before a value
    model.set_item_features({"genres": genres, "decade": decade})
    with torch.no_grad():  # make the padding rows non-zero: a bag that read them would show it
        genres_bag.weight[0].fill_(100.0)
        decade_bag.weight[0].fill_(100.0)
    g, d = genres_bag.weight, decade_bag.weight
    ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
    side = emb.side_vectors(ids)
    assert side.shape == (2, 3, 16)
    torch.testing.assert_close(side[0, 0], (g[2] + g[4]) / 2 + d[3])
    torch.testing.assert_close(side[0, 1], (g[1] + g[2] + g[3]) / 3)
    torch.testing.assert_close(side[0, 2], d[1])
    torch.testing.assert_close(side[1, 0], g[3])
    assert not side[1, 1].any() and not side[1, 2].any()  # an item without values, the padding token: 0
    for token in range(1, 6):  # the helper's hand-written mean agrees with the hand-written rows above
        values = emb.item_feature_values[token]
        expected = bag_vector(genres_bag, values[:3]) + bag_vector(decade_bag, values[3:])
        torch.testing.assert_close(emb.side_vectors(torch.tensor([token]))[0], expected)
    torch.testing.assert_close(emb.side_vectors()[ids], side)  # all tokens at once: the same rows
    # the feature vector is part of what the model reads: same id embedding, different values, different vectors
    with torch.no_grad():
        emb.item_embeddings.weight[2] = emb.item_embeddings.weight[1]
    vectors = emb.item_vectors(torch.tensor([1, 2]))
    assert not torch.allclose(vectors[0], vectors[1])
    before = model(pad(SEQS, "left")).logits
    model.set_item_features({"genres": genres, "decade": torch.zeros_like(decade)})
    assert not torch.allclose(model(pad(SEQS, "left")).logits, before)


def test_set_item_features_checks_and_sets_rows():
    model = make_model(**SIDES)
    values = random_values(ITEM_FIELDS, NUM_ITEMS + 1)
    model.set_item_features(values)
    table = model.rec_transformer.embeddings.item_feature_values
    assert torch.equal(table, torch.cat([values["genres"], values["decade"]], 1).int())
    # rows: the matrices cover every token (numpy works too); only the rows asked for are written
    import numpy as np

    new = {"genres": np.full((NUM_ITEMS + 1, 3), 4), "decade": np.full((NUM_ITEMS + 1, 1), 2)}
    model.set_item_features(new, slice(5, 8))
    assert table[5:8].tolist() == [[4, 4, 4, 2]] * 3
    assert torch.equal(table[:5], torch.cat([values["genres"], values["decade"]], 1)[:5].int())
    assert torch.equal(table[8:], torch.cat([values["genres"], values["decade"]], 1)[8:].int())
    with pytest.raises(ValueError, match="genres"):  # a field missing
        model.set_item_features({"decade": values["decade"]})
    with pytest.raises(ValueError, match="brand"):  # a field the model does not have
        model.set_item_features({**values, "brand": values["decade"]})
    with pytest.raises(ValueError, match=r"'genres'.*\(51, 3\)"):  # wrong width
        model.set_item_features({**values, "genres": values["genres"][:, :2]})
    with pytest.raises(ValueError, match=r"'decade'.*\(51, 1\)"):  # wrong rows
        model.set_item_features({**values, "decade": values["decade"][:10]})
    with pytest.raises(ValueError, match="'decade'"):  # float values
        model.set_item_features({**values, "decade": values["decade"].float()})
    with pytest.raises(ValueError, match=r"'decade'.*\[0, 3\]"):  # out of the field's range
        model.set_item_features({**values, "decade": values["decade"] + 3})


def test_known_users_features_come_from_the_model_and_a_request_may_override_them():
    """The model looks a known user's stored feature values up from user_ids; passing user_features replaces
    them (a new user's own values at request time); the unknown user has none."""
    model = make_model(user_conditioning="add", user_feature_fields=USER_FIELDS)
    ids = pad(SEQS, "left")
    users = torch.tensor([1, 2, 3, 4])
    bare = model(ids, user_ids=users).logits  # nothing stored yet: every user's values are 0 (unknown)
    torch.testing.assert_close(bare, model(ids, user_ids=users, user_features=torch.zeros(4, 2).long()).logits)
    values = {"gender": torch.tensor([[0], [1], [2], [1], [2], [1], [2], [1], [2]]),
              "age": torch.tensor([[0], [4], [3], [2], [1], [1], [2], [3], [4]])}  # fmt: skip
    model.set_user_features(values)
    stored = model.rec_transformer.user.user_feature_values
    assert stored.dtype == torch.int32 and stored[1:5].tolist() == [[1, 4], [2, 3], [1, 2], [2, 1]]
    logits = model(ids, user_ids=users).logits
    assert not torch.allclose(logits, bare)  # the features change what the model predicts
    # the stored values are exactly what a request passing them gives
    torch.testing.assert_close(logits, model(ids, user_ids=users, user_features=stored[users].long()).logits)
    # by hand: the user vector is the id embedding plus each field's embedding
    user = model.rec_transformer.user
    u = user(users, None, 4)
    gender, age = user.user_features.bags
    torch.testing.assert_close(
        u, user.user_embeddings.weight[users] + gender.weight[stored[users, 0]] + age.weight[stored[users, 1]]
    )
    # a request's own values override the stored ones
    override = torch.tensor([[2, 3], [1, 4], [2, 1], [1, 2]])  # = users 2, 1, 4, 3's values
    replaced = model(ids, user_ids=users, user_features=override).logits
    assert not torch.allclose(replaced, logits)
    with torch.no_grad():  # give every user the same id embedding: the features alone tell them apart
        user.user_embeddings.weight[1:5] = user.user_embeddings.weight[1]
    same_ids = model(ids, user_ids=users, user_features=override).logits
    reordered = model(ids, user_ids=torch.tensor([2, 1, 4, 3])).logits
    torch.testing.assert_close(same_ids, reordered)
    # a new user (the unknown id) with features is served differently from one without
    stranger = torch.zeros(4, dtype=torch.long)
    with_features = model(ids, user_ids=stranger, user_features=override).logits
    assert not torch.allclose(with_features, model(ids, user_ids=stranger).logits)
    torch.testing.assert_close(
        model(ids, user_ids=stranger).logits,
        model(ids, user_ids=stranger, user_features=torch.zeros(4, 2).long()).logits,
    )


@pytest.mark.parametrize("mode", USER_MODES)
def test_user_dropout_hides_the_id_but_not_the_features(mode):
    model = make_model(user_conditioning=mode, user_feature_fields=USER_FIELDS, user_dropout_prob=1.0)
    set_side_features(model)
    ids = pad(SEQS, "left")
    users = torch.tensor([1, 2, 3, 4])
    stored = model.rec_transformer.user.user_feature_values[users].long()
    assert (stored > 0).all()
    unknown = torch.zeros(4, dtype=torch.long)
    model.train()  # every id is replaced by the unknown user (dropout probability 1); the features stay
    dropped = model(ids, user_ids=users).logits
    torch.testing.assert_close(dropped, model(ids, user_ids=unknown, user_features=stored).logits)
    assert not torch.allclose(dropped, model(ids, user_ids=unknown).logits)
    # a request's own values are kept too
    override = torch.tensor([[2, 1], [1, 4], [2, 3], [1, 2]])
    torch.testing.assert_close(
        model(ids, user_ids=users, user_features=override).logits,
        model(ids, user_ids=unknown, user_features=override).logits,
    )


def test_set_user_features_needs_a_model_that_reads_user_features():
    values = random_values(USER_FIELDS, NUM_USERS + 1)
    for overrides in (
        {"user_conditioning": "none", "user_feature_fields": USER_FIELDS},
        {"user_conditioning": "add"},
    ):
        with pytest.raises(ValueError, match="reads no user features"):
            make_model(**overrides).set_user_features(values)
    model = make_model(user_conditioning="add", user_feature_fields=USER_FIELDS)
    model.set_user_features(values)
    ones = torch.ones(NUM_USERS + 1, 1, dtype=torch.long)  # every user's values; rows 3 and 4 are written
    model.set_user_features({"gender": ones, "age": ones}, slice(3, 5))
    assert (
        model.rec_transformer.user.user_feature_values[:3].tolist()
        == torch.cat([values["gender"], values["age"]], 1)[:3].tolist()
    )
    assert model.rec_transformer.user.user_feature_values[3:5].tolist() == [[1, 1], [1, 1]]
    assert (
        model.rec_transformer.user.user_feature_values[5:].tolist()
        == torch.cat([values["gender"], values["age"]], 1)[5:].tolist()
    )
    with pytest.raises(ValueError, match="'gender'"):
        model.set_user_features({**values, "gender": values["gender"] + 3})
    with pytest.raises(ValueError, match="age"):
        model.set_user_features({"gender": values["gender"]})


def test_feature_bags_read_an_empty_history():
    """A user token alone (prepend, empty history) with item fields: the bags see a (B, 0, width) input."""
    model = make_model(user_conditioning="prepend", **SIDES)
    set_side_features(model)
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert model.rec_transformer.embeddings.side_vectors(empty).shape == (2, 0, model.config.hidden_size)
    out = model.recommend(empty, user_ids=torch.tensor([1, 2]), k=3, exclude_seen=False)
    assert out.item_ids.shape == (2, 3) and bool((out.item_ids > 0).all())
