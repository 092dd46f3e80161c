"""Interaction files -> one raw table: paths, globs and URLs resolved (fsspec for URLs), each file checked for what
its format says, then read with pyarrow, only the needed columns: CSV, TSV, Parquet, JSON Lines, and the research
text formats, SASRec ``user item`` and S3-Rec ``user item1 item2 ...`` lines. A bad file names itself and its row."""

from __future__ import annotations

import contextlib
import glob as globlib
import os
import re
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

from .input_errors import SourceNotFoundError, _error, _Part
from .interaction_log import ITEM, USER

FORMATS = ("csv", "tsv", "parquet", "jsonl", "sasrec", "s3rec")
"""Values of ``format=``: the file formats, then the two research text formats."""
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_EXTENSIONS |= {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_LABELS = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "jsonl": "JSON Lines", "sasrec": "SASRec text"}
_LABELS["s3rec"] = "S3-Rec text"


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


def _read_files(paths: list[str], cols: _Columns, format: str | None):
    """(raw table, parts, format, source name, content descriptor for the fingerprint) of paths, globs or URLs."""
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
    """Ids and times are read as text (ids keep leading zeros; times are parsed in :mod:`.timestamps`)."""
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
