"""Configuration of the user-conditioned next-item recommender (``model_type="rec_transformer"``).

This file is copied next to every saved model so that ``AutoConfig.from_pretrained(...,
trust_remote_code=True)`` works without ``hf_recsys`` installed: it imports only ``transformers``.
"""

from __future__ import annotations

from transformers import PreTrainedConfig

USER_CONDITIONING_MODES = ("none", "add", "prepend", "concat")
LOSS_TYPES = ("ce", "sampled_softmax", "bce", "gbce")
POSITION_EMBEDDING_TYPES = ("learned", "sinusoidal", "none")
NEGATIVE_SAMPLERS = ("uniform", "popularity")
HIDDEN_ACTIVATIONS = ("gelu", "relu", "swiglu")


class RecTransformerConfig(PreTrainedConfig):
    r"""Hyperparameters of [`RecTransformerForNextItemPrediction`], a causal (SASRec-style) transformer over a
    user's chronological item history, optionally conditioned on who the user is.

    Item tokens: 0 is padding (`pad_token_id`); the catalogue's items are tokens `1..num_items`, so the item
    embedding table (and the logits) have `num_items + 1` rows. Users: index 0 is the learned *unknown user*
    (people the model never saw), known users are `1..num_users`.

    The defaults are the package's training recipe (`RecTransformerConfig()` is what `hf-recsys train`, `make
    demo` and `make bench` build; the measurements behind each choice are in `benchmarks/tuning.md`). The
    catalogue, the users, the feature tables and the history window come from the data.

    Args:
        num_items (`int`): catalogue size, special tokens excluded.
        num_users (`int`): number of known users (the unknown-user row is added on top). 0 disables user ids.
        hidden_size (`int`): width of item/user embeddings and of the transformer.
        num_hidden_layers (`int`): number of transformer blocks.
        num_attention_heads (`int`): attention heads per block; must divide `hidden_size`.
        intermediate_size (`int`): width of the feed-forward layer in each block.
        hidden_act (`str`): feed-forward activation: `"gelu"`, `"relu"`, or `"swiglu"` (a gated feed-forward,
            `W2(silu(W1 x) * W3 x)`, as in LLaMA and the LiGR layers of eSASRec; its three matrices cost 1.5x).
        residual_gating (`bool`): scale each block's attention and feed-forward update by a learned sigmoid gate
            of the residual stream, `x + sigmoid(G x) * f(LN(x))` (the gated residual of LiGR / eSASRec); False is
            the plain pre-LayerNorm residual `x + f(LN(x))`.
        relative_attention_bias (`bool`): add a learnt score per head and query-key distance to every attention
            logit (the relative attention bias of T5 and HSTU), so each block can weigh the most recent items by
            how recent they are; position embeddings count from a history's first item and say that only
            indirectly. Distances beyond `max_position_embeddings` share one entry.
        hidden_dropout_prob (`float`): dropout on embeddings, attention output and feed-forward output.
        attention_probs_dropout_prob (`float`): dropout on attention probabilities.
        item_dropout_prob (`float`): during training, the probability of hiding each item of a history from the
            model (word dropout): its embedding, side features included, is zeroed and its position stays, so
            each target is predicted from a random part of what came before and sparse data memorises later.
        max_position_embeddings (`int`): longest history the model reads; longer inputs keep their most recent
            items (see `truncate_long_inputs`).
        position_embedding_type (`str`): `"learned"` (SASRec), `"sinusoidal"` (the original notebook) or `"none"`.
        truncate_long_inputs (`bool`): if True, inputs longer than `max_position_embeddings` are cut to their
            most recent items; if False they raise a `ValueError`.
        user_conditioning (`str`): how the user id enters the model: `"none"`; `"add"` (user embedding added to
            every position); `"prepend"` (a user token before the first item); `"concat"` (the original notebook:
            user embedding concatenated with the transformer output, projected back to `hidden_size`).
        user_dropout_prob (`float`): probability, during training, of replacing a user's id by the unknown-user
            index so the unknown-user embedding learns to serve new people.
        item_feature_fields (`list[dict]`): the item table's feature fields, each `{"name": str, "size": int,
            "max_values": int}`: `size` embedding rows (row 0 = padding, missing or unknown) and at most
            `max_values` values per item (1 for a categorical or bucketed numeric field, more for a multi-valued
            one such as genres). Each field is an embedding bag: an item's vector is the mean embedding of its
            values, and every field's vector is added to the item embedding. The item -> values table is a saved
            buffer (`set_item_features`), so a saved model carries it. Empty: none. Set from the data.
        user_feature_fields (`list[dict]`): the user table's feature fields, in the same form (e.g. gender, age
            group, occupation), added to the user embedding when `user_conditioning != "none"`. The user ->
            values table is a saved buffer (`set_user_features`); a request may pass its own values for a user
            the model never saw. Empty: none. Set from the data.
        loss_type (`str`): `"ce"` full softmax cross-entropy over the catalogue; `"sampled_softmax"` softmax over
            the positive and `num_negatives` shared negatives with logQ correction; `"bce"` binary cross-entropy
            with one random negative per position (original SASRec); `"gbce"` generalised BCE (gSASRec).
        num_negatives (`int`): negatives per batch (sampled softmax) or per position (gBCE).
        negative_sampling (`str`): `"uniform"` or `"popularity"` (proportional to training counts, see
            `set_item_popularity`) for the sampled losses.
        gbce_t (`float`): gSASRec calibration parameter `t` in [0, 1] (1 = full correction).
        label_smoothing (`float`): label smoothing of the full cross-entropy.
        future_window (`int`): with the full cross-entropy, train each position on the next `future_window`
            items of the history (a target distribution, weighted by `future_decay ** j`) instead of the next one
            only. 1 = plain next-item prediction. Scoring always predicts the single next item.
        future_decay (`float`): in (0, 1]: weight of the j-th future item relative to the one before it.
        recency_half_life (`float`): with the full cross-entropy, a training target's weight halves every
            `recency_half_life` targets back from the last one of its history (0 = every target weighs the same).
            Evaluation scores one next item per user, after the whole history: the decay moves the training
            signal towards the end of each history and evens out long and short histories, which a plain mean
            over positions weighs by their length. On ML-1M it lost (half-life 50; see benchmarks/tuning.md).
        exclude_seen_in_loss (`bool`): with the full cross-entropy, leave the items a position has already read
            out of that position's softmax (its targets excepted). Evaluation and serving never rank seen items,
            so the model need not spend capacity pushing them down; on data where people do not repeat items
            (ratings of films, say) this trains exactly the ranking that is scored. Only the full cross-entropy uses it:
            with another `loss_type` it is stored as False.
        exclude_seen (`bool`): whether recommendations leave out the items already in the history: a property of
            the data, set at training from whether people come back to items (`describe()["repeat_consumption"]`:
            ratings of films do not, listening and groceries do). The default of `recommend`, the pipeline and
            `Recommender`, as it was of the evaluation and of `exclude_seen_in_loss` in training.
        initializer_range (`float`): std of the normal initialiser.
        layer_norm_eps (`float`): epsilon of the layer norms.
        item_features_in_output (`bool`): with item feature fields, score each item with its output embedding
            plus its feature vector (the same embedding bags the input adds), so what is learnt about a genre, a
            brand or a decade moves every item of it up or down the ranking, rarely chosen items included. False: the side features only shape what the model reads.
            Without item side features it is stored as False.
        output_item_bias (`bool`): add a learnt bias per item to its score (score = <hidden, output row> + b_item),
            as BERT4Rec's output layer does: how often an item is chosen, whatever the history, need not be
            carved out of the shared embedding space.
        tie_word_embeddings (`bool`): score items with the item embedding table itself (fewer parameters, better
            on sparse data); False learns a separate output matrix.
        pad_token_id (`int`): padding token (always 0 here).
    """

    model_type = "rec_transformer"

    num_items: int = 3416
    num_users: int = 0
    hidden_size: int = 64
    num_hidden_layers: int = 4
    num_attention_heads: int = 1
    intermediate_size: int = 256
    hidden_act: str = "gelu"
    residual_gating: bool = False
    relative_attention_bias: bool = True
    hidden_dropout_prob: float = 0.2
    attention_probs_dropout_prob: float = 0.0
    item_dropout_prob: float = 0.0
    max_position_embeddings: int = 200
    position_embedding_type: str = "learned"
    truncate_long_inputs: bool = True
    user_conditioning: str = "none"
    user_dropout_prob: float = 0.1
    item_feature_fields: list[dict] | None = None
    user_feature_fields: list[dict] | None = None
    loss_type: str = "ce"
    num_negatives: int = 256
    negative_sampling: str = "uniform"
    gbce_t: float = 0.75
    label_smoothing: float = 0.0
    future_window: int = 1
    future_decay: float = 0.5
    recency_half_life: float = 0.0
    exclude_seen_in_loss: bool = True
    exclude_seen: bool = True
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    item_features_in_output: bool = True
    output_item_bias: bool = False
    tie_word_embeddings: bool = True
    pad_token_id: int | None = 0

    def __post_init__(self, **kwargs):
        self.item_feature_fields = _feature_fields(self.item_feature_fields, "item_feature_fields")
        self.user_feature_fields = _feature_fields(self.user_feature_fields, "user_feature_fields")
        checks = [
            (self.num_items >= 1, f"num_items must be >= 1, got {self.num_items}"),
            (self.num_users >= 0, f"num_users must be >= 0, got {self.num_users}"),
            (self.hidden_size >= 1, f"hidden_size must be >= 1, got {self.hidden_size}"),
            (self.num_hidden_layers >= 0, f"num_hidden_layers must be >= 0, got {self.num_hidden_layers}"),
            (self.num_attention_heads >= 1, f"num_attention_heads must be >= 1, got {self.num_attention_heads}"),
            (self.intermediate_size >= 1, f"intermediate_size must be >= 1, got {self.intermediate_size}"),
            (
                self.num_attention_heads >= 1 and self.hidden_size % self.num_attention_heads == 0,
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})",
            ),
            (self.max_position_embeddings >= 1, "max_position_embeddings must be >= 1"),
            (
                self.hidden_act in HIDDEN_ACTIVATIONS,
                f"hidden_act must be one of {HIDDEN_ACTIVATIONS}, got {self.hidden_act!r}",
            ),
            (
                self.position_embedding_type in POSITION_EMBEDDING_TYPES,
                f"position_embedding_type must be one of {POSITION_EMBEDDING_TYPES}, "
                f"got {self.position_embedding_type!r}",
            ),
            (
                self.user_conditioning in USER_CONDITIONING_MODES,
                f"user_conditioning must be one of {USER_CONDITIONING_MODES}, got {self.user_conditioning!r}",
            ),
            (self.loss_type in LOSS_TYPES, f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}"),
            (
                self.negative_sampling in NEGATIVE_SAMPLERS,
                f"negative_sampling must be one of {NEGATIVE_SAMPLERS}, got {self.negative_sampling!r}",
            ),
            (self.num_negatives >= 1, f"num_negatives must be >= 1, got {self.num_negatives}"),
            (0.0 <= self.gbce_t <= 1.0, f"gbce_t must be in [0, 1], got {self.gbce_t}"),
            (
                0.0 <= self.hidden_dropout_prob < 1.0,
                f"hidden_dropout_prob must be in [0, 1), got {self.hidden_dropout_prob}",
            ),
            (
                0.0 <= self.attention_probs_dropout_prob < 1.0,
                f"attention_probs_dropout_prob must be in [0, 1), got {self.attention_probs_dropout_prob}",
            ),
            (
                0.0 <= self.item_dropout_prob < 1.0,
                f"item_dropout_prob must be in [0, 1), got {self.item_dropout_prob}",
            ),
            (
                0.0 <= self.user_dropout_prob <= 1.0,
                f"user_dropout_prob must be in [0, 1], got {self.user_dropout_prob}",
            ),
            (0.0 <= self.label_smoothing < 1.0, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.future_window >= 1, f"future_window must be >= 1, got {self.future_window}"),
            (
                self.future_window == 1 or self.loss_type == "ce",
                f"future_window > 1 needs loss_type='ce', got {self.loss_type!r}",
            ),
            (0.0 < self.future_decay <= 1.0, f"future_decay must be in (0, 1], got {self.future_decay}"),
            (self.recency_half_life >= 0.0, f"recency_half_life must be >= 0, got {self.recency_half_life}"),
            (
                not self.recency_half_life or self.loss_type == "ce",
                f"recency_half_life needs loss_type='ce', got {self.loss_type!r}",
            ),
            (self.pad_token_id in (0, None), "pad_token_id must be 0: token 0 is the padding item"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.pad_token_id = 0
        # settings that only apply in some setups are stored as they take effect, so a saved config says what ran
        self.exclude_seen_in_loss = bool(self.exclude_seen_in_loss) and self.loss_type == "ce" and self.exclude_seen
        self.item_features_in_output = bool(self.item_features_in_output) and bool(self.item_feature_fields)
        super().__post_init__(**kwargs)

    @property
    def item_feature_width(self) -> int:
        """Columns of the item -> feature values table: the fields' `max_values`, side by side."""
        return sum(f["max_values"] for f in self.item_feature_fields)

    @property
    def user_feature_width(self) -> int:
        """Columns of the user -> feature values table (and of a request's `user_features`)."""
        return sum(f["max_values"] for f in self.user_feature_fields)

    @property
    def vocab_size(self) -> int:
        """Rows of the item embedding table and columns of the logits: the catalogue plus the padding token."""
        return self.num_items + 1


def _feature_fields(fields: list[dict] | None, what: str) -> list[dict]:
    """The feature fields as plain `{"name", "size", "max_values"}` dicts, checked (names unique, sizes >= 1)."""
    out = []
    for f in fields or []:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            raise ValueError(f'{what}: each field is a dict {{"name": str, "size": int, "max_values": int}}, got {f!r}')
        size, width = f.get("size"), f.get("max_values", 1)
        if not isinstance(size, int) or size < 1 or not isinstance(width, int) or width < 1:
            raise ValueError(f"{what}: field {f['name']!r} needs size >= 1 and max_values >= 1, got {f!r}")
        out.append({"name": f["name"], "size": size, "max_values": width})
    names = [f["name"] for f in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: field names must be unique, got {names}")
    return out


__all__ = ["RecTransformerConfig"]
