"""Interaction logs from any source: the reading half of "your own data" (issue 21).

:func:`read_interactions` reads (user, item[, time]) events from CSV, TSV, Parquet or JSON Lines
files (a path, a glob, a URL, or a list of them), a pandas ``DataFrame``, a ``datasets.Dataset``,
a Hub dataset id (or a local dataset folder, both through ``datasets.load_dataset``), or the
research text formats: SASRec ``user item`` lines and S3-Rec ``user item1 item2 ...`` lines, each
in time order. It returns an :class:`InteractionLog`, one ``pyarrow.Table`` with the columns

* ``user_id``, ``item_id``: the original ids, int64 or string. Typed sources (Parquet, JSON,
  DataFrame, Dataset) keep their type; in text files an id column is int64 only when every id is
  a canonical integer, so ``"007"`` stays the string ``"007"`` and ids round-trip exactly.
* ``timestamp``: int64 unix seconds (UTC; naive datetimes are read as UTC), or all null when the
  source has no time column;
* the ``keep_columns`` (ratings, event types, ...), unchanged (large strings become strings);
* ``row``: the 0-based position in the source (data row; for S3-Rec lines, the interaction in
  file order). It breaks ties stably and locates a row for error messages.

Only the needed columns are read (column projection), with pyarrow's readers or ``datasets``,
so memory grows with the rows and the few columns used, not with the file's other columns. Bad
input raises :class:`InteractionDataError`, whose message names the file, the row (and line),
the column and what was expected. :func:`chronological` sorts a log stably by (user, time).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob as globlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

__all__ = [
    "FORMATS",
    "TIME_UNITS",
    "InteractionDataError",
    "InteractionLog",
    "SourceNotFoundError",
    "chronological",
    "read_interactions",
    "source_fingerprint",
]

USER, ITEM, TIME, ROW = "user_id", "item_id", "timestamp", "row"
CORE_COLUMNS = (USER, ITEM, TIME, ROW)
FORMATS = ("csv", "tsv", "parquet", "jsonl", "sasrec", "s3rec")
"""Values of ``format=``: the file formats, then the two research text formats."""
TIME_UNITS = ("auto", "s", "ms", "us", "ns", "iso")
"""Values of ``time_unit=``; ``auto`` detects the unit from the column's type and magnitude."""
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_EXTENSIONS |= {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_LABELS = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "jsonl": "JSON Lines", "sasrec": "SASRec text"}
_LABELS["s3rec"] = "S3-Rec text"
_UNIT_SECONDS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
_EXPECTED_TIME = (
    "unix seconds/milliseconds/micro/nanoseconds, an ISO 8601 date such as 2021-03-04T05:06:07Z, or a datetime"
)


class InteractionDataError(ValueError):
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


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """An interaction log with normalised columns (see the module docstring) and where it came from.

    ``fingerprint`` changes whenever the source's content (file path/size/mtime, or the hash of a DataFrame or
    Dataset) or a reading option changes, and every filter folds its name and parameters into it, so it can key a
    cache. ``time_unit`` is the unit read or detected (``s``, ``ms``, ``us``, ``ns``, ``iso``, ``datetime``), or
    None without a time column. ``train_only_users`` is set by :func:`hf_recsys.data.filters.min_history`: users
    too short to evaluate, to be kept in training only.
    """

    table: pa.Table
    source: str
    format: str
    fingerprint: str
    time_unit: str | None = None
    is_chronological: bool = False
    train_only_users: pa.Array | None = None

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def has_time(self) -> bool:
        return self.time_unit is not None

    @property
    def kept_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.table.column_names if c not in CORE_COLUMNS)

    def num_users(self) -> int:
        return pc.count_distinct(self.table[USER]).as_py()

    def num_items(self) -> int:
        return pc.count_distinct(self.table[ITEM]).as_py()

    def replace(self, **changes: Any) -> InteractionLog:
        """A copy with some fields changed (the log is immutable)."""
        return dataclasses.replace(self, **changes)

    def info(self) -> dict[str, Any]:
        """A JSON-serialisable summary: source, format, fingerprint, sizes, id types and time unit."""
        return {
            "source": self.source,
            "format": self.format,
            "fingerprint": self.fingerprint,
            "num_rows": self.num_rows,
            "num_users": self.num_users(),
            "num_items": self.num_items(),
            "user_id_type": str(self.table.schema.field(USER).type),
            "item_id_type": str(self.table.schema.field(ITEM).type),
            "time_unit": self.time_unit,
            "kept_columns": list(self.kept_columns),
            "train_only_users": None if self.train_only_users is None else len(self.train_only_users),
        }


