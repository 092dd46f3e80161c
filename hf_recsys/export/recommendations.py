"""Batch export: the top-k recommendations of every user (or of a list of users) streamed to a Parquet file.

    from hf_recsys import export_recommendations
    from hf_recsys.training import DataArguments
    summary = export_recommendations("runs/demo", DataArguments(dataset="ml-1m"), k=100, output="recs.parquet")

The file has one row per (user, rank): ``user_id`` (the original id, int64 or string), ``rank`` (1 = best),
``item_id`` (original id) and ``score`` (float32 logit). Histories are each user's longest known history
(``input_ids + [target]``, see ``hf_recsys.export.histories``), scored longest first in batches on the model's
last position only (``logits_to_keep=1``), seen items excluded, top-k with ``torch.topk``. Results go to the
``ParquetWriter`` batch by batch: memory is bounded by the batch size and one row group, whatever the number of
users. The file is written under a temporary name beside the output and renamed at the end, so a reader never
sees half a file and a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..modeling import RecTransformerForNextItemPrediction
from ..modeling.vocab import ItemVocab, UserVocab
from .histories import DatasetHistories, HistoryBatch, read_user_list

__all__ = [
    "ExportSummary",
    "check_output",
    "export_recommendations",
    "recommendation_schema",
    "score_batch",
    "write_recommendations",
]

# Rows buffered before a Parquet row group is written (~3 MB). Larger groups made RSS grow to ~1 GB above the
# model on 1M synthetic users (the buffered arrays pin heap space between the per-batch logits), with no gain.
ROW_GROUP_ROWS = 1 << 17


@dataclass
class ExportSummary:
    """What an export wrote: users, rows, the users of the list it could not export, and how long it took."""

    output: str
    num_users: int
    num_rows: int
    k: int
    seconds: float
    unknown_users: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_output(output: str | os.PathLike[str], overwrite: bool) -> Path:
    """The output path, refused (``FileExistsError``) when it exists and ``overwrite`` is not set: checked before
    any work, so a long export never ends in a refusal."""
    path = Path(output)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of a .parquet file")
    return path


def recommendation_schema(user_id_type: str, item_id_type: str, metadata: dict[str, Any] | None = None) -> pa.Schema:
    """The Parquet schema: user_id, rank, item_id, score; ids keep their type (int64 or string)."""
    arrow = {"int": pa.int64(), "str": pa.string()}
    schema = pa.schema(
        [
            pa.field("user_id", arrow[user_id_type], nullable=False),
            pa.field("rank", pa.int32(), nullable=False),
            pa.field("item_id", arrow[item_id_type], nullable=False),
            pa.field("score", pa.float32(), nullable=False),
        ]
    )
    return schema.with_metadata({"hf_recsys": json.dumps(metadata)}) if metadata else schema


def _inputs(batch: HistoryBatch, max_length: int) -> torch.Tensor:
    """(B, L) right-padded model inputs: the ``max_length`` most recent items of each history (L = the longest
    kept history of the batch). Right padding lets the model use the causal fast path of attention."""
    lengths = batch.lengths
    keep = np.minimum(lengths, max_length)
    width = max(int(keep.max(initial=0)), 1)
    starts = batch.offsets[1:] - keep
    rows = np.repeat(np.arange(lengths.size), keep)
    cols = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)
    inputs = np.zeros((lengths.size, width), np.int64)
    inputs[rows, cols] = batch.tokens[np.repeat(starts, keep) + cols]
    return torch.from_numpy(inputs)


@torch.inference_mode()
def score_batch(
    model: RecTransformerForNextItemPrediction,
    batch: HistoryBatch,
    k: int,
    exclude_seen: bool | None = None,
    rankable_items: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item tokens and scores (B, k) of a batch of histories, best first.

    Padding is never returned; with ``exclude_seen`` no item of the *whole* history (not only the window the
    model reads) is; tokens above ``rankable_items`` (items the model never learnt) are never returned. A slot
    with nothing left to recommend has token 0 and score -inf (the writer drops it).
    """
    device = model.device
    inputs = _inputs(batch, model.config.max_position_embeddings).to(device)
    user_ids = None
    if model.config.user_conditioning != "none":
        user_ids = torch.from_numpy(batch.user_index).to(device)
    logits = model(input_ids=inputs, user_ids=user_ids, logits_to_keep=1).logits.float()
    if model.config.exclude_seen if exclude_seen is None else exclude_seen:  # None: the data's setting
        rows = torch.from_numpy(np.repeat(np.arange(len(batch)), batch.lengths)).to(device)
        logits.index_put_((rows, torch.from_numpy(batch.tokens).to(device)), torch.tensor(-torch.inf, device=device))
    if rankable_items is not None:
        logits[:, rankable_items + 1 :] = -torch.inf
    logits[:, 0] = -torch.inf
    scores, tokens = logits.topk(min(k, logits.shape[1] - 1), dim=1)
    tokens = tokens.masked_fill(~torch.isfinite(scores), 0)
    return tokens.cpu().numpy(), scores.cpu().numpy()


