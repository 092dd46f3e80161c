"""Fine-tuning a trained recommender on new interactions: grow the vocabularies, remap the data, grow the model.

A trained model only knows the tokens of its own vocabularies (``item_vocab.json``/``user_vocab.json`` beside
the weights). New data is tokenized by the data builder with *its own* vocabularies (ascending ids of the movies
and users present in it), so the same movie usually has another token there. Fine-tuning therefore:

1. :func:`align_to_pretrained`: extends the pretrained vocabularies with the movies and users of the new data
   that the model has never seen (old tokens never move, new ones are appended) and rewrites every split's
   ``input_ids``/``target``/``user_index`` into the extended tokens (one vectorised lookup per Arrow batch).
2. :func:`prepare_model_for_finetuning`: resizes the model's item/user tables to the extended vocabularies
   (old rows bit-identical; a new movie starts at the mean item embedding, a new user as the unknown user)
   and optionally freezes everything except the embedding tables.

``run_training`` (``hf-recsys train --model_name_or_path ...``) does both; the pieces are public so a script
can fine-tune on any ``DatasetDict`` in the row format of ``docs/INTERFACES.md``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import datasets
import numpy as np
import pyarrow as pa
from torch import nn
from transformers.utils import logging

from .data.feature_fields import FeatureField
from .data.features import EncodedFeatures
from .modeling import RecTransformerForNextItemPrediction
from .modeling.recommender import load_vocabularies
from .modeling.run_files import load_run_fields
from .modeling.vocab import ITEM_VOCAB_FILE, USER_VOCAB_FILE, ItemVocab, UserVocab

logger = logging.get_logger(__name__)

__all__ = [
    "AlignmentReport",
    "align_to_pretrained",
    "feature_rows",
    "item_token_map",
    "load_pretrained_vocabs",
    "prepare_model_for_finetuning",
    "pretrained_feature_fields",
    "remap_dataset",
    "trainable_parameter_names",
    "user_index_map",
]

DataT = TypeVar("DataT")


# ---------------------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------------------
def load_pretrained_vocabs(
    model_name_or_path: str | os.PathLike[str],
    model: RecTransformerForNextItemPrediction | None = None,
    revision: str | None = None,
) -> tuple[ItemVocab, UserVocab]:
    """The vocabularies saved beside a pretrained model: a local run folder or a Hub repo id.

    Without them the model's tokens mean nothing, so a missing file is an error (``FileNotFoundError``), not a
    fallback. Reading is shared with the inference API (``load_vocabularies``). With ``model``, the sizes are
    checked against its config (a vocabulary from another run would silently score wrong movies).
    """
    items, users, _commit = load_vocabularies(model_name_or_path, revision=revision)
    where = str(model_name_or_path)
    if model is not None:
        config = model.config
        if items.num_items != config.num_items:
            raise ValueError(
                f"{where}: {ITEM_VOCAB_FILE} has {items.num_items} movies but the model scores {config.num_items}: "
                "the vocabulary does not belong to these weights"
            )
        if config.user_conditioning != "none" and users.num_users != config.num_users:
            raise ValueError(
                f"{where}: {USER_VOCAB_FILE} has {users.num_users} users but the model has {config.num_users} "
                "user rows: the vocabulary does not belong to these weights"
            )
    return items, users


def item_token_map(source: ItemVocab, target: ItemVocab) -> np.ndarray:
    """Lookup table ``map[source_token] = target_token`` (int32, ``map[0] = 0``).

    Every movie of ``source`` must be in ``target`` (raises :class:`UnknownItemError` naming the first that is not).
    """
    lut = np.zeros(len(source), dtype=np.int32)
    lut[ItemVocab.NUM_SPECIAL :] = target.encode_many(source.item_ids)
    return lut


def user_index_map(source: UserVocab, target: UserVocab) -> np.ndarray:
    """Lookup table ``map[source_index] = target_index`` (int32); users unknown to ``target`` map to 0 (unknown)."""
    lut = np.zeros(len(source), dtype=np.int32)
    lut[UserVocab.NUM_SPECIAL :] = target.encode_many(source.user_ids)
    return lut


def _item_metadata(items: ItemVocab) -> dict[str, Any]:
    data = items.to_dict()
    return {k: data[k] for k in ("titles", "years", "genres", "genre_names")}


def _user_features(users: UserVocab) -> dict[str, Any]:
    return users.to_dict()["features"]


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
def _check_range(values: np.ndarray, size: int, what: str) -> None:
    if values.size and (values.min() < 0 or values.max() >= size):
        bad = int(values[(values < 0) | (values >= size)][0])
        raise ValueError(
            f"{what} {bad} is outside the source vocabulary (0..{size - 1}): the dataset was not tokenized with it"
        )


def remap_dataset(
    dataset: datasets.Dataset,
    item_map: np.ndarray,
    user_map: np.ndarray | None = None,
    desc: str = "remap tokens",
) -> datasets.Dataset:
    """Rewrite ``input_ids`` and ``target`` (and ``user_index`` if ``user_map`` is given) through lookup tables.

    One ``Dataset.map(batched=True)`` over Arrow batches: the flattened history tokens of a whole batch go
    through a single numpy take (no Python loop over rows or tokens). Features, column order and the other
    columns are unchanged; a token outside a table raises ``ValueError``.
    """
    item_map = np.asarray(item_map, dtype=np.int32)
    user_map = None if user_map is None else np.asarray(user_map, dtype=np.int32)
    needed = {"input_ids", "target"} | ({"user_index"} if user_map is not None else set())
    missing = needed - set(dataset.column_names)
    if missing:
        raise ValueError(f"remap_dataset: the dataset lacks column(s) {sorted(missing)}; it has {dataset.column_names}")

    def remap(table: pa.Table) -> pa.Table:
        if table.num_rows == 0:
            return table
        index = table.schema.get_field_index("input_ids")
        histories = table.column(index).combine_chunks()
        tokens = histories.values.to_numpy(zero_copy_only=False)
        _check_range(tokens, item_map.size, "item token")
        new_histories = type(histories).from_arrays(histories.offsets, pa.array(item_map[tokens]))
        table = table.set_column(index, table.schema.field(index), new_histories.cast(table.schema.field(index).type))
        columns = [("target", item_map, "target token")]
        if user_map is not None:
            columns.append(("user_index", user_map, "user index"))
        for name, lut, what in columns:
            index = table.schema.get_field_index(name)
            values = table.column(index).to_numpy()
            _check_range(values, lut.size, what)
            table = table.set_column(
                index, table.schema.field(index), pa.array(lut[values], table.schema.field(index).type)
            )
        return table

    out = dataset.with_format("arrow").map(remap, batched=True, batch_size=10_000, features=dataset.features, desc=desc)
    return out.with_format(dataset.format["type"], columns=dataset.format["columns"])


@dataclass
class AlignmentReport:
    """What :func:`align_to_pretrained` changed: vocabulary growth and how much of each split is new.

    ``rows_new_target[split]`` counts rows whose target the pretrained model has never seen (it can only rank
    them from their initial embedding until fine-tuning trains them); ``rows_new_user`` rows of new users.
    """

    pretrained_items: int
    new_item_ids: list[int | str]  # of the vocabulary's id type
    pretrained_users: int
    new_user_ids: list[int | str]
    rows: dict[str, int] = field(default_factory=dict)
    rows_new_target: dict[str, int] = field(default_factory=dict)
    rows_new_user: dict[str, int] = field(default_factory=dict)

    @property
    def num_new_items(self) -> int:
        """Movies appended to the item vocabulary."""
        return len(self.new_item_ids)

    @property
    def num_new_users(self) -> int:
        """Users appended to the user vocabulary."""
        return len(self.new_user_ids)

    def summary(self) -> str:
        """One readable line per fact, for logs and reports."""
        lines = [
            f"items: {self.pretrained_items} pretrained + {self.num_new_items} new",
            f"users: {self.pretrained_users} pretrained + {self.num_new_users} new",
        ]
        for split, n in self.rows.items():
            lines.append(
                f"{split}: {n} rows, {self.rows_new_target.get(split, 0)} with a new target movie, "
                f"{self.rows_new_user.get(split, 0)} of new users"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (new id lists included)."""
        return {**dataclasses.asdict(self), "num_new_items": self.num_new_items, "num_new_users": self.num_new_users}