@dataclass(frozen=True)
class _Columns:
    user: str
    item: str
    time: str | None
    keep: tuple[str, ...]

    @property
    def needed(self) -> list[str]:
        return list(dict.fromkeys([self.user, self.item, *([self.time] if self.time else []), *self.keep]))

    def expected(self) -> str:
        return "columns " + ", ".join(repr(c) for c in self.needed)


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


def read_interactions(
    source: Any,
    *,
    user_column: str = USER,
    item_column: str = ITEM,
    time_column: str | None = None,
    time_unit: str = "auto",
    format: str | None = None,
    keep_columns: Sequence[str] = (),
    split: str | None = None,
) -> InteractionLog:
    """Read an interaction log from a file, glob, URL, DataFrame, Dataset or Hub id (see the module docstring).

    ``format`` is taken from the file extension (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``/``.json``, optionally
    compressed ``.gz``/``.bz2``/``.zst``/``.lz4``) unless given; ``.txt`` files need it (``sasrec`` or ``s3rec``,
    whose lines carry no column names or times: ``user_column`` and friends are then ignored). ``time_unit``:
    ``auto`` detects seconds/ms/us/ns from the magnitude of numbers, reads strings as ISO 8601 and datetime columns
    as they are; ``s``, ``ms``, ``us``, ``ns`` or ``iso`` force one. ``split`` picks the split of a Hub dataset or
    ``DatasetDict`` (default: its only split). Without ``time_column`` the file order is the time order.
    """
    cols = _Columns(user_column, item_column, time_column, tuple(keep_columns))
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r}: expected one of {', '.join(TIME_UNITS)}")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format={format!r}: expected one of {', '.join(FORMATS)}")
    if time_unit != "auto" and time_column is None:
        raise ValueError(f"time_unit={time_unit!r} needs a time_column")
    if user_column == item_column:
        raise ValueError(f"user_column and item_column are both {user_column!r}")
    clash = sorted(set(cols.keep) & set(CORE_COLUMNS))
    if clash:
        raise ValueError(f"keep_columns {clash} would overwrite the normalised columns {list(CORE_COLUMNS)}")
    if format in ("sasrec", "s3rec"):
        if time_column or cols.keep:
            raise ValueError(f"format={format!r} has only user and item ids: no time_column or keep_columns")
        cols = _Columns(USER, ITEM, None, ())
    raw, parts, fmt, name, content = _load(source, cols, format, split)
    where = _Where(parts)
    textual = fmt in ("csv", "tsv", "sasrec", "s3rec")
    columns = {
        USER: _ids(raw[cols.user], cols.user, textual, where),
        ITEM: _ids(raw[cols.item], cols.item, textual, where),
    }
    unit = None
    if cols.time:
        columns[TIME], unit = _seconds(raw[cols.time], time_unit, cols.time, where)
    else:
        columns[TIME] = pa.nulls(raw.num_rows, pa.int64())
    columns |= {c: raw[c].cast(pa.string()) if _is_text(raw[c].type) else raw[c] for c in cols.keep}
    columns[ROW] = pa.array(np.arange(raw.num_rows, dtype=np.int64))
    return InteractionLog(pa.table(columns), name, fmt, _fingerprint(content, cols, time_unit, fmt, split), unit)


