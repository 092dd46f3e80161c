"""Errors of the MovieLens readers: a file that cannot be used, a missing file, a bad archive checksum."""

from __future__ import annotations

import os


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------
class DataFormatError(ValueError):
    """Input data that cannot be used: names the file, the line (when known) and what was expected."""

    def __init__(
        self,
        message: str,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        expected: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.expected = expected
        where = ""
        if self.path is not None:
            where = f"{self.path}, line {line}: " if line is not None else f"{self.path}: "
        text = f"{where}{message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class MissingDataError(DataFormatError, FileNotFoundError):
    """A required file is missing (also a ``FileNotFoundError``)."""


class ChecksumMismatchError(DataFormatError):
    """An archive whose MD5 differs from the one GroupLens publishes."""