def align_to_pretrained(
    data: DataT, items: ItemVocab, users: UserVocab
) -> tuple[DataT, ItemVocab, UserVocab, AlignmentReport]:
    """Express new data in a pretrained model's tokens, growing its vocabularies for what it has never seen.

    Args:
        data: a :class:`~hf_recsys.data.MovieLensData` (or any dataclass with ``dataset`` (DatasetDict of rows),
            ``items`` and ``users``), tokenized with its own vocabularies as ``load_movielens`` returns it.
        items, users: the pretrained model's vocabularies (:func:`load_pretrained_vocabs`).

    Returns:
        ``(aligned, items, users, report)``: ``aligned`` is a copy of ``data`` whose splits carry the extended
        tokens and whose ``items``/``users`` are the extended vocabularies (also returned separately). Every
        pretrained movie and user keeps its token; the new data's unseen movies and users are appended in
        ascending id order, with titles, years, genres and user features taken from the new data's vocabularies.
    """
    for name in ("dataset", "items", "users"):
        if not hasattr(data, name):
            raise TypeError(f"align_to_pretrained needs data with .dataset, .items and .users; got {type(data)}")
    if not isinstance(items, ItemVocab) or not isinstance(users, UserVocab):
        raise TypeError("align_to_pretrained: items and users must be an ItemVocab and a UserVocab")
    source_items: ItemVocab = data.items  # type: ignore[attr-defined]
    source_users: UserVocab = data.users  # type: ignore[attr-defined]
    splits: datasets.DatasetDict = data.dataset  # type: ignore[attr-defined]

    meta = _item_metadata(source_items)
    new_items = items.extend(
        source_items.item_ids, titles=meta["titles"], years=meta["years"], genres=meta["genres"],
        genre_names=meta["genre_names"],
    )  # fmt: skip
    new_users = users.extend(source_users.user_ids, **_user_features(source_users))
    item_map = item_token_map(source_items, new_items)
    user_map = user_index_map(source_users, new_users)

    remapped = datasets.DatasetDict(
        {split: remap_dataset(ds, item_map, user_map, desc=f"align {split}") for split, ds in splits.items()}
    )
    report = AlignmentReport(
        pretrained_items=items.num_items,
        new_item_ids=new_items.item_ids[items.num_items :].tolist(),
        pretrained_users=users.num_users,
        new_user_ids=new_users.user_ids[users.num_users :].tolist(),
    )
    for split, ds in remapped.items():
        columns = ds.with_format("numpy", columns=["target", "user_index"])[:] if len(ds) else None
        report.rows[split] = len(ds)
        report.rows_new_target[split] = 0 if columns is None else int((columns["target"] > items.num_items).sum())
        report.rows_new_user[split] = 0 if columns is None else int((columns["user_index"] > users.num_users).sum())
    aligned = dataclasses.replace(data, dataset=remapped, items=new_items, users=new_users)  # type: ignore[type-var]
    return aligned, new_items, new_users, report


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------
def pretrained_feature_fields(
    model_name_or_path: str | os.PathLike[str], revision: str | None = None
) -> tuple[list[FeatureField] | None, list[FeatureField] | None]:
    """The item and user feature fields saved beside a pretrained model (``item_fields.json`` /
    ``user_fields.json``, local folder or Hub repo, read by the bundle's `load_run_fields` as serving reads them);
    None for a table the model has no fields of."""
    found = load_run_fields(model_name_or_path, revision=revision)
    item, user = (
        [FeatureField.from_dict(d) for d in found[side]] if found[side] is not None else None
        for side in ("item", "user")
    )
    return item, user


