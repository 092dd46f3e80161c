"""Vocabularies (movie id <-> token, user id <-> index). They live in `hf_recsys.modeling.vocab` because they
are the model's "tokenizer" and travel with every saved model for `trust_remote_code` loading; this module
re-exports them for the data pipeline."""

from ..modeling.vocab import (
    ITEM_VOCAB_FILE,
    USER_VOCAB_FILE,
    ItemVocab,
    UnknownItemError,
    UserVocab,
    atomic_write_json,
    load_vocabs,
    save_vocabs,
)

__all__ = [
    "ITEM_VOCAB_FILE",
    "USER_VOCAB_FILE",
    "ItemVocab",
    "UnknownItemError",
    "UserVocab",
    "atomic_write_json",
    "load_vocabs",
    "save_vocabs",
]
