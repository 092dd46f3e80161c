"""The layers of the recommender: item and user embeddings, causal self-attention with an optional learnt
relative bias, the feed-forward and the pre-LayerNorm block that stacks them.

`modeling_rec_transformer.py` assembles them into the backbone and the scoring head. Part of the self-contained
modeling bundle: imports only torch, math and its sibling configuration file.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_rec_transformer import RecTransformerConfig


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
