"""Data: MovieLens ``datasets`` builder, split protocols and the item/user vocabularies.

Public API (see ``docs/INTERFACES.md``)::

    from hf_recsys.data import load_movielens
    data = load_movielens("ml-1m")          # DatasetDict train/validation/test + vocabularies
    data.dataset["test"][0]                  # {"user_id", "user_index", "input_ids", "target", "timestamp"}
    data.items.title(data.dataset["test"][0]["target"])
"""

from .movielens import (
    CONFIG_NAMES,
    DATA_DIR_ENV,
    PROTOCOLS,
    ROW_FEATURES,
    ChecksumMismatchError,
    DataFormatError,
    MissingDataError,
    MovieLensBuilder,
    MovieLensConfig,
    MovieLensData,
    load_movielens,
    push_dataset_to_hub,
)
from .vocab import ItemVocab, UnknownItemError, UserVocab, load_vocabs, save_vocabs

__all__ = [
    "CONFIG_NAMES",
    "DATA_DIR_ENV",
    "PROTOCOLS",
    "ROW_FEATURES",
    "ChecksumMismatchError",
    "DataFormatError",
    "ItemVocab",
    "MissingDataError",
    "MovieLensBuilder",
    "MovieLensConfig",
    "MovieLensData",
    "UnknownItemError",
    "UserVocab",
    "load_movielens",
    "load_vocabs",
    "push_dataset_to_hub",
    "save_vocabs",
]