def _fingerprint(content: Any, cols: _Columns, time_unit: str, fmt: str, split: str | None) -> str:
    options = dataclasses.asdict(cols) | {"time_unit": time_unit, "format": fmt, "split": split}
    return _digest({"content": content, "options": options})


def source_fingerprint(
    source: Any,
    *,
    user_column: str = USER,
    item_column: str = ITEM,
    time_column: str | None = None,
    time_unit: str = "auto",
    format: str | None = None,
    keep_columns: Sequence[str] = (),
    split: str | None = None,
) -> str | None:
    """The ``fingerprint`` :func:`read_interactions` would give, without reading the data, or None.

    Files (a path, glob, URL or list of them) are identified by path, size and mtime, so a builder can find its
    cache before reading anything. In-memory sources and Hub ids return None: only reading them tells their
    content. Bad options or missing files raise as :func:`read_interactions` would.
    """
    if not isinstance(source, str | os.PathLike) and not (
        isinstance(source, Sequence) and source and all(isinstance(p, str | os.PathLike) for p in source)
    ):
        return None
    paths = [os.fspath(source)] if isinstance(source, str | os.PathLike) else [os.fspath(p) for p in source]
    if len(paths) == 1 and format is None and not _is_url(paths[0]) and not globlib.has_magic(paths[0]):
        local = Path(paths[0])
        if local.is_dir() or (not local.exists() and _HUB_ID.fullmatch(paths[0]) and not _has_file_suffix(local)):
            return None  # a Hub id or a dataset folder
    cols = _Columns(user_column, item_column, time_column, tuple(keep_columns))
    if format in ("sasrec", "s3rec"):
        cols = _Columns(USER, ITEM, None, ())
    files = [f for p in paths for f in _expand(p)]
    formats = {_format_of(f, format) for f in files}
    if len(formats) != 1:
        return None  # read_interactions reports the mix
    return _fingerprint([_stamp(f) for f in files], cols, time_unit, formats.pop(), split)


def chronological(log: InteractionLog) -> InteractionLog:
    """The log sorted by (user, timestamp), ties kept in source order (a stable sort, broken by ``row``).

    Users come in ascending id order (numeric for int64 ids, lexicographic for strings). Without a time column each
    user's rows keep their file order, which is then the time order (SASRec and S3-Rec files, or logs written in
    time order). Vectorised: one stable argsort of a combined int64 (user, time) key where it fits, else
    ``np.lexsort``: about 2 s for 10M rows here.
    """
    if log.is_chronological:
        return log
    table = log.table
    users = table[USER].combine_chunks()
    if pa.types.is_integer(users.type):
        codes = users.to_numpy()
    else:
        uniques = pc.unique(users)
        codes = pc.index_in(users, value_set=uniques.take(pc.sort_indices(uniques))).to_numpy().astype(np.int64)
    rows = table[ROW].to_numpy()
    times = table[TIME].to_numpy() if log.has_time else np.zeros(len(codes), dtype=np.int64)
    if len(codes) == 0:
        order = np.zeros(0, dtype=np.int64)
    else:
        c_min, t_min = int(codes.min()), int(times.min())
        c_span, t_span = int(codes.max()) - c_min + 1, int(times.max()) - t_min + 1
        in_row_order = bool(np.all(rows[1:] > rows[:-1]))  # then a stable sort keeps ties in row order
        if in_row_order and c_span * t_span < 2**62:
            order = np.argsort((codes - c_min) * t_span + (times - t_min), kind="stable")
        else:
            order = np.lexsort((rows, times, codes))
    return log.replace(table=table.take(order), is_chronological=True, fingerprint=_digest([log.fingerprint, "chrono"]))


