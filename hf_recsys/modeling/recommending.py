"""The top-k API of the recommender: `recommend`, as `generate` is a language model's, and the value checks of
tensors that come from outside the package.

`RecommendMixin` gives `RecTransformerForNextItemPrediction` its `recommend`; `check_input_values` is what
`RecTransformerModel.check_inputs` adds to forward's type and shape checks. Part of the self-contained modeling
bundle: torch, transformers and the sibling configuration file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput

from .configuration_rec_transformer import RecTransformerConfig


@dataclass
class NextItemRecommendations(ModelOutput):
    """Top-k recommendations: `item_ids` (B, k) item tokens, best first, and their `scores` (B, k)."""

    item_ids: torch.Tensor | None = None
    scores: torch.Tensor | None = None


def check_input_values(
    config: RecTransformerConfig,
    input_ids: torch.Tensor,
    user_ids: torch.Tensor | None = None,
    user_features: torch.Tensor | None = None,
) -> None:
    """Raise a clear ValueError for item tokens outside [0, vocab_size), user ids outside [0, num_users] or user
    features outside their tables (those of ``config``).

    These checks read the tensors (`.min()`/`.max()`, a device sync on a GPU), so `forward` does not run them:
    they belong at the API boundary, where tensors come from outside (`recommend` runs them). The collator's
    batches, `Recommender` and the pipeline map ids through the vocabularies, so their tokens are in range by
    construction; a direct `model(...)` call with an out-of-range token fails in the embedding lookup
    (IndexError on a CPU).
    """
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
        raise ValueError(
            f"input_ids must be item tokens in [0, {config.vocab_size - 1}] (0 = padding); got values in "
            f"[{int(input_ids.min())}, {int(input_ids.max())}]"
        )
    if user_ids is not None and user_ids.numel() and (user_ids.min() < 0 or user_ids.max() > config.num_users):
        raise ValueError(
            f"user_ids must be in [0, {config.num_users}] (0 = unknown user); got values in "
            f"[{int(user_ids.min())}, {int(user_ids.max())}]"
        )
    if user_features is not None:
        start = 0
        for f in config.user_feature_fields:
            values = user_features[:, start : start + f["max_values"]]
            start += f["max_values"]
            if values.numel() and (values.min() < 0 or values.max() >= f["size"]):
                raise ValueError(
                    f"user_features of field {f['name']!r} must be in [0, {f['size'] - 1}] (0 = unknown); got "
                    f"values in [{int(values.min())}, {int(values.max())}]"
                )


class RecommendMixin:
    """`recommend` for `RecTransformerForNextItemPrediction` (which provides ``self.config``, ``self.rec_transformer``
    and its forward)."""

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