def _progress(total: int | None, enabled: bool) -> Any:
    from datasets.utils.tqdm import tqdm

    return tqdm(total=total, unit="user", desc="export", disable=not enabled, dynamic_ncols=True)


def write_recommendations(
    model: RecTransformerForNextItemPrediction,
    batches: Iterable[HistoryBatch],
    output: str | os.PathLike[str],
    item_ids: np.ndarray,
    k: int = 100,
    exclude_seen: bool | None = None,
    overwrite: bool = False,
    user_id_type: str = "int",
    rankable_items: int | None = None,
    total_users: int | None = None,
    progress: bool = True,
    metadata: dict[str, Any] | None = None,
) -> ExportSummary:
    """Score any stream of history batches and write their top-``k`` to ``output`` (Parquet, atomically).

    The building block of :func:`export_recommendations`, public for histories that do not come from a prepared
    dataset (a feature store, a synthetic benchmark): ``batches`` may be a generator, nothing is kept from a
    batch once its rows are written. ``item_ids`` maps tokens to original ids (``item_ids[token - 1]``).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    path = check_output(output, overwrite)
    item_ids = np.asarray(item_ids)
    item_id_type = "int" if item_ids.dtype.kind in "iu" else "str"
    schema = recommendation_schema(user_id_type, item_id_type, metadata)
    lookup = np.concatenate([item_ids[:1], item_ids])  # token -> id; token 0 (dropped rows) maps to anything
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    start, users, rows = time.perf_counter(), 0, 0
    was_training = model.training
    model.eval()
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer, _progress(total_users, progress) as bar:
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in batches:
                if not len(batch):
                    continue
                tokens, scores = score_batch(model, batch, k, exclude_seen, rankable_items)
                valid = tokens != 0
                counts = valid.sum(1)
                record = pa.RecordBatch.from_arrays(
                    [
                        pa.array(np.repeat(batch.user_ids, counts), schema.field("user_id").type),
                        pa.array(np.nonzero(valid)[1].astype(np.int32) + 1, pa.int32()),
                        pa.array(lookup[tokens[valid]], schema.field("item_id").type),
                        pa.array(scores[valid], pa.float32()),
                    ],
                    schema=schema,
                )
                pending.append(record)
                pending_rows += record.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(pending, schema))
                    pending, pending_rows = [], 0
                users += len(batch)
                rows += record.num_rows
                bar.update(len(batch))
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema))
        check_output(path, overwrite)  # nothing appeared there meanwhile
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        model.train(was_training)
    return ExportSummary(str(path), users, rows, k, time.perf_counter() - start)


def load_model_and_vocabs(
    model: str | os.PathLike[str] | RecTransformerForNextItemPrediction,
    revision: str | None = None,
) -> tuple[RecTransformerForNextItemPrediction, ItemVocab | None, UserVocab | None]:
    """A run folder, Hub repo id or loaded model -> (model in eval mode, its vocabularies or None if absent)."""
    from ..finetuning import load_pretrained_vocabs

    if isinstance(model, RecTransformerForNextItemPrediction):
        return model.eval(), None, None
    loaded = RecTransformerForNextItemPrediction.from_pretrained(str(model), revision=revision).eval()
    try:
        items, users = load_pretrained_vocabs(model, loaded, revision=revision)
    except FileNotFoundError:
        return loaded, None, None
    return loaded, items, users


def export_recommendations(
    model: str | os.PathLike[str] | RecTransformerForNextItemPrediction,
    data: Any,
    output: str | os.PathLike[str],
    users: str | list[Any] | None = "all",
    k: int = 100,
    exclude_seen: bool | None = None,
    overwrite: bool = False,
    batch_size: int = 256,
    seed: int = 42,
    on_unknown: str = "error",
    progress: bool = True,
    vocabularies: tuple[ItemVocab, UserVocab] | None = None,
    revision: str | None = None,
) -> ExportSummary:
    """Write the top-``k`` recommendations of ``users`` after their whole known history to a Parquet file.

    Args:
        model: a run folder, a Hub repo id, or a loaded model (then ``vocabularies`` names its tokens; without
            them its tokens are taken to be the data's, checked by size).
        data: ``hf_recsys.training.DataArguments`` (loaded with ``seed``) or loaded data (``.dataset``, ``.items``,
            ``.users``, as ``load_movielens`` returns it). Data in other tokens than the model's is aligned to
            them as ``hf-recsys evaluate`` does; items the model never learnt are never recommended.
        output: the ``.parquet`` file; an existing one is refused unless ``overwrite``.
        users: ``"all"``/None, a list of original ids, a file of ids (one per line) or ``"1,2,3"``.
        on_unknown: users of the list with no history in the data: ``"error"`` (one ``ValueError`` naming them)
            or ``"skip"`` (exported without them; ``ExportSummary.unknown_users`` lists them).
    """
    if on_unknown not in ("error", "skip"):
        raise ValueError(f"on_unknown must be 'error' or 'skip', got {on_unknown!r}")
    check_output(output, overwrite)
    model, items, user_vocab = load_model_and_vocabs(model, revision)
    exclude_seen = model.config.exclude_seen if exclude_seen is None else exclude_seen  # the data's setting
    if vocabularies is not None:
        items, user_vocab = vocabularies
    from ..training import DataArguments

    if isinstance(data, DataArguments):
        data = data.load(seed)
    rankable = None
    if items is None:
        if data.items.num_items != model.config.num_items:
            raise ValueError(
                f"the model scores {model.config.num_items} items but the data has {data.items.num_items} and no "
                "vocabulary says which row is which item: give vocabularies=(items, users) or a run folder"
            )
    elif not (
        np.array_equal(items.item_ids, data.items.item_ids) and np.array_equal(user_vocab.user_ids, data.users.user_ids)
    ):
        from ..finetuning import align_to_pretrained, prepare_model_for_finetuning

        rankable = model.config.num_items
        data, new_items, new_users, _ = align_to_pretrained(data, items, user_vocab)
        prepare_model_for_finetuning(model, new_items, new_users)  # unknown items/users get rows, never ranked
    selection = read_user_list(users, data.users.id_type)
    histories = DatasetHistories(data.dataset, data.users, selection, batch_size)
    unknown = histories.unknown_users
    if unknown and on_unknown == "error":
        shown = ", ".join(map(repr, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        raise ValueError(
            f"{len(unknown)} of the {len(selection)} listed users have no history in the data ({shown}); "
            "pass --on_unknown skip to export the others"
        )
    if not len(histories):
        raise ValueError("no user to export: none of the listed users has a history in the data")
    summary = write_recommendations(
        model,
        histories.batches(),
        output,
        data.items.item_ids,
        k=k,
        exclude_seen=exclude_seen,
        overwrite=overwrite,
        user_id_type=data.users.id_type,
        rankable_items=rankable,
        total_users=len(histories),
        progress=progress,
        metadata={"model": str(getattr(model, "name_or_path", "")), "k": k, "exclude_seen": exclude_seen},
    )
    summary.unknown_users = unknown
    return summary
