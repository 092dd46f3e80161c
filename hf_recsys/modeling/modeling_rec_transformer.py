"""The user-conditioned next-item recommender: a causal (SASRec-style) transformer over item histories.

Layout follows transformers' modeling files: embeddings -> blocks -> backbone (`RecTransformerModel`) -> head
(`RecTransformerForNextItemPrediction`). This package is copied next to every saved model for
``trust_remote_code`` loading, so it imports only torch, transformers and its own sibling files.

Shapes: B = batch, L = history length, H = hidden size, V = num_items + 1 (token 0 is padding).
Histories may be right- or left-padded with token 0; positions are counted from each user's first real item,
so both paddings give the same scores. Right-padded batches (what the collator builds) need no padding mask:
plain attention takes the fast ``is_causal`` path, and with ``relative_attention_bias`` the mask is one
(heads, L, L) bias table shared by the whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_rec_transformer import RecTransformerConfig
from .losses import (
    SeenItems,
    binary_cross_entropy,
    full_cross_entropy,
    future_targets,
    gbce,
    recency_weights,
    sampled_softmax,
)


@dataclass
class RecTransformerModelOutput(ModelOutput):
    """Backbone output.

    Args:
        last_hidden_state: (B, L', H) final hidden states; L' = L + 1 when a user token is prepended (position 0).
        attention_mask: (B, L') bool, True at real positions (including the user token).
        hidden_states: per-layer hidden states when `output_hidden_states=True`.
    """

    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class NextItemPredictionOutput(ModelOutput):
    """Head output.

    Args:
        loss: training loss when `labels` is given.
        logits: (B, V) scores of the next item after each history (default), (B, k, V) for `logits_to_keep=k`,
            (B, L', V) for `logits_to_keep=0`; None when training with per-position labels (only labelled
            positions are scored, inside the loss). Column 0 (padding) is -inf.
        hidden_states: per-layer hidden states when `output_hidden_states=True`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


@dataclass
class NextItemRecommendations(ModelOutput):
    """Top-k recommendations: `item_ids` (B, k) item tokens, best first, and their `scores` (B, k)."""

    item_ids: torch.Tensor | None = None
    scores: torch.Tensor | None = None


def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """Fixed sin/cos position table of "Attention is all you need" (the original notebook's encoding)."""
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean attention mask as the float mask that attention adds to its scores: 0 where allowed, -inf where
    not (what the relative bias is added to)."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, -torch.inf)


class ByteDropout(nn.Module):
    """Dropout that draws its keep-mask one random byte per value, 8 bytes per random int64.

    `nn.Dropout` samples a Bernoulli variable per value; on a CPU that sampling took 18% of the backbone's
    training step (`benchmarks/tuning.md`). Here each value is kept when its random byte is >= `round(256 p)`:
    the drop rate is `p` rounded to a multiple of 1/256 (0.2 -> 0.1992), and kept values are scaled by the exact
    inverse keep rate, so the expected output is the input, as with `nn.Dropout`.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = min(round(p * 256), 255)
        self.scale = 256 / (256 - self.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64, device=x.device)
        keep = words.view(torch.uint8)[:n].view(x.shape) >= self.threshold
        return x * keep * self.scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


class FeatureBags(nn.Module):
    """The feature fields of a table's rows (items or users), one embedding bag per field.

    A row's values sit side by side, `max_values` columns per field (0 = padding, missing or unknown). Its vector
    is the sum over fields of the mean embedding of the field's values; a field with no value adds 0.
    """

    def __init__(self, fields: list[dict], hidden_size: int):
        super().__init__()
        self.bags = nn.ModuleList(nn.EmbeddingBag(f["size"], hidden_size, mode="mean", padding_idx=0) for f in fields)
        self.widths = [f["max_values"] for f in fields]

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """(..., sum of widths) values -> (..., H)."""
        flat = values.reshape(-1, values.shape[-1])
        x = sum(bag(v) for bag, v in zip(self.bags, flat.split(self.widths, dim=1), strict=True))
        return x.view(*values.shape[:-1], x.shape[-1])  # x.shape[-1], not -1: an empty batch has no rows


class RecTransformerEmbeddings(nn.Module):
    """Item embedding (+ its feature fields), scaled, with whole items hidden in training (item dropout), +
    position embedding, then dropout."""

    def __init__(self, config: RecTransformerConfig):
        super().__init__()
        self.config = config
        self.item_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        if config.position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        elif config.position_embedding_type == "sinusoidal":
            table = sinusoidal_table(config.max_position_embeddings, config.hidden_size)
            self.register_buffer("sinusoidal_positions", table, persistent=False)
        if config.item_feature_fields:
            self.item_features = FeatureBags(config.item_feature_fields, config.hidden_size)
            width = config.item_feature_width
            self.register_buffer("item_feature_values", torch.zeros(config.vocab_size, width, dtype=torch.int32))
        self.dropout = ByteDropout(config.hidden_dropout_prob)
        self.scale = math.sqrt(config.hidden_size)

    def side_vectors(self, input_ids: torch.Tensor | None = None) -> torch.Tensor | None:
        """What each item token's feature fields add to its embedding (zero for padding and unknown values);
        every token when `input_ids` is None, and None when the model has no item feature fields."""
        if not self.config.item_feature_fields:
            return None
        values = self.item_feature_values if input_ids is None else self.item_feature_values[input_ids]
        return self.item_features(values)

    def item_vectors(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Embedding of each item token, side features included."""
        x = self.item_embeddings(input_ids)
        side = self.side_vectors(input_ids)
        return x if side is None else x + side

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        x = self.item_vectors(input_ids) * self.scale
        if self.training and self.config.item_dropout_prob > 0:  # hide whole items (their positions stay)
            x = x * (torch.rand(input_ids.shape, device=x.device) >= self.config.item_dropout_prob)[..., None]
        if self.config.position_embedding_type == "learned":
            x = x + self.position_embeddings(position_ids)
        elif self.config.position_embedding_type == "sinusoidal":
            x = x + self.sinusoidal_positions[position_ids]
        return self.dropout(x)


class RecTransformerUserEmbeddings(nn.Module):
    """Who the user is: id embedding (row 0 = unknown user) + the user's feature fields."""

    def __init__(self, config: RecTransformerConfig):
        super().__init__()
        self.config = config
        self.user_embeddings = nn.Embedding(config.num_users + 1, config.hidden_size)
        if config.user_feature_fields:
            self.user_features = FeatureBags(config.user_feature_fields, config.hidden_size)
            width = config.user_feature_width
            self.register_buffer("user_feature_values", torch.zeros(config.num_users + 1, width, dtype=torch.int32))

    def forward(self, user_ids: torch.Tensor | None, user_features: torch.Tensor | None, batch: int) -> torch.Tensor:
        """`user_features` (B, width) replaces the stored values of each user (a request's own, for a new user);
        user dropout hides the id only, not the features."""
        device = self.user_embeddings.weight.device
        if user_ids is None:
            user_ids = torch.zeros(batch, dtype=torch.long, device=device)
        if self.config.user_feature_fields and user_features is None:
            user_features = self.user_feature_values[user_ids]
        if self.training and self.config.user_dropout_prob > 0:
            drop = torch.rand(user_ids.shape, device=device) < self.config.user_dropout_prob
            user_ids = user_ids.masked_fill(drop, 0)
        u = self.user_embeddings(user_ids)
        if self.config.user_feature_fields:
            u = u + self.user_features(user_features)
        return u


class RecTransformerAttention(nn.Module):
    """Multi-head causal self-attention through `scaled_dot_product_attention`."""

    def __init__(self, config: RecTransformerConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob
        # one learnt score per head and query-key distance (0 = itself; the last entry covers any farther key)
        self.relative_bias = (
            nn.Parameter(torch.zeros(config.num_attention_heads, config.max_position_embeddings + 1))
            if config.relative_attention_bias
            else None
        )

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        query_index: torch.Tensor | None = None,
        distance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from every position, or only from `query_index` (B,) of each row (then `mask` is (B,1,1,L)).
        With `relative_attention_bias`, `mask` is a 0 / -inf float table and `distance` ((L, L), (B, L, L) or
        (B, 1, L)) each (query, key) pair's index into the bias table, both built once per forward."""
        b, length, h = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.relative_bias is not None:
            bias = self.relative_bias[:, distance]  # (heads, [B,] queries, keys)
            mask = mask + (bias[None] if distance.dim() == 2 else bias.movedim(0, 1))
        if query_index is not None:
            q = q.gather(2, query_index[:, None, None, None].expand(-1, self.num_heads, 1, self.head_dim))
            length = 1
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            # a float (bias) mask follows the queries' dtype (bf16 under autocast); a boolean mask stays boolean
            attn_mask=mask if mask is None or mask.dtype == torch.bool else mask.to(q.dtype),
            dropout_p=self.dropout_p if self.training else 0.0,
            is_causal=mask is None,
        )
        return self.out(y.transpose(1, 2).reshape(b, length, h))


class SwiGLU(nn.Module):
    """Gated activation: splits its input in two halves (x, g) and returns `silu(g) * x` (LLaMA, LiGR)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.silu(gate) * x


class RecTransformerBlock(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(LN(x)), then x + FFN(LN(x)).

    With `residual_gating`, each update is scaled by a sigmoid gate read from the residual stream:
    x + sigmoid(G x) * attn(LN(x)) (LiGR, as in eSASRec).
    """

    def __init__(self, config: RecTransformerConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = RecTransformerAttention(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        gated = config.hidden_act == "swiglu"
        self.ffn = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size * (2 if gated else 1)),
            SwiGLU() if gated else nn.GELU() if config.hidden_act == "gelu" else nn.ReLU(),
            nn.Linear(config.intermediate_size, config.hidden_size),
        )
        self.dropout = ByteDropout(config.hidden_dropout_prob)
        if config.residual_gating:
            self.attention_gate = nn.Linear(config.hidden_size, config.hidden_size)
            self.ffn_gate = nn.Linear(config.hidden_size, config.hidden_size)
        self.residual_gating = config.residual_gating

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        query_index: torch.Tensor | None = None,
        distance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Update every position, or only position `query_index` (B,) of each row (returns (B, 1, H))."""
        attended = self.dropout(self.attention(self.attention_norm(x), mask, query_index, distance))
        if query_index is not None:
            x = x.gather(1, query_index[:, None, None].expand(-1, 1, x.shape[-1]))
        if self.residual_gating:
            attended = torch.sigmoid(self.attention_gate(x)) * attended
        x = x + attended
        update = self.dropout(self.ffn(self.ffn_norm(x)))
        if self.residual_gating:
            update = torch.sigmoid(self.ffn_gate(x)) * update
        return x + update


class RecTransformerPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the transformers plumbing shared by the backbone and the head."""

    config_class = RecTransformerConfig
    base_model_prefix = "rec_transformer"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _no_split_modules = ["RecTransformerBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RecTransformerEmbeddings):
            if self.config.position_embedding_type == "sinusoidal":
                table = sinusoidal_table(self.config.max_position_embeddings, self.config.hidden_size)
                init.copy_(module.sinusoidal_positions, table)
            if self.config.item_feature_fields:
                init.zeros_(module.item_feature_values)
        elif isinstance(module, RecTransformerUserEmbeddings) and self.config.user_feature_fields:
            init.zeros_(module.user_feature_values)
        elif isinstance(module, nn.EmbeddingBag):
            init.normal_(module.weight, std=self.config.initializer_range)
            init.zeros_(module.weight[0])  # the padding row: missing values add nothing
        elif isinstance(module, RecTransformerModel):
            init.zeros_(module.item_counts)
        elif isinstance(module, RecTransformerForNextItemPrediction) and module.config.output_item_bias:
            init.zeros_(module.output_bias)
        elif isinstance(module, RecTransformerAttention) and module.relative_bias is not None:
            init.zeros_(module.relative_bias)  # starts as plain attention


class RecTransformerModel(RecTransformerPreTrainedModel):
    """The backbone: item history (+ user) -> hidden state at every position.

    Also holds `item_counts` (V,), the training popularity of each item: the sampler of the popularity-based
    losses reads it, and inference uses it to serve users with no history.
    """

    def __init__(self, config: RecTransformerConfig):
        super().__init__(config)
        self.embeddings = RecTransformerEmbeddings(config)
        if config.user_conditioning != "none":
            self.user = RecTransformerUserEmbeddings(config)
        if config.user_conditioning == "concat":
            self.user_projection = nn.Linear(2 * config.hidden_size, config.hidden_size)
        self.layers = nn.ModuleList(RecTransformerBlock(config) for _ in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.register_buffer("item_counts", torch.zeros(config.vocab_size))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.item_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.item_embeddings = value

    def _check_inputs(
        self, input_ids: torch.Tensor, user_ids: torch.Tensor | None, user_features: torch.Tensor | None
    ) -> None:
        """Types and shapes only: read from the tensors' metadata, so `forward` never waits for the device."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype.is_floating_point or input_ids.dim() != 2:
            got = (
                f"{input_ids.dtype} tensor of shape {tuple(input_ids.shape)}"
                if torch.is_tensor(input_ids)
                else type(input_ids).__name__
            )
            raise ValueError(f"input_ids must be an integer tensor of shape (batch, length); got {got}")
        batch = input_ids.shape[0]
        if user_ids is not None and (user_ids.dtype.is_floating_point or user_ids.shape != (batch,)):
            raise ValueError(f"user_ids must be an integer tensor of shape ({batch},); got {tuple(user_ids.shape)}")
        if user_features is not None:
            width = self.config.user_feature_width
            if user_features.dtype.is_floating_point or user_features.shape != (batch, width):
                raise ValueError(
                    f"user_features must be an integer tensor of shape ({batch}, {width}) (the user feature "
                    f"fields' values side by side); got {user_features.dtype} of shape {tuple(user_features.shape)}"
                )

    def check_inputs(
        self,
        input_ids: torch.Tensor,
        user_ids: torch.Tensor | None = None,
        user_features: torch.Tensor | None = None,
    ) -> None:
        """Raise a clear ValueError for inputs the model cannot read: wrong types or shapes, item tokens outside
        [0, vocab_size), user ids outside [0, num_users], user features outside their tables.

        The value checks read the tensors (`.min()`/`.max()`, a device sync on a GPU), so `forward` does not run
        them: they belong at the API boundary, where tensors come from outside (`recommend` runs them). The
        collator's batches, `Recommender` and the pipeline map ids through the vocabularies, so their tokens are
        in range by construction; a direct `model(...)` call with an out-of-range token fails in the embedding
        lookup (IndexError on a CPU).
        """
        self._check_inputs(input_ids, user_ids, user_features)
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise ValueError(
                f"input_ids must be item tokens in [0, {self.config.vocab_size - 1}] (0 = padding); got values in "
                f"[{int(input_ids.min())}, {int(input_ids.max())}]"
            )
        if user_ids is not None and user_ids.numel() and (user_ids.min() < 0 or user_ids.max() > self.config.num_users):
            raise ValueError(
                f"user_ids must be in [0, {self.config.num_users}] (0 = unknown user); got values in "
                f"[{int(user_ids.min())}, {int(user_ids.max())}]"
            )
        if user_features is not None:
            start = 0
            for f in self.config.user_feature_fields:
                values = user_features[:, start : start + f["max_values"]]
                start += f["max_values"]
                if values.numel() and (values.min() < 0 or values.max() >= f["size"]):
                    raise ValueError(
                        f"user_features of field {f['name']!r} must be in [0, {f['size'] - 1}] (0 = unknown); got "
                        f"values in [{int(values.min())}, {int(values.max())}]"
                    )

    def _truncate(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the `max_position_embeddings` most recent items of each row (the result is left-padded)."""
        max_len = self.config.max_position_embeddings
        lengths = mask.sum(1, keepdim=True)
        if input_ids.shape[1] <= max_len:
            return input_ids, mask
        if not self.config.truncate_long_inputs and bool((lengths > max_len).any()):
            raise ValueError(
                f"a history has {int(lengths.max())} items but max_position_embeddings is {max_len} "
                "(set truncate_long_inputs=True to keep the most recent items)"
            )
        rank_from_end = lengths - mask.long().cumsum(1)  # 0 for the most recent item
        keep = mask & (rank_from_end < max_len)
        column = (max_len - 1 - rank_from_end).clamp_min(0)
        # Dropped positions go to a spare last column: sending them to column 0 would race with (and, on CPU,
        # overwrite) the oldest kept item, since scatter_ with duplicate indices keeps an arbitrary write.
        new_ids = input_ids.new_zeros(input_ids.shape[0], max_len + 1)
        new_ids.scatter_(1, torch.where(keep, column, max_len), torch.where(keep, input_ids, 0))
        new_ids = new_ids[:, :max_len]
        return new_ids, new_ids != 0

    def _attention_tables(
        self, mask: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(attention mask, relative distance) of every (query, key) pair, built once per forward for all layers.

        Right-padded rows (real items first) need no mask: causal attention never looks at the padding after a
        real position. Anything else gets an explicit (B, 1, L, L) mask; each position may always see itself so
        that fully padded rows stay finite. With the relative bias, the distance is how many real tokens the
        query is after the key (padding not counted), clamped to the bias table, and the mask a 0 / -inf table.
        """
        length = mask.shape[1]
        if bool((mask[:, 1:] <= mask[:, :-1]).all()):
            attn_mask = None
        else:
            causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
            attn_mask = ((causal & mask[:, None, :]) | torch.eye(length, dtype=torch.bool, device=mask.device))[:, None]
        if not self.config.relative_attention_bias:
            return attn_mask, None
        if attn_mask is None:  # right padding: the index difference
            index = torch.arange(length, device=mask.device)
            distance = index[:, None] - index
            attn_mask = distance >= 0
        else:
            order = mask.long().cumsum(1)
            distance = order[:, :, None] - order[:, None, :]
        return _additive(attn_mask, dtype), distance.clamp(0, self.config.max_position_embeddings)

    def _final_block_at_last_position(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, H): the final block run from each row's last real position only (without blocks, the input
        there). Its keys are all the row's positions; the mask and the relative distances are those of one query."""
        last = mask.shape[1] - 1 - mask.flip(1).long().argmax(1)
        if not self.layers:
            return x.gather(1, last[:, None, None].expand(-1, 1, x.shape[-1]))
        positions = torch.arange(mask.shape[1], device=mask.device)
        last_mask = ((positions[None, :] <= last[:, None]) & mask)[:, None, None, :]
        distance = None
        if self.config.relative_attention_bias:
            order = mask.long().cumsum(1)
            distance = (order.gather(1, last[:, None])[:, :, None] - order[:, None, :]).clamp(
                0, self.config.max_position_embeddings
            )
            last_mask = _additive(last_mask, x.dtype)
        return self.layers[-1](x, last_mask, last, distance)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        user_ids: torch.Tensor | None = None,
        user_features: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        last_position_only: bool = False,
    ) -> RecTransformerModelOutput:
        """Encode histories.

        With `last_position_only`, the final block runs only at each row's last real position (what scoring
        the next item needs): `last_hidden_state` is then (B, 1, H), a third less work for evaluation/serving.

        Args:
            input_ids: (B, L) item tokens, 0 = padding (left or right).
            attention_mask: (B, L) 1 at real items; derived from `input_ids != 0` when omitted.
            user_ids: (B,) user indices (0 = unknown user); used when `config.user_conditioning != "none"`.
            user_features: (B, width) values of the user feature fields, side by side (0 = unknown); replaces
                the stored values of each user (a request's own, for a user the model never saw).
        """
        self._check_inputs(input_ids, user_ids, user_features)
        mask = (input_ids != 0) if attention_mask is None else attention_mask.bool() & (input_ids != 0)
        input_ids, mask = self._truncate(input_ids, mask)
        position_ids = (mask.long().cumsum(1) - 1).clamp_min(0)
        x = self.embeddings(input_ids, position_ids)

        mode = self.config.user_conditioning
        user = self.user(user_ids, user_features, input_ids.shape[0]) if mode != "none" else None
        if mode == "add":
            x = x + user[:, None, :]
        elif mode == "prepend":
            x = torch.cat([user[:, None, :], x], dim=1)
            mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)

        last_only = last_position_only and not output_hidden_states
        attn_mask, distance = self._attention_tables(mask, x.dtype)
        all_hidden = (x,) if output_hidden_states else None
        for layer in self.layers[:-1] if last_only else self.layers:
            x = layer(x, attn_mask, None, distance)
            if output_hidden_states:
                all_hidden = (*all_hidden, x)
        if last_only:
            x, mask = self._final_block_at_last_position(x, mask), mask.new_ones(mask.shape[0], 1)
        x = self.final_norm(x)
        if mode == "concat":
            x = self.user_projection(torch.cat([x, user[:, None, :].expand_as(x)], dim=-1))
        return RecTransformerModelOutput(last_hidden_state=x, attention_mask=mask, hidden_states=all_hidden)


class RecTransformerForNextItemPrediction(RecTransformerPreTrainedModel):
    """Backbone + item-scoring head: score(next = i) = <hidden state, output embedding of i>."""

    _tied_weights_keys = {"output_embeddings.weight": "rec_transformer.embeddings.item_embeddings.weight"}

    def __init__(self, config: RecTransformerConfig):
        super().__init__(config)
        self.rec_transformer = RecTransformerModel(config)
        self.output_embeddings = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.output_item_bias:
            self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))
        if config.tie_word_embeddings:  # the tied copy is not stored; loaders (Trainer included) re-tie it
            self._keys_to_ignore_on_save = ["output_embeddings.weight"]
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.rec_transformer.embeddings.item_embeddings

    def get_output_embeddings(self) -> nn.Linear:
        return self.output_embeddings

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.output_embeddings = value

    def output_weight(self) -> torch.Tensor:
        """The (V, hidden) matrix that scores items: the output embeddings, plus each item's side-feature vector
        when `config.item_features_in_output` (so an item's features shape how it is scored, too)."""
        weight = self.output_embeddings.weight
        if self.config.item_features_in_output:
            side = self.rec_transformer.embeddings.side_vectors()
            if side is not None:
                weight = weight + side
        return weight

    def _scoring(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden, weight) whose product gives the item scores. With `config.output_item_bias` the bias is one
        more column of the weight, read by a constant 1 appended to every hidden state: every loss (the fused
        chunked cross-entropy included) then trains it with no code of its own."""
        weight = self.output_weight()
        if self.config.output_item_bias:
            hidden = F.pad(hidden, (0, 1), value=1.0)
            weight = torch.cat([weight, self.output_bias[:, None]], dim=1)
        return hidden, weight

    def _score(self, hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):  # float32 scores also under autocast (see _loss)
            logits = F.linear(*(t.float() for t in self._scoring(hidden)))
        logits[..., 0] = -torch.inf
        return logits

    def _loss(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        target_weights: torch.Tensor | None = None,
        seen: SeenItems | None = None,
        row_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Training loss at labelled positions; (N, k) `targets` with `target_weights` (future window), `seen`
        (items to leave out of each position's softmax) and `row_weights` (recency weights) need CE.

        The loss runs in float32 also under bf16 autocast (a GPU run): a softmax over thousands of items in bf16
        loses the small score differences the ranking is made of."""
        with torch.autocast(hidden.device.type, enabled=False):
            hidden, weight = (t.float() for t in self._scoring(hidden))
            return self._loss_float32(hidden, weight, targets, target_weights, seen, row_weights)

    def _loss_float32(self, hidden, weight, targets, target_weights, seen, row_weights) -> torch.Tensor:
        config = self.config
        if config.loss_type == "ce":
            return full_cross_entropy(
                hidden,
                targets,
                weight,
                config.label_smoothing,
                target_weights=target_weights,
                seen=seen,
                row_weights=row_weights,
            )
        if config.loss_type == "sampled_softmax":
            counts = self.rec_transformer.item_counts if config.negative_sampling == "popularity" else None
            return sampled_softmax(hidden, targets, weight, config.num_negatives, counts)
        if config.loss_type == "bce":
            return binary_cross_entropy(hidden, targets, weight)
        return gbce(hidden, targets, weight, config.num_negatives, config.gbce_t)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        user_ids: torch.Tensor | None = None,
        user_features: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        logits_to_keep: int = 1,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> NextItemPredictionOutput:
        """Score the next item.

        Args:
            labels: either (B, L) per-position next-item tokens aligned with `input_ids` (-100 = no label; the
                training signal: logits are computed only where a label exists, and `logits` is None), or (B,) the
                item that follows each whole history (evaluation: loss = full cross-entropy at the last position).
            logits_to_keep: 1 (default) scores the position after the last real item of each history; 0 scores
                every position (B, L', V).
        """
        out = self.rec_transformer(
            input_ids,
            attention_mask=attention_mask,
            user_ids=user_ids,
            user_features=user_features,
            output_hidden_states=output_hidden_states,
            last_position_only=logits_to_keep == 1 and (labels is None or labels.dim() == 1),
        )
        hidden, mask = out.last_hidden_state, out.attention_mask
        prepend = self.config.user_conditioning == "prepend"

        if labels is not None and labels.dim() == 2:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels {tuple(labels.shape)} must match input_ids {tuple(input_ids.shape)}")
            if input_ids.shape[1] > self.config.max_position_embeddings:
                raise ValueError(
                    f"training histories may not exceed max_position_embeddings={self.config.max_position_embeddings}"
                    f" (got {input_ids.shape[1]}); crop them in the collator"
                )
            if prepend:  # the user token predicts the first item of the history
                first = input_ids.gather(1, (input_ids != 0).long().argmax(1, keepdim=True))
                labels = torch.cat([first.masked_fill(first == 0, -100), labels], dim=1)
            selected = labels != -100
            seen = None
            if self.config.exclude_seen_in_loss:  # the config guarantees loss_type == "ce"
                seen = SeenItems.from_histories(input_ids, selected, self.config.vocab_size, offset=int(prepend))
            # the config guarantees loss_type == "ce" for the future window and the recency weights
            row_weights = None
            if self.config.recency_half_life:
                row_weights = recency_weights(labels, self.config.recency_half_life)[selected]
            if self.config.future_window > 1:
                tokens, weights = future_targets(labels, self.config.future_window, self.config.future_decay)
                loss = self._loss(hidden[selected], tokens[selected], weights[selected], seen, row_weights)
            else:
                loss = self._loss(hidden[selected], labels[selected], seen=seen, row_weights=row_weights)
            return NextItemPredictionOutput(loss=loss, logits=None, hidden_states=out.hidden_states)

        if logits_to_keep == 0:
            logits = self._score(hidden)
        else:
            length = mask.shape[1]
            last = length - 1 - mask.flip(1).long().argmax(1)  # index of the last real position of each row
            index = (last[:, None] - torch.arange(logits_to_keep - 1, -1, -1, device=last.device)).clamp_min(0)
            picked = hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1]))
            logits = self._score(picked.squeeze(1) if logits_to_keep == 1 else picked)
        loss = None
        if labels is not None:
            if logits_to_keep != 1 or labels.shape != (input_ids.shape[0],):
                raise ValueError("1-D labels (the next item of each history) need logits_to_keep=1")
            loss = F.cross_entropy(logits, labels.long())
        return NextItemPredictionOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)

    @torch.no_grad()
    def recommend(
        self,
        input_ids: torch.Tensor,
        user_ids: torch.Tensor | None = None,
        k: int = 10,
        exclude_seen: bool | None = None,
        attention_mask: torch.Tensor | None = None,
        user_features: torch.Tensor | None = None,
        exclude_item_ids: torch.Tensor | None = None,
    ) -> NextItemRecommendations:
        """Top-`k` next items for each history in the batch, best first.

        Never returns the padding token; with `exclude_seen` (default: `config.exclude_seen`, the data's) never
        returns an item present in the history;
        `exclude_item_ids` (B, M) removes further items per row (0 entries are ignored).
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if k > self.config.num_items:
            raise ValueError(f"k={k} is larger than the catalogue ({self.config.num_items} items)")
        if (
            self.config.user_conditioning != "prepend"
            and input_ids.shape[1]
            and not bool((input_ids != 0).any(1).all())
        ):
            raise ValueError(
                "every history needs at least one item (this model has no user token to start from); "
                "serve empty histories with popularity (hf_recsys.Recommender does this)"
            )
        if input_ids.shape[1] == 0 and self.config.user_conditioning != "prepend":
            raise ValueError("empty histories need a model with user_conditioning='prepend'")
        self.rec_transformer.check_inputs(input_ids, user_ids, user_features)
        was_training = self.training
        self.eval()
        try:
            logits = self(
                input_ids, attention_mask=attention_mask, user_ids=user_ids, user_features=user_features
            ).logits
        finally:
            self.train(was_training)
        if self.config.exclude_seen if exclude_seen is None else exclude_seen:
            logits = logits.scatter(1, input_ids.long(), -torch.inf)
        if exclude_item_ids is not None:
            logits = logits.scatter(1, exclude_item_ids.long(), -torch.inf)
        logits[:, 0] = -torch.inf
        available = int(torch.isfinite(logits).sum(1).min())
        if k > available:
            raise ValueError(f"k={k} but only {available} items are left to recommend after exclusions")
        scores, item_ids = logits.topk(k, dim=1)
        return NextItemRecommendations(item_ids=item_ids, scores=scores)

    def resize_item_embeddings(self, new_num_items: int) -> None:
        """Grow (or shrink) the catalogue to `new_num_items`, keeping the rows of existing items bit-identical.

        New items start at the mean of the existing item embeddings (a neutral, popular-ish point) so they are
        neither ignored nor over-recommended before fine-tuning; their popularity and side features are 0.
        """
        old_vocab, new_vocab = self.config.vocab_size, new_num_items + 1
        if new_num_items < 1:
            raise ValueError(f"new_num_items must be >= 1, got {new_num_items}")
        emb = self.rec_transformer.embeddings
        keep = min(old_vocab, new_vocab)

        def grown(old: torch.Tensor, fill: torch.Tensor | float) -> torch.Tensor:
            new = old.new_zeros((new_vocab, *old.shape[1:]))
            new[:keep] = old[:keep]
            if new_vocab > keep:
                new[keep:] = fill
            return new

        old_weight = emb.item_embeddings.weight.data
        item_embeddings = nn.Embedding(new_vocab, self.config.hidden_size, padding_idx=0).to(old_weight.device)
        item_embeddings.weight.data = grown(old_weight, old_weight[1:].mean(0))
        emb.item_embeddings = item_embeddings
        self.rec_transformer.item_counts = grown(self.rec_transformer.item_counts, 0.0)
        if self.config.item_feature_fields:
            emb.item_feature_values = grown(emb.item_feature_values, 0)
        old_out = self.output_embeddings.weight.data
        self.output_embeddings = nn.Linear(self.config.hidden_size, new_vocab, bias=False).to(old_out.device)
        self.output_embeddings.weight.data = grown(old_out, old_out[1:].mean(0))
        if self.config.output_item_bias:  # new items start at the mean bias of the existing ones
            old_bias = self.output_bias.data
            self.output_bias = nn.Parameter(grown(old_bias, old_bias[1:].mean()))
        self.config.num_items = new_num_items
        if self.config.tie_word_embeddings:
            self.output_embeddings.weight = emb.item_embeddings.weight

    def resize_user_embeddings(self, new_num_users: int) -> None:
        """Grow (or shrink) the known users to `new_num_users`, keeping existing rows bit-identical.

        New users start as copies of the unknown-user embedding (row 0): before fine-tuning, a new user is
        served exactly like a stranger, which is the honest prior.
        """
        if self.config.user_conditioning == "none":
            self.config.num_users = new_num_users
            return
        user = self.rec_transformer.user
        old = user.user_embeddings.weight.data
        new = old.new_empty(new_num_users + 1, old.shape[1])
        keep = min(old.shape[0], new_num_users + 1)
        new[:keep] = old[:keep]
        new[keep:] = old[0]
        user.user_embeddings = nn.Embedding(new_num_users + 1, old.shape[1]).to(old.device)
        user.user_embeddings.weight.data = new
        if self.config.user_feature_fields:  # new users' features start unknown (set_user_features fills them)
            values = user.user_feature_values
            user.user_feature_values = values.new_zeros(new_num_users + 1, values.shape[1])
            user.user_feature_values[:keep] = values[:keep]
        self.config.num_users = new_num_users

    def set_item_popularity(self, counts: torch.Tensor) -> None:
        """Store training interaction counts per item token (V,), saved with the weights."""
        counts = torch.as_tensor(counts, dtype=torch.float32)
        if counts.shape != (self.config.vocab_size,):
            raise ValueError(f"counts must have shape ({self.config.vocab_size},), got {tuple(counts.shape)}")
        self.rec_transformer.item_counts.copy_(counts)

    def set_item_features(self, values: Mapping[str, Any], rows: slice = slice(None)) -> None:
        """Store the item -> feature values table: `values[name]` is a (V, max_values) integer matrix per field
        of `config.item_feature_fields`, in token order (row 0 = padding); `rows` writes only those tokens'
        rows (e.g. the new items of a grown catalogue) and keeps the others."""
        table = self.rec_transformer.embeddings.item_feature_values
        table[rows] = _side_by_side(self.config.item_feature_fields, values, table.shape[0], "item")[rows]

    def set_user_features(self, values: Mapping[str, Any], rows: slice = slice(None)) -> None:
        """Store the user -> feature values table: `values[name]` is a (num_users + 1, max_values) matrix per
        field of `config.user_feature_fields`, by user index (row 0 = the unknown user); `rows` as above."""
        if self.config.user_conditioning == "none" or not self.config.user_feature_fields:
            raise ValueError("this model reads no user features (user_conditioning='none' or no user_feature_fields)")
        table = self.rec_transformer.user.user_feature_values
        table[rows] = _side_by_side(self.config.user_feature_fields, values, table.shape[0], "user")[rows]


def _side_by_side(fields: list[dict], values: Mapping[str, Any], rows: int, what: str) -> torch.Tensor:
    """The fields' matrices as one (rows, width) int32 table, each checked against its field."""
    if set(values) != {f["name"] for f in fields}:
        raise ValueError(
            f"{what} feature values for {sorted(values)}; the model's fields are {[f['name'] for f in fields]}"
        )
    columns = []
    for f in fields:
        m = torch.as_tensor(values[f["name"]])
        if m.dtype.is_floating_point or m.shape != (rows, f["max_values"]):
            raise ValueError(f"{what} field {f['name']!r}: expected an integer ({rows}, {f['max_values']}) matrix, got {m.dtype} {tuple(m.shape)}")  # fmt: skip
        if m.numel() and (m.min() < 0 or m.max() >= f["size"]):
            raise ValueError(f"{what} field {f['name']!r}: values must be in [0, {f['size'] - 1}]")
        columns.append(m.to(torch.int32))
    return torch.cat(columns, dim=1)


__all__ = [
    "NextItemPredictionOutput",
    "NextItemRecommendations",
    "RecTransformerForNextItemPrediction",
    "RecTransformerModel",
    "RecTransformerPreTrainedModel",
]
