"""Dataset spec files: the data options of a run, written once in a small JSON or YAML file, and the presets that
ship with the package (`hf_recsys/presets/*.json`: the MovieLens releases, the SASRec-format ML-1M, Amazon Toys and
LastFM as prepared by S3-Rec, and the Amazon Reviews 2023 sample).

A spec is a mapping of data option names (those of `hf-recsys train`: `data`, `data_format`, `item_column`,
`time_column`, `min_rating`, `item_table`, ...) to values, plus an optional `description`. A relative path option
(`PATH_OPTIONS`: `data`, `item_table`, `user_table`) is read from the spec file's folder, or for a preset from the
local data folder (`data_dir` / ``$HF_RECSYS_DATA_DIR``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .input_errors import InputDataError

#: The presets folder (package data, in every install).
PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
SPEC_SUFFIXES = (".json", ".yaml", ".yml")
DATA_DIR_ENV = "HF_RECSYS_DATA_DIR"
#: The options that name local files: a relative path is resolved from the spec file's folder or the data folder.
PATH_OPTIONS = ("data", "item_table", "user_table")


class DatasetSpecError(InputDataError):
    """A dataset spec that cannot be read: not found, not JSON/YAML, not a mapping, or a file it names is missing."""


def preset_names() -> list[str]:
    """The presets that ship with the package, by name."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def _parse(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetSpecError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    else:
        import yaml

        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise DatasetSpecError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(value, dict):
        raise DatasetSpecError(f"{path}: a dataset spec is a mapping of data options, got {type(value).__name__}")
    return value


def _is_local_relative(value: str) -> bool:
    return "://" not in value and not Path(value).is_absolute()


def read_spec(name_or_path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The data options of a spec file or preset, with the relative paths of `PATH_OPTIONS` made absolute.

    `name_or_path` is a JSON/YAML file, or the name of a preset (`preset_names()`). A preset's relative `data`
    (`item_table`, `user_table`) path is looked up in `data_dir`, else ``$HF_RECSYS_DATA_DIR``; a spec file's,
    next to the spec file. A path that does not exist is an error naming the spec, the option and the file.
    """
    path = Path(name_or_path)
    preset = path.suffix not in SPEC_SUFFIXES and not path.exists()
    if preset:
        path = PRESETS_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise DatasetSpecError(
                f"dataset spec {str(name_or_path)!r}: no such file and no such preset (presets: {', '.join(preset_names())})"
            )
    elif not path.is_file():
        raise DatasetSpecError(f"dataset spec {path}: file not found")
    spec = _parse(path)
    spec.pop("description", None)
    for option in PATH_OPTIONS:
        value = spec.get(option)
        if isinstance(value, str) and _is_local_relative(value):
            spec[option] = str(_resolve(value, option, name_or_path, path, preset, data_dir))
    return spec


def _resolve(
    value: str, option: str, name_or_path: str | os.PathLike[str], path: Path, preset: bool, data_dir: Any
) -> Path:
    """A spec's relative path: from the data folder for a preset, else from the spec file's folder."""
    if preset:
        root = data_dir or os.environ.get(DATA_DIR_ENV)
        if not root:
            raise DatasetSpecError(
                f"preset {str(name_or_path)!r} reads {value} from a local data folder: set {DATA_DIR_ENV} (or "
                "--data_dir) to the folder that holds it"
            )
        base = Path(root)
    else:
        base = path.parent
    resolved = base / value
    if not resolved.exists():
        what = "data file" if option == "data" else f"{option} file"
        raise DatasetSpecError(f"dataset spec {path}: its {what} {resolved} was not found")
    return resolved
