"""Data: MovieLens ``datasets`` builder, split protocols and the item/user vocabularies.

Public API (see ``docs/INTERFACES.md``)::

    from hf_recsys.data import load_movielens
    data = load_movielens("ml-1m")          # DatasetDict train/validation/test + vocabularies
    data.dataset["test"][0]                  # {"user_id", "user_index", "input_ids", "target", "timestamp"}
    data.items.title(data.dataset["test"][0]["target"])
    data.describe()                          # which file: {"variant": "sasrec-benchmark", "num_items": 3416, ...}

    from hf_recsys.data import load_interactions
    data = load_interactions("log.csv", item_column="parent_asin", time_column="timestamp")  # any interaction log

Without ``data_dir``/``$HF_RECSYS_DATA_DIR`` the official GroupLens archive is downloaded (MD5-checked); see
``hf_recsys.data.movielens`` for ``HF_RECSYS_GROUPLENS_URL`` / ``HF_RECSYS_GROUPLENS_MD5``.
"""

from .interactions import InteractionData, InteractionsBuilder, load_interactions
from .movielens import (
    CONFIG_NAMES,
    DATA_DIR_ENV,
    GROUPLENS_MD5_ENV,
    GROUPLENS_URL_ENV,
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
    "GROUPLENS_MD5_ENV",
    "GROUPLENS_URL_ENV",
    "PROTOCOLS",
    "ROW_FEATURES",
    "ChecksumMismatchError",
    "DataFormatError",
    "InteractionData",
    "InteractionsBuilder",
    "ItemVocab",
    "MissingDataError",
    "MovieLensBuilder",
    "MovieLensConfig",
    "MovieLensData",
    "UnknownItemError",
    "UserVocab",
    "load_interactions",
    "load_movielens",
    "load_vocabs",
    "push_dataset_to_hub",
    "save_vocabs",
]
