"""Markdown tables generated from the recorded benchmark results (``benchmarks/results/*.json``).

The README's results table and the tables of ``benchmarks/*.md`` are never typed by hand: each sits between two
markers, ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, and ``benchmarks/render_tables.py`` replaces what is
between them with ``TABLES[NAME](results_dir)``. ``tests/test_readme.py`` fails when a table is stale.

Pure Python and ``json``: no torch, transformers or datasets, so rendering is instant and the package can be imported
anywhere (``hf-recsys bench`` prints the same table at the end of a run).

Row format (``hf-recsys bench``, one dict per trained or scored model, appended to ``ml-1m.json``)::

    {"model": "rec-transformer", "dataset": "ml-1m", "protocol": "leave-one-out",
     "valid_ndcg@10": ..., "test_ndcg@10": ..., "test_hr@10": ..., "test_mrr@10": ..., ...,
     "train_seconds": 1813.9, "epochs": 46.0, "git_commit": "99dd1da", "date": "2026-11-29T09:51:06+00:00",
     "data_variant": "sasrec-benchmark"}   # optional, see data_variant

The table of a dataset and protocol shows the latest row of each model (the last one in file order), then the
published reference figures where they apply.

The package (``format`` cells and lines, ``rows`` row selection, ``ml1m`` and ``datasets`` tables) is loaded by
file path by ``benchmarks/render_tables.py`` and the tests, so its modules import one another only relatively.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .datasets import (
    PUBLISHED_S3REC,
    SUITE,
    SuiteDataset,
    datasets_table,
    recipe_ablation_table,
    suite_rows,
    suite_seeds_table,
    suite_table,
)
from .format import MODEL_ORDER as MODEL_ORDER  # the table order, re-exported as before the split
from .ml1m import (
    PUBLISHED_ML1M,
    PUBLISHED_ML1M_SEED_WINDOWS,
    finetune_table,
    history_table,
    results_table,
    seed_windows_table,
    speed_table,
)
from .rows import DEFAULT_VARIANT, data_variant, latest_rows

__all__ = [
    "DEFAULT_VARIANT",
    "PUBLISHED_ML1M",
    "PUBLISHED_ML1M_SEED_WINDOWS",
    "PUBLISHED_S3REC",
    "SUITE",
    "TABLES",
    "SuiteDataset",
    "data_variant",
    "datasets_table",
    "default_results_dir",
    "finetune_table",
    "history_table",
    "latest_rows",
    "load_rows",
    "recipe_ablation_table",
    "render_markers",
    "results_table",
    "seed_windows_table",
    "speed_table",
    "suite_rows",
    "suite_seeds_table",
    "suite_table",
]


def default_results_dir() -> Path:
    """``benchmarks/results`` of the source tree this package sits in."""
    return Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def load_rows(results_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every benchmark row of every ``*.json`` in ``results_dir`` that holds a list of rows, in file order.

    Files holding anything else (e.g. ``finetune_example.json``, one experiment's dict) are skipped.
    """
    folder = Path(results_dir) if results_dir is not None else default_results_dir()
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list) and all(isinstance(r, dict) and "model" in r for r in data):
            rows.extend(data)
    return rows


def _read_json(results_dir: Path, name: str) -> Any:
    return json.loads((results_dir / name).read_text(encoding="utf-8"))


#: Marker name -> renderer of the table it holds, given the results folder.
TABLES: dict[str, Callable[[Path], str]] = {
    "results-table": lambda d: results_table(load_rows(d)),
    "recipe-ablation": lambda d: recipe_ablation_table(_read_json(d, "recipe_ablation.json")),
    "ml-1m-seed-windows": lambda d: seed_windows_table(load_rows(d)),
    "ml-1m-history": lambda d: history_table(load_rows(d)),
    "ml-1m-speed": lambda d: speed_table(load_rows(d)),
    "finetune-example": lambda d: finetune_table(_read_json(d, "finetune_example.json")),
    "datasets-table": lambda d: datasets_table(load_rows(d)),
    "suite-table": lambda d: suite_table(load_rows(d)),
    "suite-seeds": lambda d: suite_seeds_table(load_rows(d)),
}

_MARKER = re.compile(r"(<!-- ([a-z0-9-]+):start -->\n)(.*?)(<!-- \2:end -->)", re.DOTALL)


def render_markers(text: str, results_dir: str | Path | None = None) -> str:
    """``text`` with every marked table replaced by its freshly rendered version.

    Raises:
        ValueError: a marker names no known table (see :data:`TABLES`), or a start marker has no end.
    """
    folder = Path(results_dir) if results_dir is not None else default_results_dir()
    cache: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise ValueError(f"unknown table marker {name!r}; known tables: {sorted(TABLES)}")
        if name not in cache:
            cache[name] = TABLES[name](folder)
        return f"{match.group(1)}{cache[name]}\n{match.group(4)}"

    rendered = _MARKER.sub(replace, text)
    starts = re.findall(r"<!-- ([a-z0-9-]+):start -->", text)
    ends = set(re.findall(r"<!-- ([a-z0-9-]+):end -->", text))
    missing = [name for name in starts if name not in ends]
    if missing:
        raise ValueError(f"table marker(s) {missing} have no matching '<!-- NAME:end -->'")
    return rendered