# ---------------------------------------------------------------------------------------------------------
# Sources -> one raw table with the needed columns under their source names
# ---------------------------------------------------------------------------------------------------------
def _load(source: Any, cols: _Columns, format: str | None, split: str | None):
    """(raw table, parts, format, source name, content descriptor for the fingerprint)."""
    pd, hfds = sys.modules.get("pandas"), sys.modules.get("datasets")  # a DataFrame implies pandas is imported
    if pd is not None and isinstance(source, pd.DataFrame):
        return _from_dataframe(source, cols)
    if hfds is not None and isinstance(source, hfds.Dataset | hfds.DatasetDict):
        return _from_dataset(source, cols, split, None, "dataset")
    if isinstance(source, str | os.PathLike):
        paths = [os.fspath(source)]
        if format is None and not _is_url(paths[0]) and not globlib.has_magic(paths[0]):
            local = Path(paths[0])
            if local.is_dir() or (not local.exists() and _HUB_ID.fullmatch(paths[0]) and not _has_file_suffix(local)):
                return _from_hub(paths[0], cols, split)
    elif isinstance(source, Sequence) and source and all(isinstance(p, str | os.PathLike) for p in source):
        paths = [os.fspath(p) for p in source]
    else:
        raise TypeError(f"cannot read interactions from {type(source).__name__}: expected a path, glob, URL, list "
                        "of paths, pandas.DataFrame, datasets.Dataset or Hub dataset id")  # fmt: skip
    files = [f for p in paths for f in _expand(p)]
    formats = {_format_of(f, format) for f in files}
    if len(formats) > 1:
        raise _error(", ".join(paths), f"files of several formats {sorted(formats)}", "one format per source")
    fmt = formats.pop()
    tables, parts = [], []
    for f in files:
        table, header_lines = _read_file(f, fmt, cols)
        tables.append(table)
        parts.append(_Part(f, table.num_rows, header_lines))
    return _concat(tables, parts), parts, fmt, ", ".join(paths), [_stamp(f) for f in files]


def _error(source: str, message: str, expected: str | None = None, **where: Any) -> InteractionDataError:
    return InteractionDataError(message, source=source, expected=expected, **where)


def _is_url(path: str) -> bool:
    return "://" in path


