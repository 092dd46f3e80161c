"""The model card's text: formatting of metrics, sizes and durations, and the sentences and tables that
`card._card_context` assembles from ``results.json`` and ``config.json``."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import EvalResult

GROUPLENS_URL = "https://grouplens.org/datasets/movielens/"
_README_BASE = "https://files.grouplens.org/datasets/movielens/"
# Canonical dataset key -> (pretty name, README with the usage licence).
_DATASETS: dict[str, tuple[str, str]] = {
    "ml-100k": ("MovieLens 100K", _README_BASE + "ml-100k-README.txt"),
    "ml-1m": ("MovieLens 1M", _README_BASE + "ml-1m-README.txt"),
    "ml-10m": ("MovieLens 10M", _README_BASE + "ml-10m-README.html"),
    "ml-20m": ("MovieLens 20M", _README_BASE + "ml-20m-README.html"),
    "ml-25m": ("MovieLens 25M", _README_BASE + "ml-25m-README.html"),
    "ml-32m": ("MovieLens 32M", _README_BASE + "ml-32m-README.html"),
    "ml-latest-small": ("MovieLens Latest Small", _README_BASE + "ml-latest-small-README.html"),
}
_METRIC_RE = re.compile(r"^(ndcg|hr|mrr|recall|precision|map|coverage)@(\d+)$")
_METRIC_ORDER = ("ndcg", "hr", "mrr", "recall", "precision", "map", "coverage")
_METRIC_LABELS = {"ndcg": "NDCG", "hr": "HR", "mrr": "MRR", "recall": "Recall", "precision": "Precision", "map": "MAP"}
_SPLITS = (("validation", "Validation"), ("test", "Test"))
_PREFERRED_HISTORY = (1, 260, 1196)  # Toy Story, Star Wars IV and V: recognisable in every MovieLens version
#: RecTransformerConfig fields that the card's configuration table leaves out, besides the generic ones every
#: transformers config declares (``transformers_version``, ``architectures``, ``dtype``, ...; see `_config_keys`):
#: ``pad_token_id`` is always 0.
_CARD_EXCLUDED_CONFIG_FIELDS = frozenset({"pad_token_id"})
#: How the card names each ``variant`` of the data description that results.json records under ``"data"``.
_DATA_VARIANTS = {
    "sasrec-benchmark": "the SASRec-format benchmark file",
    "official": "the official GroupLens file",
    "sequences": "a user-item sequences file",
}


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number, else None (metrics may be missing or NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt_metric(value: Any) -> str:
    number = _finite(value)
    return "—" if number is None else f"{number:.4f}"


def _fmt_value(value: Any) -> str:
    """A training/config value as table text (markdown-safe, compact floats)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|")


def _fields_text(recorded: dict[str, Any] | None, config_fields: list[dict[str, Any]]) -> str:
    """The feature fields as the card lists them: "genres (multi, 18 values), decade (categorical, 9 values)"."""
    parts = []
    for f in config_fields:
        kind = (recorded or {}).get(f["name"], {}).get("kind")
        parts.append(f"{f['name']} ({kind + ', ' if kind else ''}{f['size'] - 1} values)")
    return ", ".join(parts)


