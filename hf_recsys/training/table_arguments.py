"""The item- and user-table options of the command line (``--item_table``, ``--user_table``, ...): a base of
`DataArguments`, passed through to `hf_recsys.data.interactions.load_interactions` by `TableArguments.table_kwargs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def split_columns(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """``"genres,brand"`` (the command line) or a list (a spec file) -> ``["genres", "brand"]``; None stays None."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [p.strip() for p in parts if p.strip()]


@dataclass
class TableArguments:
    """Item and user tables of a ``--data`` log: side features (and item titles) keyed by id."""

    item_table: str | None = field(
        default=None,
        metadata={
            "help": "With --data: an item table keyed by item id, a CSV, TSV, Parquet or JSON Lines file, or an S3-Rec "
            "*_item2attributes.json mapping. Its columns become item features (lists or 'a|b' strings: multi)."
        },
    )
    item_id_column: str | None = field(
        default=None, metadata={"help": "With --item_table: its id column (default: --item_column)."}
    )
    item_title_column: str | None = field(
        default=None, metadata={"help": "With --item_table: a column of titles, shown with recommendations."}
    )
    item_feature_columns: str | None = field(
        default=None, metadata={"help": "With --item_table: comma-separated feature columns (default: all others)."}
    )
    user_table: str | None = field(
        default=None, metadata={"help": "With --data: a user table keyed by user id (CSV, TSV, Parquet, JSON Lines)."}
    )
    user_id_column: str | None = field(
        default=None, metadata={"help": "With --user_table: its id column (default: --user_column)."}
    )
    user_feature_columns: str | None = field(
        default=None, metadata={"help": "With --user_table: comma-separated feature columns (default: all others)."}
    )

    def table_kwargs(self) -> dict[str, Any]:
        """The `load_interactions` arguments of the tables (the feature columns split at commas)."""
        return {
            "item_table": self.item_table,
            "item_id_column": self.item_id_column,
            "item_title_column": self.item_title_column,
            "item_feature_columns": split_columns(self.item_feature_columns),
            "user_table": self.user_table,
            "user_id_column": self.user_id_column,
            "user_feature_columns": split_columns(self.user_feature_columns),
        }

    def check_no_tables(self) -> None:
        """A MovieLens release brings its own tables: table options without ``--data`` are an error naming them."""
        given = [f"--{name}" for name, value in self.table_kwargs().items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: item and user tables go with --data (a log of your own)")