def _suffix(path: str) -> str:
    """The format suffix, compression suffix removed: ``log.csv.gz`` -> ``.csv``."""
    suffixes = [s.lower() for s in Path(path.split("?")[0]).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _has_file_suffix(path: Path) -> bool:
    return path.suffix.lower() in {*_EXTENSIONS, *_COMPRESSED, ".txt", ".dat", ".data", ".inter"}


def _format_of(path: str, format: str | None) -> str:
    if format is not None:
        return format
    if _suffix(path) in _EXTENSIONS:
        return _EXTENSIONS[_suffix(path)]
    suffix = _suffix(path) or "(none)"
    raise _error(path, f"cannot tell the format from the extension {suffix!r}", f"format= one of {FORMATS}")


def _expand(path: str) -> list[str]:
    """A path, URL or glob -> the files, sorted (globs expand locally or through fsspec for URLs)."""
    if _is_url(path):
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        found = sorted(fs.unstrip_protocol(p) for p in fs.glob(root)) if globlib.has_magic(root) else [path]
    elif globlib.has_magic(path):
        found = sorted(p for p in globlib.glob(path, recursive=True) if Path(p).is_file())
    elif Path(path).is_file():
        found = [path]
    else:
        raise SourceNotFoundError("no such file", source=path)
    if not found:
        raise SourceNotFoundError("no file matches this pattern", source=path)
    return found


def _open(path: str, compression: str | None = "infer") -> Any:
    """What pyarrow reads: the local path (pyarrow decompresses by extension), or an fsspec file for a URL."""
    if not _is_url(path):
        return contextlib.nullcontext(path)
    import fsspec

    return fsspec.open(path, "rb", compression=compression)


def _stamp(path: str) -> list[Any]:
    """What identifies a file's content cheaply: path, size and mtime (URLs: size, ETag, Last-Modified)."""
    if not _is_url(path):
        st = os.stat(path)
        return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    info = fs.info(root)
    return [path] + [str(info.get(k)) for k in ("size", "ETag", "etag", "last_modified", "mtime", "Last-Modified")]


def _check_kind(path: str, fmt: str) -> None:
    """Refuse, with a clear message, a file that is empty or not what its format says (before pyarrow guesses)."""
    if _is_url(path):
        with _open(path, None) as f:
            head = f.read(4096)
    else:
        with open(path, "rb") as f:
            head = f.read(4096)
    if not head:
        raise _error(path, "file is empty", f"{_LABELS[fmt]} data")
    if _suffix(path) != Path(path.split("?")[0]).suffix.lower():
        return  # compressed: pyarrow or fsspec decompresses it, and reports what it cannot read
    kind = "text"
    if head[:4] == b"PAR1":
        kind = "Parquet data"
    elif head[:2] == b"\x1f\x8b" or head[:4] == b"PK\x03\x04":
        kind = "compressed data (gzip or zip)"
    elif b"\x00" in head:
        kind = "binary data"
    first = head.split(b"\n")[0][:60].decode(errors="replace").strip()
    if kind != ("Parquet data" if fmt == "parquet" else "text"):
        got = f"text starting {first!r}" if kind == "text" else kind
        raise _error(path, f"this is {got}, not {_LABELS[fmt]}", "what its extension or format= says")
    if fmt == "jsonl" and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        got = "a JSON array" if head.lstrip().startswith(b"[") else f"text starting {first!r}"
        raise _error(path, f"this is {got}, not JSON Lines", "one JSON object per line")


def _read_file(path: str, fmt: str, cols: _Columns) -> tuple[pa.Table, int | None]:
    """(table, text lines before data row 0, or None where rows are not lines)."""
    _check_kind(path, fmt)
    try:
        if fmt in ("sasrec", "s3rec"):
            table, header = _read_text(path, fmt), None
        elif fmt == "parquet":
            with _open(path) as f:
                pfile = pq.ParquetFile(f)
                _require(pfile.schema_arrow.names, cols, path)
                table, header = pfile.read(columns=cols.needed), None
        elif fmt == "jsonl":
            table, header = _read_jsonl(path, cols), 0
        else:
            table, header = _read_csv(path, fmt, cols), 1
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise _error(path, f"cannot read as {_LABELS[fmt]} ({e})", f"a valid {_LABELS[fmt]} file") from e
    if table.num_rows == 0:
        raise _error(path, "no interactions (the file has no data rows)")
    return table, header


def _require(present: Sequence[str], cols: _Columns, source: str) -> None:
    """A missing column names the columns that are there (and suspects the separator if there is only one)."""
    for c in cols.needed:
        if c not in present:
            odd = len(present) == 1 and ("\t" in present[0] or "," in present[0] or ";" in present[0])
            hint = "; is the separator right (format='csv' or 'tsv')?" if odd else ""
            raise _error(source, f"no such column; the columns are {list(present)}{hint}", cols.expected(), column=c)


def _read_csv(path: str, fmt: str, cols: _Columns) -> pa.Table:
    """Ids and times are read as text (ids keep leading zeros; times are parsed by :func:`_seconds`)."""
    parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
    with _open(path) as f:
        _require(pacsv.open_csv(f, parse_options=parse).schema.names, cols, path)  # reads the first block only
    text = dict.fromkeys([cols.user, cols.item, *([cols.time] if cols.time else [])], pa.string())
    convert = pacsv.ConvertOptions(
        include_columns=cols.needed, column_types=text, strings_can_be_null=True, null_values=[""]
    )
    with _open(path) as f:
        return pacsv.read_csv(f, parse_options=parse, convert_options=convert)


def _read_jsonl(path: str, cols: _Columns) -> pa.Table:
    """Streams the file with an explicit schema of the needed fields (types from the first block), so the other
    fields are never materialised and a value of another type later is reported with its row."""
    batches, seen = [], 0
    try:
        with _open(path) as f:
            schema = pajson.open_json(f).schema
        _require(schema.names, cols, path)
        fields = [schema.field(c) for c in cols.needed if not pa.types.is_null(schema.field(c).type)]
        infer = len(fields) < len(cols.needed)  # a field null throughout the first block: infer it later
        options = pajson.ParseOptions(pa.schema(fields), unexpected_field_behavior="infer" if infer else "ignore")
        with _open(path) as f:
            for batch in pajson.open_json(f, parse_options=options):
                batches.append(batch.select(cols.needed) if infer else batch)
                seen += batch.num_rows
    except pa.ArrowInvalid as e:  # pyarrow counts rows within the failing block
        mixed = re.search(r"Column\(/([^)]*)\) changed from (\w+) to (\w+) in row (\d+)", str(e))
        if mixed:
            column, was, now, row = mixed.groups()
            row = seen + int(row)
            raise _error(path, f"holds a {now} where earlier rows hold {was}s", "ids of one type in the column",
                         row=row, line=row + 1, column=column) from e  # fmt: skip
        at = re.search(r"in row (\d+)", str(e))
        row = None if at is None else seen + int(at.group(1))
        raise _error(path, f"cannot read as JSON Lines ({e})", "one JSON object per line", row=row,
                     line=None if row is None else row + 1) from e  # fmt: skip
    return pa.Table.from_batches(batches) if batches else pa.table({c: pa.array([]) for c in cols.needed})


def _read_text(path: str, fmt: str) -> pa.Table:
    """SASRec (``user item``) or S3-Rec (``user item1 item2 ...``) lines: pyarrow reads one string per line (no
    separator matches), and pyarrow compute splits them on whitespace. Blank lines are skipped."""
    read = pacsv.ReadOptions(column_names=["line"])
    parse = pacsv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False, ignore_empty_lines=False)
    with _open(path) as f:
        lines = pacsv.read_csv(f, read, parse, pacsv.ConvertOptions(column_types={"line": pa.string()}))["line"]
    lines = pc.utf8_trim_whitespace(lines.combine_chunks())
    tokens = pc.utf8_split_whitespace(lines)
    counts, blank = pc.list_value_length(tokens).to_numpy(), pc.equal(lines, "").to_numpy(zero_copy_only=False)
    bad = ~blank & ((counts != 2) if fmt == "sasrec" else (counts < 2))
    if bad.any():
        k = int(np.argmax(bad))
        want = "'user item': two ids" if fmt == "sasrec" else "'user item1 item2 ...': a user and at least one item"
        raise _error(path, f"found {counts[k]} field(s) in {lines[k].as_py()[:80]!r}", want, line=k + 1)
    tokens = tokens.filter(pa.array(~blank))
    items = pc.list_slice(tokens, 1)
    users = pc.list_element(tokens, 0).take(pc.list_parent_indices(items))
    return pa.table({USER: users, ITEM: pc.list_flatten(items)})


