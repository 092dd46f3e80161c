"""`hf-recsys recommend`: recommend from a trained run folder or Hub repo and print them as a table.

    hf-recsys recommend --model runs/demo --user_id 5 --history "Toy Story (1995)" 260 --k 10
    hf-recsys recommend --model runs/demo --history 260 --filter genres=Comedy,Drama decade=1990s
    hf-recsys recommend --model runs/toys --history B0001 --filter price=10..50 --user_feature age=25
    hf-recsys recommend --model runs/demo --similar_to "Heat (1995)" --k 5

History items that are whole numbers are item ids, anything else is a title (exact, case-insensitive or fuzzy
match; an ambiguous title exits with the close matches). For a model whose item ids are strings (e.g. Amazon's
"B07J3GH1W1"), nothing is parsed: an item that is a known id is that item, anything else a title. `--user_id`
is read as a whole number for int user ids and taken as it is for string user ids. With no user and no history,
the most popular items are shown (cold start). `--filter NAME=V1,V2` keeps items with any of the values of an
item field, `NAME=MIN..MAX` (either side may be empty) a numeric field's range (by bucket, see
`hf_recsys.modeling.item_filters`); `--user_feature NAME=VALUE` describes the user (a multi field takes V1|V2).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

from transformers import HfArgumentParser


@dataclass
class RecommendArguments:
    """Command-line options of `hf-recsys recommend`."""

    model: str = field(metadata={"help": "Run folder (e.g. runs/demo) or Hub repo id of a trained model."})
    user_id: str | None = field(
        default=None,
        metadata={"help": "Original user id: a whole number, or a string for string user ids (unknown: cold user)."},
    )
    history: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Items of the history, oldest first: item ids (numbers for int ids) or titles.",
            "nargs": "*",
        },
    )
    k: int = field(default=10, metadata={"help": "Number of recommendations."})
    include_seen: bool = field(default=False, metadata={"help": "Allow items of the history in the results."})
    filter: list[str] | None = field(
        default=None,
        metadata={
            "help": "Item field filters: NAME=V1,V2 (any of the values) or NAME=MIN..MAX (numeric).",
            "nargs": "+",
        },
    )
    user_feature: list[str] | None = field(
        default=None, metadata={"help": "Request-time user features: NAME=VALUE (multi fields: V1|V2).", "nargs": "+"}
    )
    similar_to: str | None = field(
        default=None, metadata={"help": "Show the items most similar to this item id or title instead."}
    )
    on_unknown: str = field(
        default="skip",
        metadata={"help": "Unknown item ids in the history: skip them or fail.", "choices": ["skip", "error"]},
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)."})
    device: str | None = field(default=None, metadata={"help": "Device, e.g. cpu or cuda (default: cpu)."})


def parse_history(items: list[str], id_type: str = "int") -> list[int | str]:
    """CLI strings -> history: whole numbers are item ids, anything else a title.

    With string item ids (`id_type="str"`) every item stays a string: the recommender takes a known id as that
    item and anything else as a title ("0042" may be an item id, not the number 42).
    """
    if id_type == "str":
        return list(items)
    return [int(item) if item.strip().lstrip("-").isdigit() else item for item in items]


def parse_user_id(user_id: str | None, id_type: str = "int") -> int | str | None:
    """CLI string -> user id: a whole number for int user ids (`ValueError` otherwise), the string itself for
    string user ids."""
    if user_id is None or id_type == "str":
        return user_id
    if not user_id.strip().lstrip("-").isdigit():
        raise ValueError(f"--user_id must be a whole number for this model (its user ids are ints), got {user_id!r}")
    return int(user_id)


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def parse_filters(specs: list[str] | None) -> dict[str, Any]:
    """`["genres=Comedy,Drama", "price=10..50", "include_item_ids=1,2"]` -> the `filters` dict (`ValueError`
    for a spec without `=` or a range that is not numbers)."""
    filters: dict[str, Any] = {}
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise ValueError(f"--filter {spec!r}: expected NAME=V1,V2 or NAME=MIN..MAX")
        if ".." in value:
            low, _, high = value.partition("..")
            try:
                filters[name] = {"min": _number(low), "max": _number(high)}
            except ValueError:
                raise ValueError(f"--filter {spec!r}: MIN..MAX must be numbers") from None
        else:
            values = [v.strip() for v in value.split(",") if v.strip()]
            if name.endswith("_item_ids"):
                values = parse_history(values)  # whole numbers are int ids (string ids stay strings)
            filters[name] = values
    return filters


def parse_user_features(specs: list[str] | None) -> dict[str, Any] | None:
    """`["age=25", "tags=a|b"]` -> `{"age": "25", "tags": "a|b"}` (encoded by the model's user_fields.json)."""
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise ValueError(f"--user_feature {spec!r}: expected NAME=VALUE")
        out[name] = value
    return out


def format_table(recommendations: list[dict]) -> str:
    """Plain-text table of recommendations: rank, item id, title (if any), the item fields, score."""
    columns = ["#", "item_id"]
    for item in recommendations:
        columns += [key for key in item if key not in ("rank", "score", *columns)]
    columns.append("score")
    rows = [tuple(columns)]
    for item in recommendations:
        cells = []
        for key in columns:
            value = item.get("rank") if key == "#" else item.get(key)
            if key == "score":
                cells.append(f"{value:.4f}")
            elif isinstance(value, list):
                cells.append("|".join(map(str, value)))
            else:
                cells.append("" if value is None else str(value))
        rows.append(tuple(cells))
    widths = [min(max(len(row[i]) for row in rows), 60) for i in range(len(columns))]
    numeric = {0, 1, len(columns) - 1}
    lines = []
    for n, row in enumerate(rows):
        cells = [
            (cell[: widths[i] - 1] + "…" if len(cell) > widths[i] else cell).rjust(widths[i])
            if i in numeric
            else (cell[: widths[i] - 1] + "…" if len(cell) > widths[i] else cell).ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


PROG = "hf-recsys recommend"


def parser() -> HfArgumentParser:
    """The options of `hf-recsys recommend`."""
    return HfArgumentParser(RecommendArguments, prog=PROG)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the model, print the recommendations; returns the exit status."""
    (args,) = parser().parse_args_into_dataclasses(args=argv)
    from transformers.utils import logging as hf_logging

    from ..inference import Recommender

    hf_logging.disable_progress_bar()
    recommender = Recommender.from_pretrained(args.model, revision=args.revision, device=args.device)
    id_type = recommender.item_vocab.id_type
    try:
        filters = parse_filters(args.filter)
        for name in ("include_item_ids", "exclude_item_ids"):
            if name in filters and id_type == "str":
                filters[name] = [str(v) for v in filters[name]]
        if args.similar_to is not None:
            (item,) = parse_history([args.similar_to], id_type)
            result = recommender.similar_items(item, k=args.k, filters=filters or None)
            who = f"items similar to {args.similar_to!r}"
        else:
            user_id = parse_user_id(args.user_id, recommender.user_vocab.id_type)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # skipped ids are printed below instead
                result = recommender.recommend(
                    user_id=user_id,
                    history=parse_history(args.history, id_type),
                    k=args.k,
                    exclude_seen=False if args.include_seen else None,  # None: the model's (the data's) setting
                    filters=filters or None,
                    on_unknown=args.on_unknown,
                    user_features=parse_user_features(args.user_feature),
                )
            who = "unknown user" if not result.known_user else f"user {user_id}"
    except ValueError as error:  # every request error of the recommender is one (hf_recsys.modeling.errors)
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    for query, item_id in result.resolved_titles.items():
        if query != recommender.title(item_id):
            print(f"matched {query!r} -> {recommender.title(item_id)!r} (item id {item_id})")
    if result.skipped_item_ids:
        print(f"skipped unknown item ids: {result.skipped_item_ids}")
    note = f"; the {result.truncated} oldest history items were not read" if result.truncated else ""
    print(f"{who}; strategy: {result.strategy}{note}")
    print(format_table(result))
    return 0
