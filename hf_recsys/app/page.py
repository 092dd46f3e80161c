"""The Gradio page: thin callbacks (toasts and component updates around the views), the page layout, and
the command line of `hf-recsys app`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: see the package docstring
    import gradio as gr
    import pandas as pd
    from matplotlib.figure import Figure


from .models import (
    HISTORIES_FILE,
    MAX_K,
    DemoModel,
    HistoriesArg,
    ModelLoadError,
    load_demo_model,
    load_for_session,
    lookup_model,
    register_model,
)
from .views import (
    DEFAULT_K,
    NO_MODEL_MESSAGE,
    POPULAR_COLUMNS,
    RECOMMENDATION_COLUMNS,
    genre_mix_figure,
    parse_user,
    recommend_view,
    table_frame,
    user_history_view,
)

MODEL_ENV = "HF_RECSYS_MODEL"  # the model a Space (or a bare `python scripts/app.py`) serves
HISTORIES_ENV = "HF_RECSYS_HISTORIES"  # optional: histories source for a bare `python scripts/app.py`


def _warn(message: str | None) -> None:
    """Show `message` as a toast in the page (a Python warning outside a Gradio event)."""
    if message:
        import gradio as gr

        gr.Warning(message)


def recommend_callback(
    model_key: str | None,
    movie_ids: Sequence[int] | None,
    user_value: Any,
    older: Sequence[int] | None,
    k: int | float,
    genres: Sequence[str] | None,
) -> tuple[str, pd.DataFrame, pd.DataFrame, Figure | None]:
    """The "Recommend" button: (status markdown, recommendations, popularity baseline, genre-mix chart)."""
    view = recommend_view(lookup_model(model_key), movie_ids, user_value, older, k, genres)
    _warn(view.warning)
    figure = genre_mix_figure(view.genre_mix) if len(view.genre_mix) else None
    return view.message, view.recommendations, view.popular, figure


def pick_user_callback(model_key: str | None, user_value: Any) -> tuple[dict[str, Any], list[int], Any]:
    """A user was picked (or cleared): (picker update with their recent movies, older movies, status)."""
    import gradio as gr

    view = user_history_view(lookup_model(model_key), user_value)
    _warn(view.warning)
    if _parse_user_or_none(user_value) is None:  # cleared: leave the picked movies and the status alone
        return gr.update(), [], gr.update() if not view.message else view.message
    if not view.shown and not view.older:  # no known history: keep what the visitor picked
        return gr.update(), [], view.message
    return gr.update(value=view.shown), view.older, view.message


def _parse_user_or_none(value: Any) -> int | None:
    try:
        return parse_user(value)
    except ValueError:
        return None


def load_model_callback(source: str, model_key: str | None, histories: HistoriesArg = "auto") -> tuple[Any, ...]:
    """The "Load" button: load a folder / repo id and reset the pickers to its catalogue.

    Returns updates for (model key state, description, movie picker, user picker, genre filter, k slider,
    older-movies state, status). On failure the session keeps its current model and the status says why.
    """
    import gradio as gr

    try:
        key, model = load_for_session(source, histories)
    except ModelLoadError as error:
        _warn(str(error))
        keep = gr.update()
        return (model_key, keep, keep, keep, keep, keep, gr.update(), f"⚠️ {error}")
    return (
        key,
        model.description,
        gr.update(choices=model.title_choices, value=[]),
        gr.update(choices=model.user_choices, value=None),
        gr.update(choices=model.genre_names, value=[], visible=bool(model.genre_names)),
        gr.update(maximum=model.max_k, value=min(DEFAULT_K, model.max_k)),
        [],
        f"Loaded `{model.source}`.",
    )


# --------------------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------------------
def build_demo(
    model: str | os.PathLike[str] | DemoModel | None = None,
    *,
    histories: HistoriesArg = "auto",
    lock_model: bool = False,
    notice: str | None = None,
) -> gr.Blocks:
    """Build the demo page (not launched: call `launch(demo)` or `demo.launch()`).

    Args:
        model: a `DemoModel`, or a run folder / Hub repo id to load (raises `ModelLoadError` when it cannot be
            loaded), or None to start empty with a model box.
        histories: where existing users' histories come from (see `load_demo_model`).
        lock_model: hide the model box so visitors cannot load other models (public Spaces).
        notice: a markdown line shown at the top (e.g. why no model is loaded).
    """
    import gradio as gr

    loaded = model if isinstance(model, DemoModel) or model is None else load_demo_model(model, histories=histories)
    key = register_model(loaded, pinned=True) if loaded is not None else None
    max_k = loaded.max_k if loaded else MAX_K
    intro = notice or (loaded.description if loaded else NO_MODEL_MESSAGE)
    noun = loaded.noun if loaded else "movie"  # the page's wording follows the loaded run's data
    user_source = "MovieLens user" if noun == "movie" else "user"

    with gr.Blocks(title=f"hf-recsys {noun} recommender", analytics_enabled=False) as demo:
        model_key = gr.State(key)
        older = gr.State([])
        gr.Markdown(
            f"# {'What should I watch next?' if noun == 'movie' else 'What comes next?'}\n"
            f"Pick {noun}s you liked, oldest first (or start from an existing {user_source}), and compare the "
            "model's picks with the popularity baseline."
        )
        description = gr.Markdown(intro, elem_id="model-description")
        with gr.Accordion("Model", open=loaded is None, visible=not lock_model), gr.Row():
            source = gr.Textbox(
                value=loaded.source if loaded else "",
                label="Run folder or Hub repo id",
                placeholder="runs/demo or user/rec-transformer-ml-1m",
                scale=4,
                elem_id="model-source",
            )
            load = gr.Button("Load", scale=1, elem_id="load-model")
        with gr.Row():
            with gr.Column(scale=3):
                movies = gr.Dropdown(
                    choices=loaded.title_choices if loaded else [],
                    value=[],
                    multiselect=True,
                    filterable=True,
                    label=f"{noun.capitalize()}s you liked (oldest first)",
                    info=f"Type to search the catalogue; the most popular {noun}s are listed first.",
                    elem_id="movies",
                )
            with gr.Column(scale=2):
                user = gr.Dropdown(
                    choices=loaded.user_choices if loaded else [],
                    value=None,
                    allow_custom_value=True,
                    filterable=True,
                    label=f"…or an existing {user_source}",
                    info="Loads their history into the picker (type any user id).",
                    elem_id="user",
                )
        with gr.Row():
            genre_filter = gr.Dropdown(
                choices=loaded.genre_names if loaded else [],
                value=[],
                multiselect=True,
                label="Only these genres (optional)",
                visible=bool(loaded and loaded.genre_names),
                scale=3,
                elem_id="genres",
            )
            k = gr.Slider(1, max_k, value=min(DEFAULT_K, max_k), step=1, label="How many", scale=2, elem_id="k")
            with gr.Column(scale=1, min_width=120):
                recommend = gr.Button("Recommend", variant="primary", elem_id="recommend")
                clear = gr.Button("Clear", elem_id="clear")
        status = gr.Markdown("", elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("### Recommended for you")
                recommendations = gr.Dataframe(
                    table_frame([], RECOMMENDATION_COLUMNS),
                    interactive=False,
                    wrap=True,
                    column_widths=["6%", "38%", "20%", "10%", "12%", "14%"],
                    elem_id="recommendations",
                )
            with gr.Column():
                gr.Markdown("### Popularity baseline (what a new visitor gets)")
                popular = gr.Dataframe(
                    table_frame([], POPULAR_COLUMNS),
                    interactive=False,
                    wrap=True,
                    column_widths=["6%", "44%", "22%", "12%", "16%"],
                    elem_id="popular",
                )
        chart = gr.Plot(label=f"Genre mix: your {noun}s vs the recommendations", elem_id="genre-mix")

        recommend.click(
            recommend_callback,
            inputs=[model_key, movies, user, older, k, genre_filter],
            outputs=[status, recommendations, popular, chart],
        )
        user.input(pick_user_callback, inputs=[model_key, user], outputs=[movies, older, status])
        clear.click(
            lambda: (
                [],
                None,
                [],
                [],
                "",
                table_frame([], RECOMMENDATION_COLUMNS),
                table_frame([], POPULAR_COLUMNS),
                None,
            ),
            outputs=[movies, user, older, genre_filter, status, recommendations, popular, chart],
        )
        if not lock_model:  # a locked page must not even expose the endpoint (reachable through the API)
            load.click(
                lambda text, current: load_model_callback(text, current, histories),
                inputs=[source, model_key],
                outputs=[model_key, description, movies, user, genre_filter, k, older, status],
            )
    return demo


def launch(
    demo: gr.Blocks,
    *,
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> Any:
    """Serve the page. host/port default to Gradio's (`GRADIO_SERVER_NAME`/`GRADIO_SERVER_PORT`, else
    127.0.0.1:7860; Spaces set them). With `prevent_thread_lock` it returns at once (tests, notebooks)."""
    return demo.queue(default_concurrency_limit=2).launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        show_error=True,
        footer_links=["gradio"],
    )


# --------------------------------------------------------------------------------------------------------------
# Command line (hf-recsys app)
# --------------------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options of `hf-recsys app`; every one has an environment default so a Space needs no arguments."""
    parser = argparse.ArgumentParser(
        prog="hf-recsys app",
        description="Interactive movie recommendation demo (Gradio).",
        epilog=f"In a Hugging Face Space, set the {MODEL_ENV} variable to a model repo id and run with no arguments.",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV) or None,
        help=f"run folder (e.g. runs/demo) or Hub repo id (default: ${MODEL_ENV})",
    )
    parser.add_argument(
        "--histories",
        default=os.environ.get(HISTORIES_ENV) or "auto",
        help=f"users' watch histories: auto ({HISTORIES_FILE} next to the model, else the MovieLens release "
        "of its results.json), none, or a JSON file {user_id: [movie ids]} (default: auto)",
    )
    parser.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1; 0.0.0.0 in Spaces)")
    parser.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--device", default=None, help="torch device for the model (default cpu)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit of the model")
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument(
        "--lock-model",
        action="store_true",
        default=bool(os.environ.get("SPACE_ID")),
        help="hide the model box so visitors cannot load other models (default on in Spaces)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model and serve the page until interrupted; returns the exit status (2: model not loadable)."""
    args = parse_args(argv)
    if not logging.getLogger("hf_recsys").handlers:  # `hf-recsys app` has configured it already
        from ..cli import configure_logging

        configure_logging()
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('the demo needs the demo extra: pip install -e ".[demo]"', file=sys.stderr)
        return 2
    notice = None
    model: DemoModel | None = None
    if args.model:
        try:
            model = load_demo_model(args.model, histories=args.histories, device=args.device, revision=args.revision)
        except ModelLoadError as error:
            if not os.environ.get("SPACE_ID"):
                print(f"error: {error}", file=sys.stderr)
                return 2
            notice = f"⚠️ {error}"  # in a Space, say it on the page rather than crash the container
    else:
        notice = f"No model configured: set the `{MODEL_ENV}` variable (a Hub repo id) or pass `--model`."
        if not args.lock_model:
            notice += " You can also load one below."
    if model is not None:
        model.prefetch_histories()
    demo = build_demo(model, histories=args.histories, lock_model=args.lock_model, notice=notice)
    launch(demo, host=args.host, port=args.port, share=args.share)
    return 0
