"""Item embeddings for similarity search: the model's scoring matrix, one float32 row per item.

The rows are ``output_weight()`` (the output embeddings, plus each item's feature vector when the model scores
with them), i.e. the vectors a user's hidden state is multiplied with: two items are similar when users who
are likely to pick one are likely to pick the other. Token 0 (padding) is dropped, so row ``i`` is item
``item_ids[i]``. A per-item output bias (``output_item_bias``) is a popularity prior, not part of the
similarity: it is not included.

Files: Parquet with ``item_id`` and ``embedding`` (``fixed_size_list<float32>[H]``: Arrow, pandas, DuckDB and
the ``datasets`` library read it as a vector column), or safetensors with ``embeddings`` (N, H) and the ids as
JSON in the metadata (``item_ids``, ``id_type``), loadable without pyarrow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..modeling import RecTransformerForNextItemPrediction
from .recommendations import check_output, load_model_and_vocabs

__all__ = ["item_embeddings", "load_item_embeddings", "save_item_embeddings", "top_similar"]

FORMATS = (".parquet", ".safetensors")


def item_embeddings(
    model: str | os.PathLike[str] | RecTransformerForNextItemPrediction,
    item_ids: np.ndarray | None = None,
    revision: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, (N, H) float32 matrix) of a run folder, Hub repo id or loaded model.

    ``item_ids`` is needed only for a loaded model (its vocabulary is not attached to it); for a folder or repo
    the ids come from its ``item_vocab.json``. Items beyond the vocabulary (none, normally) are cut.
    """
    loaded, items, _ = load_model_and_vocabs(model, revision)
    if item_ids is None:
        if items is None:
            raise ValueError("item_embeddings: the model has no item vocabulary; pass item_ids")
        item_ids = items.item_ids
    item_ids = np.asarray(item_ids)
    with torch.no_grad():
        weight = loaded.output_weight()[1:].detach().float().cpu().numpy()
    if item_ids.size > weight.shape[0]:
        raise ValueError(f"{item_ids.size} item ids but the model scores {weight.shape[0]} items")
    return item_ids, np.ascontiguousarray(weight[: item_ids.size], dtype=np.float32)


def save_item_embeddings(
    path: str | os.PathLike[str], item_ids: np.ndarray, embeddings: np.ndarray, overwrite: bool = False
) -> Path:
    """Write ids and matrix to ``path`` (``.parquet`` or ``.safetensors``, by extension), atomically."""
    path = check_output(path, overwrite)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"embeddings file {path}: the extension must be one of {', '.join(FORMATS)}")
    item_ids, embeddings = np.asarray(item_ids), np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != item_ids.size:
        raise ValueError(f"{item_ids.size} item ids for an embedding matrix of shape {embeddings.shape}")
    id_type = "int" if item_ids.dtype.kind in "iu" else "str"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if suffix == ".parquet":
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), embeddings.shape[1])
            ids = pa.array(item_ids, pa.int64() if id_type == "int" else pa.string())
            pq.write_table(pa.table({"item_id": ids, "embedding": vectors}), tmp)
        else:
            from safetensors.numpy import save_file

            ids = [int(i) for i in item_ids] if id_type == "int" else [str(i) for i in item_ids]
            save_file({"embeddings": embeddings}, tmp, metadata={"item_ids": json.dumps(ids), "id_type": id_type})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_item_embeddings(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read back what :func:`save_item_embeddings` wrote: (item ids, (N, H) float32 matrix)."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(path, "np") as f:
            meta = f.metadata() or {}
            matrix = f.get_tensor("embeddings")
        ids = json.loads(meta.get("item_ids", "[]"))
        return np.asarray(ids, np.int64 if meta.get("id_type") == "int" else str), matrix
    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    matrix = column.values.to_numpy().reshape(len(column), column.type.list_size).astype(np.float32)
    ids = table.column("item_id").to_numpy(zero_copy_only=False)
    return (ids.astype(str) if ids.dtype == object else ids), matrix


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity = dot product); zero rows stay zero."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)


def top_similar(normalized: np.ndarray, query: np.ndarray, k: int = 10, exclude: int | None = None) -> np.ndarray:
    """Rows of the ``k`` nearest items to ``query`` by cosine (exact scan: one matrix-vector product and an
    ``argpartition``, then a sort of the ``k`` kept), best first; ``exclude`` drops one row (the query item)."""
    scores = normalized @ (query / max(float(np.linalg.norm(query)), 1e-12)).astype(np.float32)
    if exclude is not None:
        scores[exclude] = -np.inf
    k = min(k, scores.size)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]
