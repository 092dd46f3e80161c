"""Errors for input data that cannot be used, and where in a multi-file interaction read a bad row lies.

:class:`InputDataError` is the common base (a ``ValueError``) of :class:`InteractionDataError` (interaction logs)
and :class:`hf_recsys.data.feature_errors.FeatureTableError` (item and user feature tables), so that a caller can
catch any bad input data with one ``except``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class InputDataError(ValueError):
    """Input data (an interaction log, a feature table) that cannot be used; the message says where and why.

    The shared base of the data readers' errors, so that one ``except InputDataError`` catches any bad input
    data; each subclass sets its own attributes (``row``, ``column``, ``expected``, ...).
    """


class InteractionDataError(InputDataError):
    """Interaction data that cannot be used.

    The message reads ``<source>, row R (line L), column 'c': what is wrong (expected ...)``; the same facts are
    attributes (``source``, ``row``, ``line``, ``column``, ``expected``) for programs. ``row`` counts data rows
    from 0 within the named file; ``line`` is the 1-based text line where the file has lines.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        line: int | None = None,
        column: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.source, self.row, self.line, self.column, self.expected = source, row, line, column, expected
        where = [str(source)] if source else []
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        text = (", ".join(where) + ": " if where else "") + message
        super().__init__(text + (f" (expected {expected})" if expected else ""))


class SourceNotFoundError(InteractionDataError, FileNotFoundError):
    """The source does not exist: no such file, no file matching a glob, or no such dataset."""


@dataclass(frozen=True)
class _Part:
    """One file (or in-memory source) of a read: its name for messages, rows, and text lines before row 0."""

    name: str
    rows: int
    header_lines: int | None = None  # None: the source has no line numbers


class _Where:
    """Maps a position in the concatenated raw table back to (file, row, line) for error messages."""

    def __init__(self, parts: list[_Part]) -> None:
        self.parts = parts
        self.starts = np.cumsum([0] + [p.rows for p in parts])

    def error(self, message: str, pos: int, column: str | None = None, expected: str | None = None):
        k = int(np.searchsorted(self.starts, pos, side="right")) - 1
        part, row = self.parts[k], int(pos - self.starts[k])
        line = None if part.header_lines is None else row + part.header_lines + 1
        return InteractionDataError(message, source=part.name, row=row, line=line, column=column, expected=expected)


def _error(source: str, message: str, expected: str | None = None, **where: Any) -> InteractionDataError:
    return InteractionDataError(message, source=source, expected=expected, **where)
