"""Self-contained modeling package (config, model, losses).

Only same-level relative imports live here: `save_pretrained` copies these files next to the weights so that
`AutoModel.from_pretrained(folder, trust_remote_code=True)` works without `hf_recsys` installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_rec_transformer import RecTransformerConfig
from .modeling_rec_transformer import (
    NextItemPredictionOutput,
    NextItemRecommendations,
    RecTransformerForNextItemPrediction,
    RecTransformerModel,
    RecTransformerPreTrainedModel,
)

# In-process Auto classes: AutoModel gives the full recommender (backbone + scoring head), which is what every
# user of a next-item model wants. Saved models carry the same mapping in config.json's auto_map.
AutoConfig.register(RecTransformerConfig.model_type, RecTransformerConfig, exist_ok=True)
AutoModel.register(RecTransformerConfig, RecTransformerForNextItemPrediction, exist_ok=True)
RecTransformerConfig.register_for_auto_class("AutoConfig")
RecTransformerForNextItemPrediction.register_for_auto_class("AutoModel")

__all__ = [
    "NextItemPredictionOutput",
    "NextItemRecommendations",
    "RecTransformerConfig",
    "RecTransformerForNextItemPrediction",
    "RecTransformerModel",
    "RecTransformerPreTrainedModel",
]
