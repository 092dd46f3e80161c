"""hf-recsys: user-conditioned next-item recommendation with transformers, integrated with the HF ecosystem."""

from importlib.metadata import PackageNotFoundError, version

from .inference import (
    EmptyCatalogueError,
    InvalidRequestError,
    Recommender,
    TitleMatchError,
    UnknownFilterError,
    UnknownItemError,
    UnknownItemWarning,
)
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
    "EmptyCatalogueError",
    "InvalidRequestError",
    "NextItemPredictionOutput",
    "NextItemRecommendations",
    "RecTransformerConfig",
    "RecTransformerForNextItemPrediction",
    "RecTransformerModel",
    "Recommender",
    "TitleMatchError",
    "UnknownFilterError",
    "UnknownItemError",
    "UnknownItemWarning",
    "__version__",
]
