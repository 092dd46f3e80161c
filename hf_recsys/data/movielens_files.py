"""Parsing a release's numeric files: ratings (``u.data``, ``ratings.dat``, ``ratings.csv``), SASRec-format
sequence files and id maps, streamed through pyarrow with exact line errors; and :func:`interaction_log`, which
hands what was read to the shared pipeline (:mod:`hf_recsys.data.log_pipeline`) as an ``InteractionLog``."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from datasets.utils.tqdm import tqdm as hf_tqdm

from .interaction_log import ITEM, ROW, TIME, USER, InteractionLog, _digest
from .movielens_errors import DataFormatError, MissingDataError


# ---------------------------------------------------------------------------------------------------------
# Numeric tables (ratings, SASRec sequences, id maps): pyarrow streaming, exact errors on failure
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TableSpec:
    """Layout of a delimited numeric file. ``kinds`` are ``int``/``float`` per field."""

    separator: str  # as written in the file: "\t", "::", ",", " "
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    header: tuple[str, ...] | None = None

    @property
    def sep_name(self) -> str:
        return {"\t": "tab", " ": "space", ",": "comma", "::": "'::'"}.get(self.separator, repr(self.separator))

    def expected(self) -> str:
        return f"{len(self.names)} {self.sep_name}-separated fields: {' '.join(self.names)}"


_U_DATA = _TableSpec("\t", ("user_id", "item_id", "rating", "timestamp"), ("int", "int", "float", "int"))
_RATINGS_DAT = _TableSpec("::", ("UserID", "MovieID", "Rating", "Timestamp"), ("int", "int", "float", "int"))
_RATINGS_CSV = _TableSpec(
    ",", ("userId", "movieId", "rating", "timestamp"), ("int", "int", "float", "int"),
    header=("userId", "movieId", "rating", "timestamp"),
)  # fmt: skip
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BLOCK_SIZE = 16 << 20
_PROGRESS_MIN_BYTES = 64 << 20


def _sniff_separator(path: Path) -> str:
    """SASRec-style files use one space; some copies use tabs. Decide from the first data line."""
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip():
                return "\t" if b"\t" in raw else " "
    return " "


def _find_bad_line(path: Path, spec: _TableSpec) -> DataFormatError | None:
    """Slow exact scan, run only after the fast reader failed: the first malformed line, if any."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if spec.header is not None and lineno == 1:
                continue
            text = raw.decode("latin-1").rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split(spec.separator)
            if len(fields) != len(spec.names):
                return DataFormatError(f"found {len(fields)} field(s) in {text[:80]!r}", path, lineno, spec.expected())
            for value, name, kind in zip(fields, spec.names, spec.kinds):
                pattern = _INT_RE if kind == "int" else _FLOAT_RE
                if not pattern.fullmatch(value):
                    what = "an integer" if kind == "int" else "a number"
                    return DataFormatError(f"{name} is not {what}: {value!r}", path, lineno, spec.expected())
    return None


def _check_header(path: Path, spec: _TableSpec, first_line: bytes) -> None:
    got = first_line.decode("utf-8-sig", errors="replace").strip().split(spec.separator)
    got = [g.strip().strip('"') for g in got]
    if spec.header is not None and got != list(spec.header):
        raise DataFormatError(f"unexpected header {got}", path, 1, f"header {spec.separator.join(spec.header)}")


