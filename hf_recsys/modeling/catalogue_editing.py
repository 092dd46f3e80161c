"""Editing a trained model's catalogue: more items or users (fine-tuning on a grown catalogue), their popularity
and their side-feature tables.

`CatalogueEditingMixin` gives `RecTransformerForNextItemPrediction` these methods, as transformers' own
`resize_token_embeddings` lives outside its modeling files: they change the model's tables, not what its forward
computes. Part of the self-contained modeling bundle: torch only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class CatalogueEditingMixin:
    """Resize the item and user tables and store the popularity and side-feature tables of a
    `RecTransformerForNextItemPrediction` (which reads ``self.config``, ``self.rec_transformer`` and
    ``self.output_embeddings``)."""

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
