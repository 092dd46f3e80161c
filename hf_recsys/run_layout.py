"""The names of the files a run folder holds besides the weights and the modeling bundle's own files, declared
once for the code that writes them (`hf_recsys.training`), reads them (`hf_recsys.hub`, `hf_recsys.app`) and
uploads them.

The names the self-contained modeling bundle reads itself (the vocabularies, the feature fields) are declared in
the bundle (`hf_recsys.modeling.vocab_ids`, `hf_recsys.modeling.fields`), and the weights' names are
transformers' (`SAFE_WEIGHTS_NAME`, `SAFE_WEIGHTS_INDEX_NAME`). Plain strings and no imports, so that any layer
can import them without an import cycle.
"""

from __future__ import annotations

RESULTS_FILE = "results.json"
"""What the run measured and how it was trained (metrics, curve, recipe, data, speed); the card is built from it."""
CARD_FILE = "README.md"
"""The model card."""
CURVE_FILE = "training_curve.png"
"""The validation curve drawn from `RESULTS_FILE`'s history."""
HANDLER_FILE = "handler.py"
"""The Inference Endpoints handler pushed with the model."""
HISTORIES_FILE = "user_histories.json"
"""Optional, next to a model: `{user_id: [item ids, oldest first]}`, the histories the demo app offers."""