def _from_dataframe(df: Any, cols: _Columns):
    """Only the needed columns are converted; an object column mixing types names its first odd row."""
    from datasets.fingerprint import Hasher

    _require([str(c) for c in df.columns], cols, "DataFrame")
    arrays = {}
    for c in cols.needed:
        try:
            arrays[c] = pa.chunked_array([pa.array(df[c], from_pandas=True)])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            values = df[c].tolist()
            kinds = [None if v is None or v != v else type(v) for v in values]
            first = next((i for i, k in enumerate(kinds) if k is not None), 0)
            odd = next((i for i, k in enumerate(kinds) if k is not None and k is not kinds[first]), None)
            if odd is None:
                raise _error("DataFrame", f"cannot convert to Arrow ({e})", column=c) from e
            was, now = kinds[first].__name__, kinds[odd].__name__
            message = f"mixed types: row {first} holds {was} {values[first]!r}, this row holds {now} {values[odd]!r}"
            raise _error("DataFrame", message, f"one type in the column ({was})", row=odd, column=c) from e
    table = pa.table(arrays)
    if table.num_rows == 0:
        raise _error("DataFrame", "no interactions (the DataFrame has no rows)")
    return table, [_Part("DataFrame", table.num_rows)], "dataframe", "DataFrame", Hasher.hash(table)


