"""Reading what inference needs besides the weights from a model folder or a Hub repo: the vocabularies and the
optional feature-field files. Part of the self-contained modeling bundle (huggingface_hub + stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fields import ITEM_FIELDS_FILE, USER_FIELDS_FILE, read_fields
from .vocab import ITEM_VOCAB_FILE, USER_VOCAB_FILE, ItemVocab, UserVocab

__all__ = ["load_run_fields", "load_vocabularies"]


def _commit_of(cached_file: str) -> str | None:
    """Commit hash of a file in the Hub cache (`.../snapshots/<commit>/<file>`), None elsewhere."""
    parent = Path(cached_file).parent
    return parent.name if parent.parent.name == "snapshots" else None


def _is_local(path_or_repo_id: str | os.PathLike[str]) -> bool:
    path = Path(path_or_repo_id)
    if path.is_dir():
        return True
    if path.exists() or str(path_or_repo_id).startswith((".", "/", "~")):
        raise FileNotFoundError(f"{path_or_repo_id} is not a model folder")
    return False


def load_vocabularies(
    path_or_repo_id: str | os.PathLike[str],
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> tuple[ItemVocab, UserVocab, str | None]:
    """Read `item_vocab.json` and `user_vocab.json` from a model folder or a Hub repo.

    Returns the two vocabularies and, for a Hub repo, the commit they came from (so the weights can be loaded
    from the very same commit); None for a local folder. Raises `FileNotFoundError` naming a missing file.
    """
    path = Path(path_or_repo_id)
    if _is_local(path_or_repo_id):
        missing = [name for name in (ITEM_VOCAB_FILE, USER_VOCAB_FILE) if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{path} has no {' or '.join(missing)}: a model folder needs the vocabularies written by "
                "save_vocabs() next to the weights"
            )
        return ItemVocab.load(path / ITEM_VOCAB_FILE), UserVocab.load(path / USER_VOCAB_FILE), None

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    paths = {}
    for name in (ITEM_VOCAB_FILE, USER_VOCAB_FILE):
        try:
            paths[name] = hf_hub_download(
                str(path_or_repo_id),
                name,
                revision=revision,
                token=token,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
            )
        except EntryNotFoundError as error:
            raise FileNotFoundError(
                f"{path_or_repo_id} has no {name}: the repo must hold the vocabularies next to the weights"
            ) from error
        revision = _commit_of(paths[name]) or revision  # the second file comes from the same commit
    return (
        ItemVocab.load(paths[ITEM_VOCAB_FILE]),
        UserVocab.load(paths[USER_VOCAB_FILE]),
        _commit_of(paths[ITEM_VOCAB_FILE]),
    )


def load_run_fields(
    path_or_repo_id: str | os.PathLike[str],
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> dict[str, list[dict[str, Any]] | None]:
    """`{"item": fields, "user": fields}` from `item_fields.json` / `user_fields.json`; None for a missing file
    (runs without feature fields have none)."""
    out: dict[str, list[dict[str, Any]] | None] = {}
    local = _is_local(path_or_repo_id)
    for side, name in (("item", ITEM_FIELDS_FILE), ("user", USER_FIELDS_FILE)):
        if local:
            file = Path(path_or_repo_id) / name
            out[side] = read_fields(file) if file.is_file() else None
            continue
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            found = hf_hub_download(
                str(path_or_repo_id),
                name,
                revision=revision,
                token=token,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
            )
        except EntryNotFoundError:  # an optional file: not in the repo (or, offline, not in the cache) means none;
            found = None  # a network or access error is not "no fields" and is raised
        out[side] = read_fields(found) if found else None
    return out
