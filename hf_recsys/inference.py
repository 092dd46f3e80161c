"""Public, stable inference API: `Recommender` and the result/error types it uses.

The implementation lives in `hf_recsys.modeling.recommender` because that file travels with every saved model
(the Hub/pipeline path needs it without `hf_recsys` installed); this module only re-exports it, so there is a
single implementation of the inference logic.

Example::

    from hf_recsys import Recommender

    rec = Recommender.from_pretrained("runs/demo")  # or a Hub repo id
    rec.recommend(user_id=5, history=["Toy Story (1995)", 260], k=10)
"""

from __future__ import annotations

from .modeling.pipeline_rec_transformer import (
    PIPELINE_TASK,
    NextItemRecommendationPipeline,
    save_pipeline_files,
)
from .modeling.recommender import (
    Recommendations,
    Recommender,
    TitleMatchError,
    UnknownMovieError,
    UnknownMovieWarning,
    load_vocabularies,
)

__all__ = [
    "PIPELINE_TASK",
    "NextItemRecommendationPipeline",
    "Recommendations",
    "Recommender",
    "TitleMatchError",
    "UnknownMovieError",
    "UnknownMovieWarning",
    "load_vocabularies",
    "save_pipeline_files",
]
