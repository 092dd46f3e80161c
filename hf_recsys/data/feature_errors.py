"""Errors for feature tables that cannot be used, and where a bad value lies (file line, row, key, column).

:class:`FeatureTableError` is a :class:`~hf_recsys.data.movielens.DataFormatError` (as the MovieLens readers'
errors are) and an :class:`~hf_recsys.data.input_errors.InputDataError` (as the interaction readers' errors are).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .input_errors import InputDataError
from .movielens_errors import DataFormatError


class FeatureTableError(DataFormatError, InputDataError):
    """A feature table that cannot be used. The message names the source, the line (text files) or the row
    (1-based, header not counted) and key, the column, and what was expected; all are attributes too."""

    def __init__(self, message: str, path: Any = None, *, line: int | None = None, row: int | None = None,
                 column: str | None = None, key: Any = None, label: str = "key", expected: str | None = None) -> None:  # fmt: skip
        self.row, self.column, self.key = row, column, key.item() if isinstance(key, np.generic) else key
        where = f"row {row}" if line is None and row is not None else ""
        where += "" if key is None else f" ({label} {self.key!r})"
        where = ", ".join(w for w in (where.strip(), "" if column is None else f"column {column!r}") if w)
        super().__init__(f"{where}: {message}" if where else message, path, line, expected)


@dataclass
class _Where:
    """Where values come from, to turn a 0-based row position into an error that points at it."""

    source: str
    path: Path | None = None
    header_lines: int | None = None  # text files: non-blank lines before the first row (CSV/TSV 1, JSON Lines 0)
    labels: Any = None  # mapping keys or DataFrame index labels, by row, named in errors as `label`
    label: str = "key"

    def error(self, message: str, column: str | None, row: int | None = None, expected: str | None = None):
        line = key = None
        if row is not None:
            if self.path is not None and self.header_lines is not None:
                with open(self.path, "rb") as f:  # the readers skip blank lines: count the others
                    nonblank = [i for i, text in enumerate(f, start=1) if text.strip()]
                line = dict(enumerate(nonblank)).get(row + self.header_lines)
            key = None if self.labels is None else self.labels[row]
        return FeatureTableError(message, self.path or self.source, line=line, row=None if row is None else row + 1,
                                 column=column, key=key, label=self.label, expected=expected)  # fmt: skip
