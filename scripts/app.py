"""Serve the interactive recommendation demo (Gradio); the logic lives in `hf_recsys.app`.

    python scripts/app.py --model runs/demo --port 7860      # or: make app
    python scripts/app.py --model user/rec-transformer-ml-1m  # a Hub repo id

Needs the demo extra (`pip install -e ".[demo]"`). As a Hugging Face Space's `app.py`, run with no arguments:
the model comes from the `HF_RECSYS_MODEL` variable, Gradio's host/port from the Space, and the model box is
hidden so visitors cannot load other models.
"""

from __future__ import annotations

import sys

from hf_recsys.app import main

if __name__ == "__main__":
    sys.exit(main())
