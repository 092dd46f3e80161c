"""The model card of a run folder: everything it shows is computed from ``results.json`` and ``config.json``;
the template (``hf_recsys/templates/model_card_template.md``, package data) only lays it out."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers.utils import logging

from .run_folder import CARD_FILE, CURVE_FILE, HANDLER_FILE, _atomic_write_bytes, _read_json, _weights_files

logger = logging.get_logger(__name__)

#: Folder of the card template and the Inference Endpoints handler: ``hf_recsys/templates/``, package data that every
#: install (wheel, sdist or editable) has.
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE_FILE = "model_card_template.md"
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
def _template_path(template_path: str | os.PathLike[str] | None) -> Path:
    path = Path(template_path) if template_path is not None else TEMPLATE_DIR / TEMPLATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"model card template not found: {path}. hf-recsys ships it as package data (hf_recsys/templates/); "
            "reinstall hf-recsys if it is missing, or pass template_path= to use another template."
        )
    return path


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


def _card_context(run_dir: Path, repo_id: str | None) -> tuple[ModelCardData, dict[str, Any]]:
    """Everything the template shows, computed from the run folder (the template only lays it out)."""
    from .. import __version__

    results = _read_json(run_dir / "results.json", "results.json")
    config = _read_json(run_dir / "config.json", "config.json")
    items = _read_json(run_dir / "item_vocab.json", "item_vocab.json")
    users = _read_json(run_dir / "user_vocab.json", "user_vocab.json")

    # The data file the run read (results.json "data", written since hf-recsys records it); older runs name the
    # data set only.
    data = results.get("data") if isinstance(results.get("data"), Mapping) else {}
    dataset_key, dataset_label, readme_url = _dataset_info(
        str(data.get("name") or results.get("dataset") or "MovieLens")
    )
    is_movielens = dataset_key in _DATASETS
    # the card speaks the data's words: MovieLens catalogues are movies people watch, any other log is items
    item, verb = ("movie", "watch") if is_movielens else ("item", "choose")
    id_label = "MovieLens movie ids" if is_movielens else f"{item} ids as in the training log"
    if data.get("title"):
        dataset_label = str(data["title"])
    dataset_url = str(data.get("url") or "") or (readme_url if is_movielens else None)
    data_licence = str(data.get("license") or "").strip() or None
    variant = str(data.get("variant") or "")
    model = str(results.get("model") or "rec-transformer")
    model_name = repo_id.split("/")[-1] if repo_id else f"{model}-{dataset_key}"
    item_ids = _ids_of(items, "item_ids")
    user_ids = _ids_of(users, "user_ids")
    num_items = int(config.get("num_items") or len(item_ids))
    num_users = int(users.get("num_users") or len(user_ids))
    training = results.get("training") or {}
    header, rows, _ = _results_table(results)
    published = results.get("published") or {}

    notes = [
        f"*Popularity*: the most frequent {item}s of the training data"
        + (", minus those already seen" if training.get("exclude_seen", True) else "")
        + ", the same list for everybody."
        if (results.get("baselines") or {}).get("popularity")
        else "",
        f"*Published*: test-split numbers reported in the literature for {dataset_label} under the same protocol "
        "(full ranking, all users); quoted for reference, not re-run here." + _published_data_note(data)
        if published
        else "",
    ]
    uc = str(config.get("user_conditioning", "none"))
    uc_text = {
        "none": "none: recommendations depend on the history only",
        "add": "user embedding added at every position of the history",
        "prepend": "a user token placed before the history",
        "concat": "user embedding concatenated with the transformer output",
    }.get(uc, uc)
    feature_names = list((users.get("features") or {}).keys())
    fields = results.get("feature_fields") or {}
    if uc != "none" and config.get("user_feature_fields"):
        uc_text += ", plus the user feature fields " + _fields_text(fields.get("user"), config["user_feature_fields"])
    item_features_text = (
        _fields_text(fields.get("item"), config["item_feature_fields"])
        + (", added to each item's input embedding and to its output row" if config.get("item_features_in_output")
           else ", added to each item's input embedding")
        if config.get("item_feature_fields")
        else "none: items are read by id only"
    )  # fmt: skip
    loss = str(config.get("loss_type", "ce"))
    loss_text = {
        "ce": "full softmax cross-entropy over the catalogue",
        "sampled_softmax": f"sampled softmax ({config.get('num_negatives')} shared negatives, logQ correction)",
        "bce": "binary cross-entropy with one random negative per position (original SASRec)",
        "gbce": f"gBCE (gSASRec, t={config.get('gbce_t')}, {config.get('num_negatives')} negatives)",
    }.get(loss, loss)
    if _finite(config.get("label_smoothing")):
        loss_text += f", label smoothing {config['label_smoothing']:g}"
    if (config.get("future_window") or 1) > 1:
        loss_text += f", next {config['future_window']} items as a soft target"
    if config.get("exclude_seen_in_loss"):
        loss_text += ", items already in the history left out of each softmax (as in evaluation)"
    if _finite(config.get("recency_half_life")):
        loss_text += f", target weights halving every {config['recency_half_life']:g} targets back from the end"
    weights_bytes = sum((run_dir / f).stat().st_size for f in _weights_files(run_dir) if (run_dir / f).is_file())
    date = str(results.get("date") or "")
    try:
        year = datetime.fromisoformat(date).year
    except ValueError:
        year = datetime.now(UTC).year
    train_seconds = _finite(results.get("train_seconds"))

    if is_movielens:
        licence = {"license": "other", "license_name": "movielens-usage-license", "license_link": readme_url}
    elif data_licence:
        licence = {"license": "other", "license_name": "dataset-license", "license_link": dataset_url}
    else:
        licence = {}  # unknown terms: no licence claimed in the metadata
    data_args = {k: data[k] for k in ("variant", "source_file") if data.get(k)}
    card_data = ModelCardData(
        library_name="transformers",
        **licence,
        tags=[
            "recommendation",
            "sequential-recommendation",
            *(["movielens"] if is_movielens else []),
            "sasrec",
            "hf-recsys",
            "rec_transformer",
        ],
        model_name=model_name,
        eval_results=_eval_results(results, dataset_key, dataset_label, data_args or None) or None,
    )
    source_url = _source_url()
    context: dict[str, Any] = {
        "title": repo_id or model_name,
        "repo_id": repo_id or f"your-username/{model_name}",
        "package_version": __version__,
        "git_commit": results.get("git_commit") or "",
        "date": date,
        "year": year,
        "dataset_label": dataset_label,
        "dataset_readme_url": readme_url,
        "dataset_url": dataset_url,
        "is_movielens": is_movielens,
        "item": item,
        "verb": verb,
        "id_label": id_label,
        "data_sentence": _data_sentence(data, dataset_label) if data else "",
        "data_file_text": (
            f"`{data['source_file']}`" + (f", {_DATA_VARIANTS.get(variant, variant)}" if variant else "")
            if data.get("source_file")
            else ""
        ),
        "data_licence": data_licence,
        "source_url": source_url,
        "architecture": (config.get("architectures") or ["RecTransformerForNextItemPrediction"])[0],
        "num_layers": config.get("num_hidden_layers"),
        "num_heads": config.get("num_attention_heads"),
        "hidden_size": config.get("hidden_size"),
        "max_len": config.get("max_position_embeddings"),
        "user_conditioning": uc,
        "user_conditioning_text": uc_text,
        "item_features_text": item_features_text,
        "user_features": bool(feature_names and any((users.get("features") or {}).values())),
        "loss_text": loss_text,
        # the settings the data's statistics decided (training/recipe.py), each with its reason
        "recipe_text": "; ".join(
            f"{d['name']} = {d['value']} ({d['reason']})" for d in (results.get("recipe") or {}).get("derived", [])
        ),
        "num_items": num_items,
        "num_users": num_users,
        "weights_size": _fmt_bytes(weights_bytes),
        "empty_history_text": (
            "An empty history is scored from the user token alone."
            if uc == "prepend"
            else f"This model needs at least one {item} in the history; hf-recsys serves empty histories with the "
            f"most popular {item}s."
        ),
        "interaction_text": (
            f'a rating of at least {training["min_rating"]:g} counts as an interaction (a "{verb}")'
            if _finite(training.get("min_rating")) is not None
            else f'every logged event counts as an interaction (a "{verb}")'
        ),
        "protocol_paragraph": _protocol_paragraph(
            str(results.get("protocol") or "leave-one-out"),
            num_items,
            num_users,
            bool(training.get("exclude_seen", True)),
            item,
        ),
        "results_intro": (
            f"Full-ranking accuracy on {dataset_label} (higher is better), {num_users} users per split."
            if rows
            else "No evaluation results were recorded for this run."
        ),
        "results_header": header,
        "results_rows": rows,
        "results_notes": "\n\n".join(n for n in notes if n),
        "has_curve": (run_dir / CURVE_FILE).is_file(),
        "curve_file": CURVE_FILE,
        "train_seconds": train_seconds,
        "train_time": _fmt_duration(train_seconds) if train_seconds is not None else "",
        "training_rows": [(k, _fmt_value(v)) for k, v in training.items() if v is not None],
        "config_rows": [(k, _fmt_value(config[k])) for k in _config_keys() if k in config],
        "example_history": _example_history(item_ids),
        "example_user": repr(user_ids[0]) if user_ids else 0,  # a Python literal: 5 or 'AFSK...'
        "has_handler": (run_dir / HANDLER_FILE).is_file() or (TEMPLATE_DIR / HANDLER_FILE).is_file(),
    }
    return card_data, context


def render_model_card(
    run_dir: str | os.PathLike[str],
    repo_id: str | None = None,
    template_path: str | os.PathLike[str] | None = None,
) -> ModelCard:
    """Render the model card of a run folder from its ``results.json``, ``config.json`` and vocabularies.

    Args:
        run_dir: the run folder (as written by training).
        repo_id: the Hub id the card's code snippets load (``"user/name"``); without it (a local preview, e.g. at
            the end of training) the snippets show a ``your-username/...`` placeholder.
        template_path: a Jinja template to use instead of ``hf_recsys/templates/model_card_template.md``.

    Returns:
        The card, YAML metadata included (``model-index`` with the measured metrics, licence, tags).
    """
    run_dir = Path(run_dir)
    template = _template_path(template_path)
    card_data, context = _card_context(run_dir, repo_id)
    return ModelCard.from_template(card_data, template_path=str(template), **context)


def write_model_card(
    run_dir: str | os.PathLike[str],
    repo_id: str | None = None,
    template_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Render the card (see `render_model_card`) and write it atomically as ``README.md`` in the run folder."""
    card = render_model_card(run_dir, repo_id=repo_id, template_path=template_path)
    return _atomic_write_bytes(Path(run_dir) / CARD_FILE, str(card).encode("utf-8"))
