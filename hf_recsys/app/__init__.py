"""Interactive web demo: pick movies you liked (or a MovieLens user) and see what the model recommends.

`build_demo(model)` returns a `gradio.Blocks` page; `hf-recsys app` (and `scripts/app.py`, usable as a Hugging Face Space's
`app.py`) parses the command line and launches it. The page shows, side by side, the model's recommendations
and what the popularity baseline (the cold-start answer) would show for the same request, plus a bar chart of
the genre mix of the picked movies against the genre mix of the recommendations.

Design notes:

* Three modules: `models` (loading a run folder or Hub repo, histories, the registry), `views` (what the
  page shows) and `page` (the Gradio callbacks, layout and command line). Everything but the layout is plain
  Python (`load_demo_model`, `recommend_view`, `user_history_view`), so the logic is unit-tested without a
  browser; the Gradio callbacks are thin wrappers that add toasts and component updates. `gradio` is imported lazily (only by `build_demo`/`launch` and the callbacks): importing
  this module, or `hf_recsys`, stays cheap and works without the `demo` extra.
* Loaded models live in a process-wide registry (the page's own model pinned, a few loaded from the model box
  besides, reused across sessions); a browser session only keeps its model's key in a `gr.State` (Gradio
  deep-copies state values per session, which must not happen to a model).
* Watch histories of existing users are not part of a run folder's required files. They come from
  `user_histories.json` next to the model (see `save_histories`), else from the MovieLens release named in
  `results.json` (`hf_recsys.data.load_movielens`; the CLI reads it in the background at start-up, otherwise it
  is read on the first user pick), else the user is served from the user id alone.
"""

from .models import (
    HISTORIES_FILE,
    DemoModel,
    ModelLoadError,
    histories_from_dataset,
    histories_from_movielens,
    item_noun,
    load_demo_model,
    load_histories,
    save_histories,
)
from .page import (
    MODEL_ENV,
    build_demo,
    launch,
    main,
    parse_args,
)
from .views import RecommendView, UserHistoryView, genre_mix, genre_mix_figure, recommend_view, user_history_view

__all__ = [
    "HISTORIES_FILE",
    "MODEL_ENV",
    "DemoModel",
    "ModelLoadError",
    "RecommendView",
    "UserHistoryView",
    "build_demo",
    "genre_mix",
    "genre_mix_figure",
    "histories_from_dataset",
    "histories_from_movielens",
    "item_noun",
    "launch",
    "load_demo_model",
    "load_histories",
    "main",
    "parse_args",
    "recommend_view",
    "save_histories",
    "user_history_view",
]
