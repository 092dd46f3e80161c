"""hf-recsys: user-conditioned next-item recommendation with transformers, integrated with the HF ecosystem."""

from importlib.metadata import PackageNotFoundError, version

from .inference import Recommender as Recommender
from .modeling import (
    NextItemPredictionOutput,
    NextItemRecommendations,
    RecTransformerConfig,
    RecTransformerForNextItemPrediction,
    RecTransformerModel,
)

try:
    __version__ = version("hf-recsys")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "NextItemPredictionOutput",
    "NextItemRecommendations",
    "RecTransformerConfig",
    "RecTransformerForNextItemPrediction",
    "RecTransformerModel",
    "__version__",
]
