"""The user-conditioned next-item recommender: a causal (SASRec-style) transformer over item histories.

Layout follows transformers' modeling files: embeddings -> blocks (both in `layers.py`) -> backbone
(`RecTransformerModel`) -> head (`RecTransformerForNextItemPrediction`). The head's top-k API, `recommend`, is a
mixin in `recommending.py`, as `generate` is a language model's; its catalogue editing (resizing, the popularity
and feature tables) one in `catalogue_editing.py`. This package is copied next to every saved model for
``trust_remote_code`` loading, so it imports only torch, transformers and its own sibling files.

Shapes: B = batch, L = history length, H = hidden size, V = num_items + 1 (token 0 is padding).
Histories may be right- or left-padded with token 0; positions are counted from each user's first real item,
so both paddings give the same scores. Right-padded batches (what the collator builds) need no padding mask:
plain attention takes the fast ``is_causal`` path, and with ``relative_attention_bias`` the mask is one
(heads, L, L) bias table shared by the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .catalogue_editing import CatalogueEditingMixin
from .configuration_rec_transformer import RecTransformerConfig
from .layers import (
    RecTransformerAttention,
    RecTransformerBlock,
    RecTransformerEmbeddings,
    RecTransformerUserEmbeddings,
    _additive,
    sinusoidal_table,
)
from .losses import (
    SeenItems,
    binary_cross_entropy,
    full_cross_entropy,
    future_targets,
    gbce,
    recency_weights,
    sampled_softmax,
)
from .recommending import RecommendMixin, check_input_values


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
        """Raise a clear ValueError for inputs the model cannot read: wrong types or shapes (what `forward` checks)
        and token, user or feature values outside their tables (`check_input_values`: a device sync on a GPU, so
        only at the API boundary; `recommend` runs it)."""
        self._check_inputs(input_ids, user_ids, user_features)
        check_input_values(self.config, input_ids, user_ids, user_features)

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


class RecTransformerForNextItemPrediction(RecTransformerPreTrainedModel, RecommendMixin, CatalogueEditingMixin):
    """Backbone + item-scoring head: score(next = i) = <hidden state, output embedding of i>. Top-k
    recommendations: `RecommendMixin`; resizing the catalogue and storing its tables: `CatalogueEditingMixin`."""

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


__all__ = [
    "NextItemPredictionOutput",
    "RecTransformerForNextItemPrediction",
    "RecTransformerModel",
    "RecTransformerPreTrainedModel",
]
