"""Share a trained run on the Hugging Face Hub: the model card, the training curve and a one-commit upload.

A run folder (see ``docs/INTERFACES.md``) is everything a stranger needs: weights, the model code for
``trust_remote_code``, the vocabularies that map MovieLens ids and titles to tokens, and ``results.json``. This module
turns ``results.json`` + ``config.json`` into a real model card (``hf_recsys/templates/model_card_template.md``, package
data like the Inference Endpoints ``handler.py`` beside it), plots the validation curve, and uploads the folder in ONE
commit after checking everything that can be checked offline, so a bad repo id, a missing token or an incomplete folder
fails before anything leaves the machine.
"""

from ..run_layout import CARD_FILE, CURVE_FILE, HANDLER_FILE, RESULTS_FILE
from .card import TEMPLATE_DIR, TEMPLATE_FILE, render_model_card, write_model_card
from .card_text import _CARD_EXCLUDED_CONFIG_FIELDS, _config_keys  # noqa: F401 - the tests' and training's
from .curve import plot_training_curve
from .push import _check_repo_id, _resolve_token, hub_timeouts, push_to_hub  # noqa: F401
from .run_folder import DATA_FILES, WEIGHTS_FILE, upload_files

__all__ = [
    "CARD_FILE",
    "CURVE_FILE",
    "DATA_FILES",
    "HANDLER_FILE",
    "RESULTS_FILE",
    "TEMPLATE_DIR",
    "TEMPLATE_FILE",
    "WEIGHTS_FILE",
    "hub_timeouts",
    "plot_training_curve",
    "push_to_hub",
    "render_model_card",
    "upload_files",
    "write_model_card",
]
