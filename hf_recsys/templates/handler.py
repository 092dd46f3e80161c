"""Custom handler for Hugging Face Inference Endpoints, uploaded next to the model by ``hf_recsys.push_to_hub``.

A thin wrapper around the repository's own ``next-item-recommendation`` pipeline (``trust_remote_code``): all
inference logic lives in the model's ``recommender.py``, so the endpoint answers exactly like ``Recommender``.
Needs only torch and transformers.

Request: ``{"inputs": {"history": [item ids or titles, oldest first], "user_id": ..., "user_features": {...}},
"parameters": {"k": 10, "exclude_seen": true, "filters": {...}, "on_unknown": "skip"}}`` (every key optional;
``"inputs"`` may also be the history list itself, or a list of such requests for a batch; ``top_k`` is ``k``).
Response: ``[{"item_id", "score", "rank", "title"?, <item fields>...}, ...]``, best first (a list of those for a
batch). A bad request raises the pipeline's error (a ``ValueError`` naming the bad value), which the endpoint
returns as an error response.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import pipeline

PARAMETERS = ("k", "top_k", "exclude_seen", "filters", "on_unknown", "batch_size")


class EndpointHandler:
    """Loads the pipeline once; each call passes the request through it."""

    def __init__(self, path: str = "") -> None:
        device = 0 if torch.cuda.is_available() else -1
        self.pipeline = pipeline("next-item-recommendation", model=path or ".", trust_remote_code=True, device=device)
        self.model = self.pipeline.model

    def __call__(self, data: dict[str, Any]) -> list[Any]:
        if not isinstance(data, dict):
            raise ValueError(f"the request must be a JSON object with 'inputs', got {type(data).__name__}")
        params = dict(data.get("parameters") or {})
        inputs = data["inputs"] if "inputs" in data else {k: v for k, v in data.items() if k != "parameters"}
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; expected some of {list(PARAMETERS)}")
        if "k" in params:
            params["top_k"] = params.pop("k")
        return self.pipeline(inputs, **params)
