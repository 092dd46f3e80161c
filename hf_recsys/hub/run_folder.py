"""The run folder as the Hub receives it: its file names, atomic writes, and the completeness check that
names every missing file before anything is uploaded."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers.utils import CONFIG_NAME, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, logging

from ..modeling.fields import ITEM_FIELDS_FILE, USER_FIELDS_FILE
from ..modeling.vocab_ids import ITEM_VOCAB_FILE, USER_VOCAB_FILE
from ..run_layout import RESULTS_FILE

logger = logging.get_logger(__name__)

WEIGHTS_FILE = SAFE_WEIGHTS_NAME
WEIGHTS_INDEX_FILE = SAFE_WEIGHTS_INDEX_NAME
DATA_FILES = (CONFIG_NAME, ITEM_VOCAB_FILE, USER_VOCAB_FILE, RESULTS_FILE)
#: Pushed when the run has them: the feature fields that encode new items and users (models with feature fields).
OPTIONAL_FILES = (ITEM_FIELDS_FILE, USER_FIELDS_FILE)
_RELATIVE_IMPORT_RE = re.compile(r"^\s*from\s+\.([A-Za-z_][\w.]*)\s+import\s", re.MULTILINE)


# --------------------------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder + rename, so a reader (or a crash)
    never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON object, naming the file and its role in any error."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({path}): {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{what} must hold a JSON object: {path}")
    return data


def _weights_files(run_dir: Path) -> list[str]:
    """Weight files of the run: ``model.safetensors`` or a sharded index plus its shards."""
    if (run_dir / WEIGHTS_FILE).is_file():
        return [WEIGHTS_FILE]
    index = run_dir / WEIGHTS_INDEX_FILE
    if index.is_file():
        shards = sorted(set(_read_json(index, "weights index").get("weight_map", {}).values()))
        return [WEIGHTS_INDEX_FILE, *shards]
    return []


def _code_files(config: Mapping[str, Any]) -> set[str]:
    """Python files named by ``auto_map`` (and ``custom_pipelines``) that must sit next to config.json.

    References to code in another repository (``"repo--module.Class"``) need no local file.
    """
    refs: list[str] = []
    for value in (config.get("auto_map") or {}).values():
        refs.extend(v for v in (value if isinstance(value, list | tuple) else [value]) if isinstance(v, str))
    for task in (config.get("custom_pipelines") or {}).values():
        if isinstance(task, Mapping) and isinstance(task.get("impl"), str):
            refs.append(task["impl"])
    return {ref.rsplit(".", 1)[0].replace(".", "/") + ".py" for ref in refs if "--" not in ref and "." in ref}


# --------------------------------------------------------------------------------------------------------------------
# run folder checks
# --------------------------------------------------------------------------------------------------------------------
def upload_files(run_dir: str | os.PathLike[str]) -> list[str]:
    """Check that ``run_dir`` is a complete run and return the files (relative paths) to upload, sorted.

    Complete = config.json with an ``auto_map``, the weights, every code file that ``auto_map`` /
    ``custom_pipelines`` name and every file their relative imports need, ``item_vocab.json``, ``user_vocab.json`` and
    ``results.json``. All missing files are named in one ``FileNotFoundError`` so a user fixes the folder in one go.
    The card, the curve and the handler are not listed: `push_to_hub` renders or adds them.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    missing = [name for name in DATA_FILES if not (run_dir / name).is_file()]
    weights = _weights_files(run_dir)
    if not weights:
        missing.append(WEIGHTS_FILE)
    else:
        missing.extend(name for name in weights if not (run_dir / name).is_file())
    code: set[str] = set()
    if (run_dir / "config.json").is_file():
        config = _read_json(run_dir / "config.json", "config.json")
        if not config.get("auto_map"):
            raise ValueError(
                f"{run_dir / 'config.json'} has no auto_map: the model could not be loaded with trust_remote_code. "
                "Save the model with hf-recsys (save_pretrained registers the auto classes)."
            )
        code = _code_files(config)
    code |= {p.name for p in run_dir.glob("*.py") if p.is_file()}
    # Relative imports of the code files (e.g. modeling -> losses, vocab) must travel too, or loading fails remotely.
    pending = sorted(code)
    while pending:
        path = run_dir / pending.pop()
        if not path.is_file():
            continue
        for module in _RELATIVE_IMPORT_RE.findall(path.read_text(encoding="utf-8")):
            name = module.replace(".", "/") + ".py"
            if name not in code:
                code.add(name)
                pending.append(name)
    missing.extend(sorted(name for name in code if not (run_dir / name).is_file()))
    if missing:
        raise FileNotFoundError(
            f"run folder {run_dir} is incomplete, missing: {', '.join(missing)}. "
            "A run folder holds config.json (with auto_map), model.safetensors, the model code files, "
            "item_vocab.json, user_vocab.json and results.json (see docs/INTERFACES.md)."
        )
    optional = {name for name in OPTIONAL_FILES if (run_dir / name).is_file()}
    return sorted({*DATA_FILES, *optional, *weights, *code})
