"""Public, stable inference API: `Recommender`, its result type and its errors.

The implementation lives in `hf_recsys.modeling.recommender` (and its sibling files) because those files travel
with every saved model (the Hub/pipeline path needs them without `hf_recsys` installed); this module only
re-exports them, so there is a single implementation of the inference logic. The errors, one class per kind of
mistake and all `ValueError`s, are documented in `hf_recsys.modeling.errors`.

Example::

    from hf_recsys import Recommender

    rec = Recommender.from_pretrained("runs/demo")  # or a Hub repo id
    rec.recommend(user_id=5, history=["Toy Story (1995)", 260], k=10, filters={"genres": ["Comedy"]})
    rec.similar_items(260, k=5)
"""

from __future__ import annotations

from .modeling.errors import (
    EmptyCatalogueError,
    InvalidRequestError,
    TitleMatchError,
    UnknownFilterError,
    UnknownItemError,
    UnknownItemWarning,
)
from .modeling.pipeline_rec_transformer import (
    PIPELINE_TASK,
    NextItemRecommendationPipeline,
    save_pipeline_files,
)
from .modeling.recommender import REQUEST_KEYS, Recommendations, Recommender
from .modeling.run_files import load_run_fields, load_vocabularies

__all__ = [
    "PIPELINE_TASK",
    "REQUEST_KEYS",
    "EmptyCatalogueError",
    "InvalidRequestError",
    "NextItemRecommendationPipeline",
    "Recommendations",
    "Recommender",
    "TitleMatchError",
    "UnknownFilterError",
    "UnknownItemError",
    "UnknownItemWarning",
    "load_run_fields",
    "load_vocabularies",
    "save_pipeline_files",
]
