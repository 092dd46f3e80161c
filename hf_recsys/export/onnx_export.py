"""ONNX export of the scoring path: history tokens in, top-k item tokens and scores out.

    hf-recsys export-onnx --model runs/demo --output model.onnx --k 10

The graph (opset 18, TorchScript exporter: the dynamo exporter cannot export the model's data-dependent
branches) takes

* ``input_ids`` int64 (batch, length): item tokens (``item_vocab.json``), oldest first, 0 = padding, any
  length; left or right padding both work. The graph keeps the ``max_position_embeddings`` most recent items of
  each row, left-aligned (so it always runs a window of that width, as the PyTorch model does for long inputs);
* ``user_ids`` int64 (batch,), only for a model that conditions on users: user indices (``user_vocab.json``),
  0 = unknown user;

and returns ``item_ids`` int64 (batch, k) tokens and ``scores`` float32 (batch, k), best first. Padding is never
returned and, with ``exclude_seen`` (default), neither is any item of ``input_ids`` (all columns, not only the
window read): exclusion happens inside the graph. When fewer than ``k`` items are left the last slots score
``-inf``. Feature-field tables (genres, user demographics) are folded into plain embedding tables before export
(the same vectors, fewer operators), so the graph has no EmbeddingBag.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from types import MethodType

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling import RecTransformerForNextItemPrediction
from .recommendations import check_output, load_model_and_vocabs

__all__ = ["OnnxScorer", "export_onnx"]

OPSET = 18


def _folded(model: RecTransformerForNextItemPrediction) -> RecTransformerForNextItemPrediction:
    """A copy of ``model`` whose item and user vectors (id embedding + feature fields) and scoring matrix are
    precomputed tables: same scores, and a graph of lookups instead of per-request embedding bags over the
    whole catalogue."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        embeddings = model.rec_transformer.embeddings
        items = embeddings.item_embeddings.weight.detach().clone()
        side = embeddings.side_vectors()
        if side is not None:
            items = items + side
        weight = model.output_weight().detach().clone()
        embeddings.item_vectors = MethodType(lambda self, ids: F.embedding(ids, items), embeddings)
        model.output_weight = MethodType(lambda self: weight, model)
        user = getattr(model.rec_transformer, "user", None)
        if user is not None:
            table = user.user_embeddings.weight.detach().clone()
            if model.config.user_feature_fields:
                table = table + user.user_features(user.user_feature_values)
            user.forward = MethodType(lambda self, ids, features, batch: F.embedding(ids, table), user)
    return model


class OnnxScorer(nn.Module):
    """What the ONNX graph computes: top-``k`` of the next-item scores after each history (see the module doc)."""

    def __init__(self, model: RecTransformerForNextItemPrediction, k: int = 10, exclude_seen: bool | None = None):
        super().__init__()
        if not isinstance(k, int) or not 1 <= k <= model.config.num_items:
            raise ValueError(f"k must be an integer in [1, {model.config.num_items}] (the catalogue), got {k!r}")
        self.model = _folded(model)
        self.k = k
        self.exclude_seen = model.config.exclude_seen if exclude_seen is None else exclude_seen  # None: the data's
        self.uses_users = model.config.user_conditioning != "none"
        self.window = model.config.max_position_embeddings

    def forward(self, input_ids: torch.Tensor, user_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        logits = self.model(
            input_ids=input_ids, user_ids=user_ids if self.uses_users else None, logits_to_keep=1
        ).logits
        if self.exclude_seen:
            logits = logits.scatter(1, input_ids, torch.full_like(input_ids, float("-inf"), dtype=logits.dtype))
        pad = torch.arange(logits.shape[1], device=logits.device) == 0
        logits = logits.masked_fill(pad, -torch.inf)
        scores, item_ids = logits.topk(self.k, dim=1)
        return item_ids, scores


def export_onnx(
    model: str | os.PathLike[str] | RecTransformerForNextItemPrediction,
    output: str | os.PathLike[str],
    k: int = 10,
    exclude_seen: bool | None = None,
    overwrite: bool = False,
    revision: str | None = None,
) -> Path:
    """Export the scoring path of a run folder, Hub repo id or loaded model to ``output`` (``.onnx``); returns
    its path. Dynamic batch and length axes; ``k`` and ``exclude_seen`` are fixed in the graph."""
    path = check_output(output, overwrite)
    loaded, _, _ = load_model_and_vocabs(model, revision)
    scorer = OnnxScorer(loaded.float().cpu(), k, exclude_seen).eval()
    # The traced example is wider than the window (with at most a window of items a row): the graph then keeps
    # the model's cut to the most recent `max_position_embeddings` items, which left-aligns any padding, and
    # the general attention mask that goes with it; a narrower example would bake in the no-cut branch.
    example = torch.arange(scorer.window + 2).repeat(2, 1) % loaded.config.num_items + 1
    example[0, :2] = 0
    example[1, -2:] = 0
    inputs: tuple[torch.Tensor, ...] = (example,)
    names, axes = ["input_ids"], {"input_ids": {0: "batch", 1: "length"}}
    if scorer.uses_users:
        inputs += (torch.tensor([0, min(1, loaded.config.num_users)]),)
        names.append("user_ids")
        axes["user_ids"] = {0: "batch"}
    axes |= {"item_ids": {0: "batch"}, "scores": {0: "batch"}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python-level shape checks
            torch.onnx.export(
                scorer,
                inputs,
                str(tmp),
                input_names=names,
                output_names=["item_ids", "scores"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