def _from_hub(name: str, cols: _Columns, split: str | None):
    import datasets

    try:
        data = datasets.load_dataset(name, split=split)
    except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as e:
        raise SourceNotFoundError(f"cannot load this dataset ({type(e).__name__}: {e})", source=name) from e
    return _from_dataset(data, cols, split, name, "hub")


def _from_dataset(data: Any, cols: _Columns, split: str | None, name: str | None, fmt: str):
    """A Dataset (or one split of a DatasetDict): the needed columns as an Arrow table, memory-mapped if the
    dataset is; its ``datasets`` fingerprint identifies the content."""
    import datasets

    name = name or "Dataset"
    if isinstance(data, datasets.DatasetDict):
        if split is None and len(data) != 1:
            raise _error(name, f"has the splits {list(data)}", "split= naming one")
        split = split or next(iter(data))
        if split not in data:
            raise _error(name, f"has no split {split!r}, only {list(data)}")
        data, name = data[split], f"{name}[{split}]"
    _require(data.column_names, cols, name)
    table = data.select_columns(cols.needed).with_format("arrow")[:]
    if table.num_rows == 0:
        raise _error(name, "no interactions (the dataset has no rows)")
    return table, [_Part(name, table.num_rows)], fmt, name, [data._fingerprint, split]


def _concat(tables: list[pa.Table], parts: list[_Part]) -> pa.Table:
    """Files together (ints widen to floats where they must); a column typed differently names the file."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        for table, part in zip(tables[1:], parts[1:]):
            for field in table.schema:
                first = tables[0].schema.field(field.name).type
                if field.type != first:
                    message = f"holds {field.type} where {parts[0].name} holds {first}"
                    raise _error(part.name, message, "the same types in every file", column=field.name) from e
        raise


# ---------------------------------------------------------------------------------------------------------
# Normalisation: ids and timestamps
# ---------------------------------------------------------------------------------------------------------
def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Index of the first true value, or None."""
    index = pc.index(mask, True).as_py()
    return None if index < 0 else index


def _ids(values: pa.ChunkedArray, column: str, textual: bool, where: _Where) -> pa.ChunkedArray:
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    kind = values.type
    bad = _first(pc.is_null(values, nan_is_null=True))
    if bad is not None:
        raise where.error("missing id (null or empty)", bad, column, "an id in every row")
    if pa.types.is_integer(kind):
        if kind == pa.uint64() and pc.max(values).as_py() > 2**63 - 1:
            raise where.error("id too large for int64", _first(pc.greater(values, 2**63 - 1)), column, "int64 ids")
        return values.cast(pa.int64())
    if pa.types.is_floating(kind):
        bad = _first(pc.not_equal(values, pc.floor(values)))
        if bad is not None:
            raise where.error(f"id {values[bad].as_py()!r} is not an integer", bad, column, "integer or string ids")
        return values.cast(pa.int64())
    if _is_text(kind):
        values = values.cast(pa.string())
        if textual and pc.all(pc.match_substring_regex(values, r"^-?(0|[1-9][0-9]{0,17})$")).as_py():
            return values.cast(pa.int64())  # canonical integers only: "007" stays a string
        return values
    raise where.error(f"ids of type {kind}", 0, column, "integer or string ids")


