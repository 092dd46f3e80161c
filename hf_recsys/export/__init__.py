"""Offline exports of a trained model: batch recommendations to Parquet, item embeddings, an ONNX scorer.

* :func:`export_recommendations` (``hf-recsys export``): the top-k of every user after their whole history,
  streamed to Parquet (``recommendations``; histories from ``histories``).
* :func:`item_embeddings` / :func:`save_item_embeddings` (``hf-recsys export --embeddings``): the scoring matrix
  for similarity search (``embeddings``).
* :func:`export_onnx` (``hf-recsys export-onnx``): history tokens -> top-k tokens and scores (``onnx_export``;
  needs the ``onnx`` package, and ``onnxruntime`` to run the file).

docs/export.md describes the files and the choices behind them.
"""

from .embeddings import item_embeddings, load_item_embeddings, save_item_embeddings, top_similar
from .histories import DatasetHistories, HistoryBatch, read_user_list
from .onnx_export import OnnxScorer, export_onnx
from .recommendations import ExportSummary, export_recommendations, score_batch, write_recommendations

__all__ = [
    "DatasetHistories",
    "ExportSummary",
    "HistoryBatch",
    "OnnxScorer",
    "export_onnx",
    "export_recommendations",
    "item_embeddings",
    "load_item_embeddings",
    "read_user_list",
    "save_item_embeddings",
    "score_batch",
    "top_similar",
    "write_recommendations",
]
