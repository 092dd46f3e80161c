"""Self-contained modeling package (config, model, its layers, losses, serving).

Only same-level relative imports live here: `save_pretrained` copies these files next to the weights so that
`AutoModel.from_pretrained(folder, trust_remote_code=True)` works without `hf_recsys` installed.
"""

from transformers import AutoConfig, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_rec_transformer import RecTransformerConfig
from .modeling_rec_transformer import (
    NextItemPredictionOutput,
    RecTransformerForNextItemPrediction,
    RecTransformerModel,
    RecTransformerPreTrainedModel,
)
from .pipeline_rec_transformer import PIPELINE_TASK, NextItemRecommendationPipeline
from .recommending import NextItemRecommendations

# In-process Auto classes: AutoModel gives the full recommender (backbone + scoring head), which is what every
# user of a next-item model wants. Saved models carry the same mapping in config.json's auto_map.
AutoConfig.register(RecTransformerConfig.model_type, RecTransformerConfig, exist_ok=True)
AutoModel.register(RecTransformerConfig, RecTransformerForNextItemPrediction, exist_ok=True)
RecTransformerConfig.register_for_auto_class("AutoConfig")
RecTransformerForNextItemPrediction.register_for_auto_class("AutoModel")
# The "next-item-recommendation" pipeline, in process; saved models carry it in config.json's custom_pipelines.
PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=NextItemRecommendationPipeline, pt_model=AutoModel)

__all__ = [
    "NextItemPredictionOutput",
    "NextItemRecommendations",
    "RecTransformerConfig",
    "RecTransformerForNextItemPrediction",
    "RecTransformerModel",
    "RecTransformerPreTrainedModel",
]