def feature_rows(
    features: EncodedFeatures | None, fields: list[FeatureField] | None, row_map: np.ndarray, rows: int
) -> dict[str, np.ndarray] | None:
    """New data's feature matrices in a pretrained model's terms: each field's matrix re-encoded with the
    model's field of that name (:meth:`FeatureField.translate`) and its rows moved by ``row_map`` (source row ->
    extended row, e.g. :func:`item_token_map`) into a ``rows``-row matrix. None without features or fields;
    a field the new data lacks stays all 0 (unknown)."""
    if features is None or not fields:
        return None
    out = {}
    for field_ in fields:
        matrix = np.zeros((rows, field_.max_values), dtype=np.int32)
        source = features.fields.get(field_.name)
        if source is not None:
            matrix[row_map] = source.translate(features.matrices[field_.name], field_)
        out[field_.name] = matrix
    return out


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that will be trained (``requires_grad``)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def prepare_model_for_finetuning(
    model: RecTransformerForNextItemPrediction,
    items: ItemVocab,
    users: UserVocab,
    freeze_transformer: bool = False,
    item_features: Mapping[str, np.ndarray] | None = None,
    user_features: Mapping[str, np.ndarray] | None = None,
) -> RecTransformerForNextItemPrediction:
    """Grow a pretrained model to extended vocabularies and choose what fine-tuning trains (in place).

    * Item table (and untied output embeddings), popularity buffer: resized with ``resize_item_embeddings``
      (old rows bit-identical, new movies at the mean embedding so they are neither ignored nor over-recommended
      before training). ``item_features`` (:func:`feature_rows`: each field's matrix for the extended vocabulary,
      in the model's own fields) gives the new items their feature values; the old rows are kept.
    * User table: ``resize_user_embeddings`` (new users start as the unknown user, i.e. served like a stranger);
      ``user_features`` gives the new users their feature values in the same way. Values the pretrained fields
      do not know are 0 (unknown): the fields' tables do not grow.
    * ``freeze_transformer``: only the item embedding table, the output embeddings when they are not tied to it,
      the per-item output bias (``output_item_bias``) and the user id table keep ``requires_grad``; positions,
      blocks, norms, projections and feature-field tables are frozen. Why: with little new data, adapting the embeddings of new (and drifting) movies and users is
      what is needed, and keeping the sequence model fixed prevents forgetting. Without it everything trains.

    Before any training step the grown model scores old movies exactly as before (same logits, same top-k for
    histories of old movies, up to a new movie entering the top-k at the mean score).
    """
    if not isinstance(items, ItemVocab) or not isinstance(users, UserVocab):
        raise TypeError("prepare_model_for_finetuning: items and users must be an ItemVocab and a UserVocab")
    config = model.config
    if items.num_items < config.num_items:
        raise ValueError(
            f"the item vocabulary has {items.num_items} movies but the model already has {config.num_items}: "
            "pass the pretrained vocabulary extended with align_to_pretrained / ItemVocab.extend, never a smaller one"
        )
    uses_users = config.user_conditioning != "none"
    if uses_users and users.num_users < config.num_users:
        raise ValueError(
            f"the user vocabulary has {users.num_users} users but the model already has {config.num_users}: "
            "pass the pretrained vocabulary extended with UserVocab.extend"
        )
    old_vocab, old_users = config.vocab_size, config.num_users + 1
    if items.num_items > config.num_items:
        model.resize_item_embeddings(items.num_items)
        if config.item_feature_fields and item_features is not None:
            model.set_item_features(item_features, slice(old_vocab, None))
    if users.num_users > config.num_users:
        model.resize_user_embeddings(users.num_users)
        if uses_users and config.user_feature_fields and user_features is not None:
            model.set_user_features(user_features, slice(old_users, None))

    trainable: set[int] = set()
    if freeze_transformer:
        trainable.add(id(model.rec_transformer.embeddings.item_embeddings.weight))
        trainable.add(id(model.output_embeddings.weight))  # the same tensor when tied
        if model.config.output_item_bias:
            trainable.add(id(model.output_bias))
        if uses_users:
            trainable.add(id(model.rec_transformer.user.user_embeddings.weight))
    for param in model.parameters():
        param.requires_grad = not freeze_transformer or id(param) in trainable
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "fine-tuning %d of %d parameters (%s); items %d -> %d, users -> %d",
        n_train, sum(p.numel() for p in model.parameters()),
        "embeddings only" if freeze_transformer else "all", old_vocab - 1, items.num_items, users.num_users,
    )  # fmt: skip
    return model
