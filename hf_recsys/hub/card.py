"""The model card of a run folder: everything it shows is computed from ``results.json`` and ``config.json``;
the template (``hf_recsys/templates/model_card_template.md``, package data) only lays it out."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData
from transformers.utils import logging

from ..run_layout import CARD_FILE, CURVE_FILE, HANDLER_FILE, RESULTS_FILE
from .card_text import (
    _DATA_VARIANTS,
    _DATASETS,
    _config_keys,
    _data_sentence,
    _dataset_info,
    _eval_results,
    _example_history,
    _fields_text,
    _finite,
    _fmt_bytes,
    _fmt_duration,
    _fmt_value,
    _ids_of,
    _protocol_paragraph,
    _published_data_note,
    _results_table,
    _source_url,
)
from .run_folder import _atomic_write_bytes, _read_json, _weights_files

logger = logging.get_logger(__name__)

#: Folder of the card template and the Inference Endpoints handler: ``hf_recsys/templates/``, package data that every
#: install (wheel, sdist or editable) has.
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"
TEMPLATE_FILE = "model_card_template.md"


def _template_path(template_path: str | os.PathLike[str] | None) -> Path:
    path = Path(template_path) if template_path is not None else TEMPLATE_DIR / TEMPLATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"model card template not found: {path}. hf-recsys ships it as package data (hf_recsys/templates/); "
            "reinstall hf-recsys if it is missing, or pass template_path= to use another template."
        )
    return path


def _card_context(run_dir: Path, repo_id: str | None) -> tuple[ModelCardData, dict[str, Any]]:
    """Everything the template shows, computed from the run folder (the template only lays it out)."""
    from .. import __version__

    results = _read_json(run_dir / RESULTS_FILE, RESULTS_FILE)
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
