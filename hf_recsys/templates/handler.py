"""Custom handler for Hugging Face Inference Endpoints, uploaded next to the model by ``hf_recsys.push_to_hub``.

Needs only torch and transformers (the model code comes with the repository through ``trust_remote_code``).

Request: ``{"inputs": {"history": [movie ids or titles, oldest first], "user_id": MovieLens user id (optional)},
"parameters": {"k": 10, "exclude_seen": true}}``; ``"inputs"`` may also be the history list itself.
Response: ``[{"movie_id": int, "title": str | None, "score": float}, ...]``, best first.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from transformers import AutoModel


class EndpointHandler:
    """Loads the model and its vocabularies once; each call maps MovieLens ids to tokens and back."""

    def __init__(self, path: str = "") -> None:
        self.model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
        with open(os.path.join(path, "item_vocab.json"), encoding="utf-8") as fh:
            items = json.load(fh)
        with open(os.path.join(path, "user_vocab.json"), encoding="utf-8") as fh:
            users = json.load(fh)
        self.movie_ids: list[int | str] = items["item_ids"]  # token t (1..num_items) is movie_ids[t - 1]; 0 = pad
        self.str_items = items.get("id_type") == "str"  # string ids ("B07J3GH1W1"); files without id_type: ints
        self.str_users = users.get("id_type") == "str"
        self.titles: list[str | None] = items.get("titles") or [None] * len(self.movie_ids)
        self.token_of = {movie: token for token, movie in enumerate(self.movie_ids, start=1)}
        self.token_of_title = {t.casefold(): i for i, t in enumerate(self.titles, start=1) if t}
        self.user_index = {user: index for index, user in enumerate(users["user_ids"], start=1)}  # 0 = unknown

    def _token(self, item: Any) -> int:
        if self.str_items:  # a known string id first, a title otherwise; never a number
            token = self.token_of.get(item) if isinstance(item, str) else None
            if token is None and isinstance(item, str):
                token = self.token_of_title.get(item.strip().casefold())
        elif isinstance(item, str) and not item.strip().isdigit():
            token = self.token_of_title.get(item.strip().casefold())
        else:
            token = self.token_of.get(int(item))
        if token is None:
            raise ValueError(f"unknown movie {item!r}: not in this model's catalogue")
        return token

    def _user(self, user_id: Any) -> int:
        """User index of `user_id` (0 = unknown); string user ids are never parsed, int ones are."""
        if user_id is None or (self.str_users and not isinstance(user_id, str)):
            return 0
        return self.user_index.get(user_id if self.str_users else int(user_id), 0)

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = data.get("inputs", data)
        if isinstance(inputs, list):
            inputs = {"history": inputs}
        params = data.get("parameters") or {}
        k = int(params.get("k", params.get("top_k", 10)))
        history = [self._token(item) for item in inputs.get("history") or []]
        user_id = inputs.get("user_id")
        user = self._user(user_id)
        config = self.model.config
        if history or config.user_conditioning == "prepend":
            recs = self.model.recommend(
                torch.tensor([history], dtype=torch.long).reshape(1, len(history)),
                user_ids=torch.tensor([user]) if config.user_conditioning != "none" else None,
                k=k,
                exclude_seen=bool(params.get("exclude_seen", True)),
            )
            tokens, scores = recs.item_ids[0].tolist(), recs.scores[0].tolist()
        else:  # nobody to condition on: the most popular movies of the training data
            counts = self.model.rec_transformer.item_counts.detach().float().clone()
            counts[0] = -torch.inf
            top = counts.topk(k)
            tokens, scores = top.indices.tolist(), top.values.tolist()
        return [
            {"movie_id": self.movie_ids[t - 1], "title": self.titles[t - 1], "score": float(s)}
            for t, s in zip(tokens, scores)
        ]