def _fmt_bytes(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _fmt_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _metric_key(name: str) -> tuple[int, int]:
    family, k = _METRIC_RE.match(name).groups()  # type: ignore[union-attr]
    return _METRIC_ORDER.index(family), int(k)


def _metric_label(name: str) -> str:
    family, k = _METRIC_RE.match(name).groups()  # type: ignore[union-attr]
    return f"{_METRIC_LABELS[family]}@{k}" if family in _METRIC_LABELS else f"{family.capitalize()}@{k}"


def _dataset_info(name: str) -> tuple[str, str, str]:
    """(canonical key, pretty name, README url) of a MovieLens dataset name as written in results.json."""
    key = name.strip().lower().replace("_", "-").replace("movielens-", "ml-").replace("movielens", "ml-")
    key = key.replace("ml--", "ml-")
    if key in _DATASETS:
        return (key, *_DATASETS[key])
    return name, name, GROUPLENS_URL


# --------------------------------------------------------------------------------------------------------------------
# model card
# --------------------------------------------------------------------------------------------------------------------


@functools.cache
def _config_keys(config_class: type | None = None) -> tuple[str, ...]:
    """The model-configuration keys the card shows, in the config class's own field order.

    Derived from the dataclass fields of ``config_class`` (default `RecTransformerConfig`), so a new config field
    appears in every card without a second list to keep: all fields except those every transformers
    ``PreTrainedConfig`` declares (bookkeeping such as ``transformers_version`` or ``dtype``) and
    ``_CARD_EXCLUDED_CONFIG_FIELDS``.
    """
    from transformers import PreTrainedConfig

    if config_class is None:
        from ..modeling import RecTransformerConfig

        config_class = RecTransformerConfig
    generic = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    return tuple(
        f.name
        for f in dataclasses.fields(config_class)
        if f.name not in generic and f.name not in _CARD_EXCLUDED_CONFIG_FIELDS
    )


def _source_url() -> str | None:
    """The source repository of hf-recsys as its package metadata states it (``[project.urls]``), if it does."""
    from importlib import metadata

    try:
        meta = metadata.metadata("hf-recsys")
    except metadata.PackageNotFoundError:
        return None
    urls: dict[str, str] = {}
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        urls[label.strip().lower()] = url.strip()
    for label in ("source", "repository", "source code", "code", "homepage"):
        if urls.get(label, "").startswith(("https://", "http://")):
            return urls[label]
    home = meta.get("Home-page") or ""
    return home if home.startswith(("https://", "http://")) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _data_sentence(data: Mapping[str, Any], label: str) -> str:
    """Which data file a run read, e.g. "Trained on MovieLens 1M, the SASRec-format benchmark file `ml-1m.txt`
    (3,416 items, 6,040 users, 999,611 interactions)." followed by the file's own description."""
    source = str(data.get("source_file") or "")
    variant = str(data.get("variant") or "")
    text = f"Trained on `{label}`" if label == source else f"Trained on {label}"
    if variant:
        text += ", " + _DATA_VARIANTS.get(variant, f"variant `{variant}`")
    if source and source != label:
        text += f" `{source}`"
    counts = [
        f"{number:,} {noun}"
        for key, noun in (("num_items", "items"), ("num_users", "users"), ("num_interactions", "interactions"))
        if (number := _int_or_none(data.get(key))) is not None
    ]
    if counts:
        text += f" ({', '.join(counts)})"
    description = str(data.get("description") or "").strip().rstrip(".")
    return text + "." + (f" *About this file*: {description}." if description else "")


def _ids_of(vocab: dict[str, Any], key: str) -> list[int | str]:
    """The ids of a vocabulary file in their type: ints (every file without ``"id_type": "str"``) or strings."""
    values = vocab.get(key) or []
    return [str(v) for v in values] if vocab.get("id_type") == "str" else [int(v) for v in values]


def _example_history(item_ids: Sequence[int | str]) -> list[int | str]:
    known = set(item_ids)
    if all(m in known for m in _PREFERRED_HISTORY):
        return list(_PREFERRED_HISTORY)
    return list(item_ids[:3])


def _protocol_paragraph(protocol: str, num_items: int, num_users: int, exclude_seen: bool, item: str = "item") -> str:
    seen = (
        f"{item}s already in the user's history are excluded from the ranking"
        if exclude_seen
        else f"{item}s already in the user's history stay in the ranking"
    )
    ranking = (
        f"For every user the model ranks the **whole catalogue** ({num_items} {item}s, no sampled negatives) and {seen}. "
        f"NDCG@k, HR@k (hit rate: the target is in the top k) and MRR@k are averaged over **all {num_users} users**; "
        "the best epoch is chosen on validation NDCG@10 and the test split is evaluated once, at the end."
    )
    if protocol == "leave-one-out":
        return (
            "Leave-one-out, the protocol of SASRec and its successors: each user's interactions are sorted by time, the "
            "last one is the test target, the second-to-last the validation target, and all earlier ones form the "
            "training history (the validation target joins the history when testing). " + ranking
        )
    return f"Protocol `{protocol}` (see the hf-recsys documentation for its splits). " + ranking


def _results_table(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and metric names of the results table: one row per metric, model vs baselines vs literature."""
    metrics = results.get("metrics") or {}
    popularity = (results.get("baselines") or {}).get("popularity") or {}
    published = results.get("published") or {}
    names = {n for split, _ in _SPLITS for n in (metrics.get(split) or {}) if _METRIC_RE.match(n)}
    names = sorted(names, key=_metric_key)
    header = ["Metric", *(label for _, label in _SPLITS)]
    columns: list[Mapping[str, Any]] = [metrics.get(split) or {} for split, _ in _SPLITS]
    for split, label in _SPLITS:
        if popularity.get(split):
            header.append(f"Popularity ({label.lower()})")
            columns.append(popularity[split])
    for name, values in published.items():
        header.append(f"Published: {name} (test)")
        columns.append(values or {})
    rows = [[_metric_label(n), *(_fmt_metric(col.get(n)) for col in columns)] for n in names]
    return header, rows, names


def _eval_results(
    results: Mapping[str, Any],
    dataset_key: str,
    dataset_label: str,
    dataset_args: dict[str, Any] | None = None,
) -> list[EvalResult]:
    """``model-index`` entries (one per split and ranking metric) so the Hub shows the measured numbers; the data
    file's variant and name, when known, travel as ``dataset.args``."""
    out: list[EvalResult] = []
    protocol = str(results.get("protocol") or "leave-one-out")
    for split, _ in _SPLITS:
        split_metrics = (results.get("metrics") or {}).get(split) or {}
        for name in sorted((n for n in split_metrics if _METRIC_RE.match(n)), key=_metric_key):
            value = _finite(split_metrics[name])
            if value is None:
                continue
            out.append(
                EvalResult(
                    task_type="recommendation",
                    task_name="Next-item recommendation",
                    dataset_type=dataset_key,
                    dataset_name=dataset_label,
                    dataset_config=protocol,
                    dataset_split=split,
                    dataset_args=dataset_args,
                    metric_type=name,
                    metric_name=f"{_metric_label(name)} ({split})",
                    metric_value=round(value, 4),
                )
            )
    return out


def _published_data_note(data: Mapping[str, Any]) -> str:
    """Whether the literature's numbers (measured on the SASRec-format benchmark file) compare with this run's file."""
    variant = str(data.get("variant") or "")
    if not variant:
        return ""
    if variant == "sasrec-benchmark":
        return " They were measured on the same SASRec-format benchmark file."
    used = _DATA_VARIANTS.get(variant, f"variant `{variant}`")
    source = f" `{data['source_file']}`" if data.get("source_file") else ""
    return (
        f" They were measured on the SASRec-format benchmark file, not on {used}{source} that this run used: the "
        "numbers are not directly comparable."
    )
