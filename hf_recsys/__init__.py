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

#: Exports (hf_recsys.export), imported on first use: they pull pyarrow.parquet and the data pipeline.
_LAZY = {"export_recommendations", "item_embeddings", "export_onnx"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "export_onnx",
    "export_recommendations",
    "item_embeddings",
]
