"""`hf-recsys recommend`: recommend from a trained run folder or Hub repo and print them as a table.

    hf-recsys recommend --model runs/demo --user_id 5 --history "Toy Story (1995)" 260 --k 10

History items that are whole numbers are movie ids, anything else is a title (exact, case-insensitive or fuzzy
match; an ambiguous title exits with the close matches). For a model whose item ids are strings (e.g. Amazon's
"B07J3GH1W1"), nothing is parsed: an item that is a known id is that item, anything else a title. `--user_id`
is read as a whole number for int user ids and taken as it is for string user ids. With no user and no history, the most popular movies
are shown (cold start).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

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
        metadata={"help": "Watched movies, oldest first: movie ids (numbers) or titles.", "nargs": "*"},
    )
    k: int = field(default=10, metadata={"help": "Number of recommendations."})
    include_seen: bool = field(default=False, metadata={"help": "Allow movies of the history in the results."})
    genres: list[str] | None = field(
        default=None, metadata={"help": "Keep movies with any of these genres.", "nargs": "+"}
    )
    year_min: int | None = field(default=None, metadata={"help": "Keep movies released in or after this year."})
    year_max: int | None = field(default=None, metadata={"help": "Keep movies released in or before this year."})
    on_unknown: str = field(
        default="skip",
        metadata={"help": "Unknown movie ids in the history: skip them or fail.", "choices": ["skip", "error"]},
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)."})
    device: str | None = field(default=None, metadata={"help": "Device, e.g. cpu or cuda (default: cpu)."})


def parse_history(items: list[str], id_type: str = "int") -> list[int | str]:
    """CLI strings -> history: whole numbers are movie ids, anything else a title.

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


def format_table(recommendations: list[dict]) -> str:
    """Plain-text table of recommendations (rank, movie id, title, year, genres, score)."""
    rows = [("#", "movie_id", "title", "year", "genres", "score")]
    for item in recommendations:
        rows.append(
            (
                str(item["rank"]),
                str(item["movie_id"]),
                str(item["title"] or ""),
                str(item.get("year") or ""),
                "|".join(item.get("genres") or []),
                f"{item['score']:.4f}",
            )
        )
    widths = [min(max(len(row[i]) for row in rows), 60) for i in range(len(rows[0]))]
    numeric = {0, 1, 3, 5}
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
    filters = {
        name: value
        for name, value in (("genres", args.genres), ("year_min", args.year_min), ("year_max", args.year_max))
        if value is not None
    }
    recommender = Recommender.from_pretrained(args.model, revision=args.revision, device=args.device)
    try:
        user_id = parse_user_id(args.user_id, recommender.user_vocab.id_type)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped ids are printed below instead
            result = recommender.recommend(
                user_id=user_id,
                history=parse_history(args.history, recommender.item_vocab.id_type),
                k=args.k,
                exclude_seen=not args.include_seen,
                filters=filters or None,
                on_unknown=args.on_unknown,
            )
    except (TypeError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    for query, movie_id in result.resolved_titles.items():
        if query != recommender.title(movie_id):
            print(f"matched {query!r} -> {recommender.title(movie_id)!r} (movie id {movie_id})")
    if result.skipped_movie_ids:
        print(f"skipped unknown movie ids: {result.skipped_movie_ids}")
    who = "unknown user" if not result.known_user else f"user {user_id}"
    note = f"; the {result.truncated} oldest history items were not read" if result.truncated else ""
    print(f"{who}; strategy: {result.strategy}{note}")
    print(format_table(result))
    return 0