def _seconds(values: pa.ChunkedArray, unit: str, column: str, where: _Where) -> tuple[pa.ChunkedArray, str]:
    """(int64 unix seconds, unit read or detected)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    kind = values.type
    bad = _first(pc.is_null(values))
    if bad is not None:
        raise where.error("missing timestamp", bad, column, _EXPECTED_TIME)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if unit not in ("auto", "iso"):
            raise where.error(f"holds datetimes ({kind}), not numbers in {unit!r}", 0, column, "time_unit='auto'")
        if pa.types.is_date(kind):
            return values.cast(pa.timestamp("s")).cast(pa.int64()), "datetime"
        return _divide(values.cast(pa.int64()), _UNIT_SECONDS[kind.unit]), "datetime"
    if _is_text(kind):
        values = pc.utf8_trim_whitespace(values.cast(pa.string()))
        number = pc.match_substring_regex(values, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
        numeric = unit in _UNIT_SECONDS or (unit == "auto" and number[0].as_py())
        if not numeric:
            return _iso(values, column, where), "iso"
        bad = _first(pc.invert(number))
        if bad is not None:
            raise where.error(
                f"cannot parse timestamp {values[bad].as_py()!r}",
                bad,
                column,
                f"a number (unix time in {unit if unit != 'auto' else 'seconds or ms'}, as row 0 holds)",
            )
        integral = pc.all(pc.match_substring_regex(values, r"^[+-]?\d{1,18}$")).as_py()
        values = values.cast(pa.int64() if integral else pa.float64())
        kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if unit == "iso":
            raise where.error(f"holds numbers ({kind})", 0, column, "ISO 8601 strings for time_unit='iso'")
        if pa.types.is_floating(kind):
            bad = _first(pc.invert(pc.is_finite(values)))
            if bad is not None:
                raise where.error(f"cannot parse timestamp {values[bad].as_py()!r}", bad, column, _EXPECTED_TIME)
        if unit == "auto":
            peak = max(abs(pc.min(values).as_py()), abs(pc.max(values).as_py()))
            unit = "s" if peak < 1e11 else "ms" if peak < 1e14 else "us" if peak < 1e17 else "ns"
        return _divide(values, _UNIT_SECONDS[unit]), unit
    raise where.error(f"timestamps of type {kind}", 0, column, _EXPECTED_TIME)


def _divide(values: pa.ChunkedArray, factor: int) -> pa.ChunkedArray:
    """Floor division to int64 seconds (floats floor too, so 1.9 s is second 1, like a truncated datetime)."""
    array = values.to_numpy()
    out = np.floor_divide(array, factor) if factor != 1 or array.dtype.kind == "f" else array
    return pa.chunked_array([pa.array(out.astype(np.int64, copy=False))])


def _iso(values: pa.ChunkedArray, column: str, where: _Where) -> pa.ChunkedArray:
    """ISO 8601 strings -> unix seconds. Strings with a zone (``Z``, ``+02:00``) are converted to UTC, the others
    read as UTC; fractions of a second are dropped. The first string that does not parse is reported."""
    values = values.combine_chunks()
    text = pc.replace_substring_regex(values, r"(\d{2}:\d{2}:\d{2})[.,]\d+", r"\1")
    zoned = pc.match_substring_regex(text, r"\d{2}:\d{2}(:\d{2})?\s?(Z|z|[+-]\d{2}(:?\d{2})?)$").to_numpy(
        zero_copy_only=False
    )
    out, failures = np.empty(len(values), dtype=np.int64), []
    for mask, target in ((zoned, pa.timestamp("s", tz="UTC")), (~zoned, pa.timestamp("s"))):
        rows = np.flatnonzero(mask)
        subset = text.take(pa.array(rows))
        try:
            out[rows] = subset.cast(target).cast(pa.int64()).to_numpy()
        except pa.ArrowInvalid:
            lo, hi = 0, len(subset)  # bisect: the first string that does not parse lies in [lo, hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                try:
                    subset.slice(lo, mid - lo).cast(target)
                    lo = mid
                except pa.ArrowInvalid:
                    hi = mid
            failures.append(int(rows[lo]))
    if failures:
        pos = min(failures)
        expected = "an ISO 8601 date such as 2021-03-04 or 2021-03-04T05:06:07Z"
        raise where.error(f"cannot parse timestamp {values[pos].as_py()!r}", pos, column, expected)
    return pa.chunked_array([pa.array(out)])


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