def read_numeric_table(
    path: str | os.PathLike[str],
    spec: _TableSpec,
    *,
    transform: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
    desc: str | None = None,
) -> dict[str, np.ndarray]:
    """Parse a delimited all-numeric file into one numpy array per field (bounded memory).

    The fast path streams the file through ``pyarrow.csv`` in 16 MiB blocks (LF or CRLF); each block
    is converted to compact numpy arrays and passed through ``transform`` (e.g. a rating filter)
    before the next one is read, so peak memory is the kept columns plus one block. On any parse
    error the file is rescanned line by line to report the exact line and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError("file not found", path, expected=spec.expected())
    size = path.stat().st_size
    first_data_line = 2 if spec.header is not None else 1
    if size == 0:
        raise DataFormatError("file is empty", path, 1, spec.expected())
    with open(path, "rb") as f:
        if spec.header is not None:
            _check_header(path, spec, f.readline())
            f.seek(0)

        # '::' is not a single character: read with ':' and require the odd columns to be empty.
        double = spec.separator == "::"
        arrow_sep = ":" if double else spec.separator
        columns: list[str] = []
        types: dict[str, pa.DataType] = {}
        for i, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
            if double and i:
                columns.append(f"__gap{i}")
                types[f"__gap{i}"] = pa.string()
            columns.append(name)
            types[name] = pa.int64() if kind == "int" else pa.float64()
        gaps = [c for c in columns if c.startswith("__gap")]

        chunks: dict[str, list[np.ndarray]] = {}
        n_rows = 0
        bar = hf_tqdm(
            total=size, unit="B", unit_scale=True, desc=desc or f"Parsing {path.name}",
            disable=size < _PROGRESS_MIN_BYTES,
        )  # fmt: skip
        try:
            reader = pacsv.open_csv(
                f,
                read_options=pacsv.ReadOptions(
                    column_names=columns, skip_rows=1 if spec.header else 0, block_size=_BLOCK_SIZE
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=arrow_sep, quote_char=False, double_quote=False, ignore_empty_lines=True
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, null_values=[], strings_can_be_null=False, check_utf8=False
                ),
            )
            for batch in reader:
                for g in gaps:
                    lengths = pc.utf8_length(batch.column(g))
                    if len(lengths) and pc.max(lengths).as_py():
                        raise pa.ArrowInvalid(f"non-empty gap column {g}")
                arrays = {n: batch.column(n).to_numpy(zero_copy_only=False) for n in spec.names}
                for n, kind in zip(spec.names, spec.kinds):
                    arrays[n] = _compact(arrays[n], kind)
                n_rows += batch.num_rows
                if transform is not None:
                    arrays = transform(arrays)
                for n, a in arrays.items():
                    chunks.setdefault(n, []).append(a)
                bar.update(max(0, f.tell() - bar.n))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            err = _find_bad_line(path, spec)
            raise err or DataFormatError(f"cannot parse ({e})", path, expected=spec.expected()) from None
        finally:
            bar.close()
    if n_rows == 0:
        raise DataFormatError("file has no data lines", path, first_data_line, spec.expected())
    return {n: np.concatenate(c) if c else np.zeros(0) for n, c in chunks.items()}


def _compact(a: np.ndarray, kind: str) -> np.ndarray:
    """Ids fit in int32 for every MovieLens release; keep int64 only when they do not."""
    if kind == "float":
        return a.astype(np.float32)
    if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
        return a.astype(np.int64)
    return a.astype(np.int32)


@dataclass
class Interactions:
    """Raw interactions in file order (ids are the original MovieLens ids)."""

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray  # int64 seconds; all 0 when the source has no time
    ratings: np.ndarray | None = None  # float32; None when the source has no ratings

    def __len__(self) -> int:
        return int(self.users.size)

    def take(self, index: np.ndarray) -> Interactions:
        return Interactions(
            self.users[index],
            self.items[index],
            self.timestamps[index],
            None if self.ratings is None else self.ratings[index],
        )


def read_ratings(path: str | os.PathLike[str], min_rating: float | None = None) -> Interactions:
    """Read an official ratings file: ``u.data`` (tab), ``ratings.dat`` (``::``) or ``ratings.csv``.

    ``min_rating`` is applied block by block while reading so that large releases stay small.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".csv"):
        spec = _RATINGS_CSV
    elif name.endswith(".dat"):
        spec = _RATINGS_DAT
    else:  # u.data and anything else tab-separated
        spec = _U_DATA
    u, i, r, t = spec.names

    def transform(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {"users": cols[u], "items": cols[i], "ratings": cols[r], "timestamps": cols[t].astype(np.int64)}
        if min_rating is not None:
            keep = out["ratings"] >= min_rating
            out = {k: v[keep] for k, v in out.items()}
        return out

    cols = read_numeric_table(path, spec, transform=transform)
    return Interactions(cols["users"], cols["items"], cols["timestamps"], cols["ratings"])


def read_sasrec(path: str | os.PathLike[str]) -> Interactions:
    """Read a SASRec-format file: ``user item`` per line, each user's items in time order, no timestamps."""
    path = Path(path)
    spec = _TableSpec(_sniff_separator(path) if path.is_file() else " ", ("user", "item"), ("int", "int"))
    cols = read_numeric_table(path, spec)
    return Interactions(cols["user"], cols["item"], np.zeros(cols["user"].size, dtype=np.int64), None)


def read_id_map(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``new_id original_id`` map (e.g. ``sas_to_original_items.txt``); returns (new, original)."""
    path = Path(path)
    spec = _TableSpec(_sniff_separator(path) if path.is_file() else " ", ("new_id", "original_id"), ("int", "int"))
    cols = read_numeric_table(path, spec)
    new, orig = cols["new_id"].astype(np.int64), cols["original_id"].astype(np.int64)
    for arr, what in ((new, "new id"), (orig, "original id")):
        uniq, counts = np.unique(arr, return_counts=True)
        if np.any(counts > 1):
            dup = int(uniq[np.argmax(counts > 1)])
            raise DataFormatError(f"{what} {dup} appears more than once", path, expected="a one-to-one id map")
    return new, orig


def _apply_id_map(values: np.ndarray, mapping: tuple[np.ndarray, np.ndarray], path: Path, what: str) -> np.ndarray:
    new, orig = mapping
    order = np.argsort(new)
    new_sorted, orig_sorted = new[order], orig[order]
    pos = np.searchsorted(new_sorted, values)
    pos_c = np.minimum(pos, new_sorted.size - 1)
    ok = (pos < new_sorted.size) & (new_sorted[pos_c] == values)
    if not np.all(ok):
        bad = int(values[np.flatnonzero(~ok)[0]])
        raise DataFormatError(f"{what} {bad} is not in the id map", path, expected=f"a line '{bad} <original id>'")
    return orig_sorted[pos]


RATING = "rating"
"""The column of the ratings in the :class:`InteractionLog` of an official release (``min_rating`` filters it)."""


def interaction_log(
    inter: Interactions, source: str = "MovieLens interactions", files: Sequence[str | os.PathLike[str]] = ()
) -> InteractionLog:
    """The generic pipeline's input (:mod:`hf_recsys.data.log_pipeline`) from interactions read here.

    Columns ``user_id``, ``item_id`` (int64 original ids), ``timestamp`` (int64 seconds; all null without ratings,
    i.e. for a SASRec-format file, whose file order is the time order), ``rating`` (when the file has ratings) and
    ``row`` (file order, which breaks time ties as it always did). ``source`` names the file in messages; ``source``
    and ``files`` make the log's fingerprint.
    """
    has_time = inter.ratings is not None
    columns: dict[str, pa.Array] = {
        USER: pa.array(inter.users.astype(np.int64)),
        ITEM: pa.array(inter.items.astype(np.int64)),
        TIME: pa.array(inter.timestamps.astype(np.int64)) if has_time else pa.nulls(len(inter), pa.int64()),
    }
    if inter.ratings is not None:
        columns[RATING] = pa.array(inter.ratings)
    columns[ROW] = pa.array(np.arange(len(inter), dtype=np.int64))
    fmt = "movielens" if has_time else "sasrec"
    fingerprint = _digest([[os.fspath(f) for f in files], source, fmt])
    return InteractionLog(pa.table(columns), source, fmt, fingerprint, "s" if has_time else None)
