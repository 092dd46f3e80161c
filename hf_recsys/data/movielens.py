"""MovieLens as a ``datasets`` builder that produces tokenized next-movie examples.

``datasets`` >= 4 no longer runs loading scripts, so :class:`MovieLensBuilder` is a
``datasets.GeneratorBasedBuilder`` that is instantiated directly::

    builder = MovieLensBuilder(config_name="ml-1m", data_dir="../shared/data", cache_dir=...)
    builder.download_and_prepare()
    dataset = builder.as_dataset()            # DatasetDict train / validation / test
    items, users = load_vocabs(builder.cache_dir)

or, in one call, :func:`load_movielens`. Every row says "given this history, the next movie is
``target``" (schema in ``docs/INTERFACES.md`` and :data:`ROW_FEATURES`). The vocabularies
(``item_vocab.json``, ``user_vocab.json``) and a ``movielens_info.json`` summary are written into
the same cache folder, inside the ``.incomplete`` folder that ``datasets`` renames only on success,
so a failed preparation never leaves anything that looks like a finished cache.

The cache key (``builder.hash``) covers the source code of this package's data modules, every
config value and the path/size/mtime of the local input files (or the download URL and MD5), so
editing the code, changing an option or replacing a data file all re-prepare instead of silently
reusing stale Arrow files.

Where the files come from
-------------------------
1. ``data_dir=...`` (or ``MovieLensConfig.data_dir``), else the environment variable
   ``HF_RECSYS_DATA_DIR`` (:data:`DATA_DIR_ENV`): a folder holding a release's files (zip or
   extracted), or a parent folder with one subfolder per release (``ml-1m/``, ``movielens-1m/``...).
   A configured folder that does not exist is a one-line :class:`MissingDataError` saying what to do.
   An explicit ``data_dir`` must hold the release; a ``$HF_RECSYS_DATA_DIR`` folder without it falls
   through to the download.
2. Otherwise the official GroupLens archive is downloaded (plain HTTP, no ``datasets`` download
   manager) into ``<datasets downloads>/movielens/<url digest>/<archive>`` (``<cache_dir>/downloads``
   when ``cache_dir`` is given, else ``$HF_HOME/datasets/downloads``) and extracted next to it in
   ``downloads/extracted/<release>-<md5>/``. The archive is streamed into a temporary file, checked
   against the MD5 that GroupLens publishes, and only then renamed into place; extraction goes to a
   temporary folder renamed on success. A failed or refused download (no network, HTTP error,
   truncated transfer, checksum mismatch) therefore leaves no archive, no extracted files and no
   ``datasets`` cache folder behind, and raises a one-line :class:`MissingDataError` (or
   :class:`ChecksumMismatchError`). Offline mode (``HF_DATASETS_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``,
   i.e. ``datasets.config.HF_HUB_OFFLINE``) refuses the download unless the archive is already in
   the download cache.

Overrides (for mirrors and for tests that serve an archive from a local HTTP server):

- ``HF_RECSYS_GROUPLENS_URL`` (:data:`GROUPLENS_URL_ENV`): where the archives live, either a base URL
  (the archive name is appended: ``http://127.0.0.1:8000/movielens`` ->
  ``http://127.0.0.1:8000/movielens/ml-1m.zip``) or a template containing ``{archive}``. Default
  :data:`GROUPLENS_URL`. Read when the builder is created, like the options below.
- ``HF_RECSYS_GROUPLENS_MD5`` (:data:`GROUPLENS_MD5_ENV`): the MD5 the downloaded archive must have,
  instead of the published one. A mirror of the official archive needs no override.
- Per call: the config options ``url=`` (a URL or a local zip) and ``md5=``, e.g.
  ``load_movielens("ml-1m", url="http://mirror/ml-1m.zip", md5="...")``; they win over the variables.

What a build used is recorded in ``movielens_info.json`` and returned by
:meth:`MovieLensData.describe` (variant ``official``, ``sasrec-benchmark`` or ``sequences``, the file
read, counts), which the training run writes into ``results.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from datasets.utils.tqdm import tqdm as hf_tqdm
from transformers.utils import logging

from .filters import FilterReport
from .interaction_log import ITEM, ROW, TIME, USER, InteractionLog, _digest
from .log_pipeline import prepare_log
from .splits import PROTOCOLS, ROW_FEATURES, SPLITS, SplitRowsBuilder, check_protocol_options, protocol_fractions
from .vocab import ItemVocab, UserVocab, atomic_write_json, load_vocabs, save_vocabs

__all__ = [
    "CONFIG_NAMES",
    "DATA_DIR_ENV",
    "GROUPLENS_MD5_ENV",
    "GROUPLENS_URL",
    "GROUPLENS_URL_ENV",
    "PROTOCOLS",
    "RELEASES",
    "ROW_FEATURES",
    "ChecksumMismatchError",
    "DataFormatError",
    "Interactions",
    "MissingDataError",
    "MovieLensBuilder",
    "MovieLensConfig",
    "MovieLensData",
    "MovieMetadata",
    "Release",
    "UserMetadata",
    "age_group",
    "interaction_log",
    "load_movielens",
    "parse_year",
    "push_dataset_to_hub",
    "read_id_map",
    "read_movies",
    "read_ratings",
    "read_sasrec",
    "read_users",
]

logger = logging.get_logger(__name__)

DATA_DIR_ENV = "HF_RECSYS_DATA_DIR"
"""Environment variable naming a folder with offline copies of the MovieLens files."""

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/{archive}"
"""Default location of the official archives (``{archive}`` is e.g. ``ml-1m.zip``)."""

GROUPLENS_URL_ENV = "HF_RECSYS_GROUPLENS_URL"
"""Environment variable overriding :data:`GROUPLENS_URL`: a base URL or a template with ``{archive}``."""

GROUPLENS_MD5_ENV = "HF_RECSYS_GROUPLENS_MD5"
"""Environment variable overriding the MD5 that a downloaded archive must have (tests, private mirrors)."""

GROUPLENS_LICENSE = "MovieLens terms of use: research use, no redistribution (see the release README)"

INFO_FILE = "movielens_info.json"
_DOWNLOAD_TIMEOUT_S = 60.0
_DOWNLOAD_SUBDIR = "movielens"  # under the datasets download cache


_CITATION = """\
@article{harper2015movielens,
  title={The MovieLens Datasets: History and Context},
  author={Harper, F. Maxwell and Konstan, Joseph A.},
  journal={ACM Transactions on Interactive Intelligent Systems (TiiS)},
  volume={5}, number={4}, pages={19:1--19:19}, year={2015}, doi={10.1145/2827872}
}"""


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


# ---------------------------------------------------------------------------------------------------------
# Releases
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    """One official MovieLens release: archive name, layout inside the archive and checksum."""

    name: str
    archive: str
    folder: str
    ratings: str
    movies: str | None
    users: str | None
    md5: str | None = None
    sasrec_patterns: tuple[str, ...] = ()
    description: str = ""
    title: str = ""
    homepage: str | None = None
    sasrec_description: str = ""

    @property
    def url(self) -> str:
        """Download URL: :data:`GROUPLENS_URL`, or ``$HF_RECSYS_GROUPLENS_URL`` (base URL or template)."""
        template = os.environ.get(GROUPLENS_URL_ENV, "").strip() or GROUPLENS_URL
        if "{archive}" in template:
            return template.format(archive=self.archive)
        return f"{template.rstrip('/')}/{self.archive}"

    @property
    def expected_md5(self) -> str | None:
        """MD5 the archive must have: ``$HF_RECSYS_GROUPLENS_MD5`` if set, else the published one (or None)."""
        override = os.environ.get(GROUPLENS_MD5_ENV, "").strip()
        if override:
            if not _MD5_HEX_RE.fullmatch(override):
                raise ValueError(f"{GROUPLENS_MD5_ENV}={override!r} is not an MD5 digest (32 hexadecimal digits)")
            return override.lower()
        return self.md5

    @property
    def aliases(self) -> tuple[str, ...]:
        """Folder names accepted under a parent data folder (``ml-1m``, ``movielens-1m``, ...)."""
        return tuple(dict.fromkeys((self.name, self.folder, "movielens-" + self.name.removeprefix("ml-"))))


_HOME = "https://grouplens.org/datasets/movielens/"
RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            "ml-100k", "ml-100k.zip", "ml-100k", "u.data", "u.item", "u.user",
            md5="0e33842e24a9c977be4e0107933c0723",
            description="MovieLens 100K (1998): 100,000 ratings, 943 users, 1,682 movies.",
            title="MovieLens 100K", homepage=_HOME + "100k/",
        ),
        Release(
            "ml-1m", "ml-1m.zip", "ml-1m", "ratings.dat", "movies.dat", "users.dat",
            md5="c4d9eecfca2ab87c1945afe126590906",
            sasrec_patterns=("sasrec_ml-1m*.txt", "ml-1m.txt"),
            description="MovieLens 1M (2003): 1,000,209 ratings, 6,040 users, 3,706 movies.",
            title="MovieLens 1M", homepage=_HOME + "1m/",
            sasrec_description="SASRec-format ML-1M benchmark file (items with < 5 ratings removed), "
            "the ML-1M of the SASRec, BERT4Rec and gSASRec papers",
        ),
        Release(
            "ml-10m", "ml-10m.zip", "ml-10M100K", "ratings.dat", "movies.dat", None,
            description="MovieLens 10M (2009): 10,000,054 ratings and 95,580 tags of 10,681 movies.",
            title="MovieLens 10M", homepage=_HOME + "10m/",
        ),
        Release(
            "ml-20m", "ml-20m.zip", "ml-20m", "ratings.csv", "movies.csv", None,
            description="MovieLens 20M (2015): 20,000,263 ratings by 138,493 users.",
            title="MovieLens 20M", homepage=_HOME + "20m/",
        ),
        Release(
            "ml-25m", "ml-25m.zip", "ml-25m", "ratings.csv", "movies.csv", None,
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
            description="MovieLens 25M (2019): 25,000,095 ratings by 162,541 users.",
            title="MovieLens 25M", homepage=_HOME + "25m/",
        ),
        Release(
            "ml-32m", "ml-32m.zip", "ml-32m", "ratings.csv", "movies.csv", None,
            description="MovieLens 32M (2023): 32,000,204 ratings by 200,948 users.",
            title="MovieLens 32M", homepage=_HOME + "32m/",
        ),
        Release(
            "ml-latest-small", "ml-latest-small.zip", "ml-latest-small", "ratings.csv", "movies.csv", None,
            description="MovieLens latest small (2018): 100,836 ratings, 610 users, 9,742 movies.",
            title="MovieLens Latest Small", homepage=_HOME + "latest/",
        ),
    )
}  # fmt: skip
CONFIG_NAMES = (*RELEASES, "sequences")

# ML-1M users.dat codes; ML-100K exact ages are bucketed into the same groups.
_AGE_GROUPS = {"1": "Under 18", "18": "18-24", "25": "25-34", "35": "35-44", "45": "45-49", "50": "50-55", "56": "56+"}
_OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer",
    "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
_GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_NO_GENRES = "(no genres listed)"
_YEAR_RE = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$")
_MD5_RE = re.compile(r"\b([0-9a-fA-F]{32})\b")
_MD5_HEX_RE = re.compile(r"[0-9a-fA-F]{32}")


def age_group(age: int) -> str:
    """ML-1M age group label of an exact age (used for ML-100K's ``u.user``)."""
    for bound, label in ((18, "Under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55")):
        if age < bound:
            return label
    return "56+"


def parse_year(title: str) -> int | None:
    """Release year from a MovieLens title such as ``"Toy Story (1995)"`` (None if absent)."""
    m = _YEAR_RE.search(title)
    return int(m.group(1)) if m else None


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


def interaction_log(inter: Interactions, inputs: _Inputs | None = None, source: str | None = None) -> InteractionLog:
    """The generic pipeline's input (:mod:`hf_recsys.data.log_pipeline`) from interactions read here.

    Columns ``user_id``, ``item_id`` (int64 original ids), ``timestamp`` (int64 seconds; all null without ratings,
    i.e. for a SASRec-format file, whose file order is the time order), ``rating`` (when the file has ratings) and
    ``row`` (file order, which breaks time ties as it always did).
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
    files = [] if inputs is None else [str(p) for p in inputs.files()]
    if source is None:
        path = None if inputs is None else (inputs.ratings or inputs.sequences)
        source = "MovieLens interactions" if path is None else str(path)
    fmt = "movielens" if has_time else "sasrec"
    return InteractionLog(pa.table(columns), source, fmt, _digest([files, source, fmt]), "s" if has_time else None)


# ---------------------------------------------------------------------------------------------------------
# Side information (small files: plain Python)
# ---------------------------------------------------------------------------------------------------------
@dataclass
class MovieMetadata:
    """Per-movie title, year and genres keyed by the original movie id."""

    titles: dict[int, str] = field(default_factory=dict)
    years: dict[int, int | None] = field(default_factory=dict)
    genres: dict[int, list[str]] = field(default_factory=dict)
    genre_names: list[str] = field(default_factory=list)

    def add(self, movie_id: int, title: str, genres: list[str]) -> None:
        self.titles[movie_id] = title
        self.years[movie_id] = parse_year(title)
        self.genres[movie_id] = genres


@dataclass
class UserMetadata:
    """Per-user gender, age group and occupation keyed by the original user id."""

    gender: dict[int, str] = field(default_factory=dict)
    age: dict[int, str] = field(default_factory=dict)
    occupation: dict[int, str] = field(default_factory=dict)


def _read_text_lines(path: Path, encoding: str | None = None) -> list[str]:
    """Lines without line endings (LF or CRLF). Without ``encoding``: UTF-8, else latin-1."""
    if not path.is_file():
        raise MissingDataError("file not found", path)
    data = path.read_bytes()
    if not data.strip():
        raise DataFormatError("file is empty", path, 1)
    if encoding is None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        text = data.decode(encoding)
    return text.splitlines()


def _parse_int(value: str, path: Path, lineno: int, name: str, expected: str) -> int:
    if not _INT_RE.fullmatch(value.strip()):
        raise DataFormatError(f"{name} is not an integer: {value!r}", path, lineno, expected)
    return int(value)


def read_movies(path: str | os.PathLike[str]) -> MovieMetadata:
    """Read movie metadata: ``u.item`` (ML-100K), ``movies.dat`` (ML-1M/10M) or ``movies.csv`` (ML-20M+)."""
    path = Path(path)
    name = path.name.lower()
    meta = MovieMetadata()
    if name.endswith(".csv"):
        import csv

        lines = _read_text_lines(path)
        expected = "3 comma-separated fields: movieId,title,genres"
        rows = csv.reader(lines)
        header = next(rows)
        if [h.strip() for h in header] != ["movieId", "title", "genres"]:
            raise DataFormatError(f"unexpected header {header}", path, 1, "header movieId,title,genres")
        for lineno, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != 3:
                raise DataFormatError(f"found {len(row)} field(s)", path, lineno, expected)
            mid = _parse_int(row[0], path, lineno, "movieId", expected)
            genres = [] if row[2] in ("", _NO_GENRES) else row[2].split("|")
            meta.add(mid, row[1].strip(), genres)
        meta.genre_names = sorted({g for gs in meta.genres.values() for g in gs})
    elif name.endswith(".dat"):
        expected = "3 '::'-separated fields: MovieID::Title::Genres"
        for lineno, line in enumerate(_read_text_lines(path), start=1):
            if not line.strip():
                continue
            parts = line.split("::")
            if len(parts) < 3:
                raise DataFormatError(f"found {len(parts)} field(s) in {line[:80]!r}", path, lineno, expected)
            mid = _parse_int(parts[0], path, lineno, "MovieID", expected)
            title = "::".join(parts[1:-1]).strip()
            genres = [] if parts[-1] in ("", _NO_GENRES) else parts[-1].split("|")
            meta.add(mid, title, genres)
        meta.genre_names = sorted({g for gs in meta.genres.values() for g in gs})
    elif name.endswith(".item"):
        genre_names = list(_GENRES_100K)
        genre_file = path.with_name("u.genre")
        if genre_file.is_file():
            pairs = [ln.split("|") for ln in _read_text_lines(genre_file, "latin-1") if ln.strip()]
            genre_names = [p[0] for p in sorted(pairs, key=lambda p: int(p[1]))]
        n_fields = 5 + len(genre_names)
        expected = f"{n_fields} '|'-separated fields: movie id|title|release date|video date|URL|{len(genre_names)} genre flags"
        for lineno, line in enumerate(_read_text_lines(path, "latin-1"), start=1):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) != n_fields:
                raise DataFormatError(f"found {len(parts)} field(s)", path, lineno, expected)
            mid = _parse_int(parts[0], path, lineno, "movie id", expected)
            flags = parts[5:]
            genres = [g for g, flag in zip(genre_names, flags) if flag.strip() == "1"]
            meta.add(mid, parts[1].strip(), genres)
            if meta.years[mid] is None and re.search(r"\d{4}$", parts[2].strip()):
                meta.years[mid] = int(parts[2].strip()[-4:])  # release date "01-Jan-1995"
        meta.genre_names = genre_names
    else:
        raise DataFormatError("unknown movie metadata format", path, expected="u.item, movies.dat or movies.csv")
    return meta


def read_users(path: str | os.PathLike[str]) -> UserMetadata:
    """Read user demographics: ``u.user`` (ML-100K, exact ages bucketed) or ``users.dat`` (ML-1M)."""
    path = Path(path)
    meta = UserMetadata()
    if path.name.lower().endswith(".dat"):
        sep, expected = "::", "5 '::'-separated fields: UserID::Gender::Age::Occupation::Zip-code"
        order = ("gender", "age", "occupation")
    else:
        sep, expected = "|", "5 '|'-separated fields: user id|age|gender|occupation|zip code"
        order = ("age", "gender", "occupation")
    for lineno, line in enumerate(_read_text_lines(path, "latin-1"), start=1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) != 5:
            raise DataFormatError(f"found {len(parts)} field(s) in {line[:80]!r}", path, lineno, expected)
        uid = _parse_int(parts[0], path, lineno, "user id", expected)
        values = dict(zip(order, (p.strip() for p in parts[1:4])))
        meta.gender[uid] = values["gender"]
        if sep == "::":
            meta.age[uid] = _AGE_GROUPS.get(values["age"], values["age"])
            occ = values["occupation"]
            meta.occupation[uid] = _OCCUPATIONS_1M[int(occ)] if occ.isdigit() and int(occ) < 21 else occ
        else:
            meta.age[uid] = age_group(_parse_int(values["age"], path, lineno, "age", expected))
            meta.occupation[uid] = values["occupation"]
    return meta


# ---------------------------------------------------------------------------------------------------------
# Locating the input files (offline folder, archive or download)
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Inputs:
    """The local files one preparation reads (``archive``: a zip still to verify and extract)."""

    description: str
    ratings: Path | None = None
    sequences: Path | None = None
    movies: Path | None = None
    users: Path | None = None
    item_map: Path | None = None
    user_map: Path | None = None
    archive: Path | None = None
    downloaded: bool = False  # archive fetched from ``url`` into the download cache (already MD5-checked)
    fallback: bool = False
    url: str | None = None  # where the archive came from (a download)
    archive_name: str | None = None  # the zip the files were extracted from
    md5: str | None = None  # MD5 of that zip

    def files(self) -> list[Path]:
        fields = (self.archive, self.ratings, self.sequences, self.movies, self.users, self.item_map, self.user_map)
        return [p for p in fields if p is not None]


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _candidate_dirs(release: Release, root: Path) -> list[Path]:
    dirs = [root]
    for alias in release.aliases:
        dirs += [root / alias, root / alias / release.folder]
    dirs.append(root / release.folder)
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def _first_file(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _locate_release(release: Release, root: Path, *, allow_archive: bool = True) -> _Inputs | None:
    """Find a release's files under ``root`` (the folder itself, a named subfolder, or its zip)."""
    if root.is_file() and root.suffix == ".zip":
        return _Inputs(f"{release.name} archive {root}", archive=root) if allow_archive else None
    dirs = _candidate_dirs(release, root)
    for d in dirs:
        if (d / release.ratings).is_file():
            return _Inputs(
                f"{release.name} official files in {d}",
                ratings=d / release.ratings,
                movies=_first_file(d / release.movies) if release.movies else None,
                users=_first_file(d / release.users) if release.users else None,
            )
        if allow_archive and (d / release.archive).is_file():
            return _Inputs(f"{release.name} archive {d / release.archive}", archive=d / release.archive)
    for d in dirs:
        for pattern in release.sasrec_patterns:
            matches = sorted(d.glob(pattern))
            if matches:
                return _Inputs(
                    f"{release.name} SASRec-format file {matches[0]} (fallback: no {release.ratings} found)",
                    sequences=matches[0],
                    item_map=_first_file(d / "sources" / "sas_to_original_items.txt", d / "sas_to_original_items.txt"),
                    user_map=_first_file(d / "sources" / "sas_to_original_users.txt", d / "sas_to_original_users.txt"),
                    movies=_first_file(d / release.movies) if release.movies else None,
                    users=_first_file(d / release.users) if release.users else None,
                    fallback=True,
                )
    return None


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify_md5(path: Path, expected: str, source: str) -> str:
    """Raise :class:`ChecksumMismatchError` unless ``path`` has MD5 ``expected``; returns the digest."""
    actual = _md5(path)
    if actual != expected.lower():
        raise ChecksumMismatchError(
            f"MD5 checksum mismatch: got {actual}, the file may be truncated or corrupted; "
            f"delete it and download {source} again",
            path,
            expected=f"MD5 {expected.lower()}",
        )
    return actual


# ---------------------------------------------------------------------------------------------------------
# Downloading and extracting (temp file / temp folder + rename: a failure leaves nothing behind)
# ---------------------------------------------------------------------------------------------------------
_USER_AGENT = f"hf-recsys (datasets/{datasets.__version__}; python-urllib)"


class _TruncatedDownload(OSError):
    """The server closed the connection before Content-Length bytes arrived."""


# what a failed transfer raises (urllib.error.URLError and HTTPError are OSErrors; disk errors are not caught)
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, _TruncatedDownload)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _offline_mode() -> bool:
    """The ``datasets`` offline switch (``HF_DATASETS_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``), read at call time."""
    return bool(getattr(datasets.config, "HF_HUB_OFFLINE", getattr(datasets.config, "HF_DATASETS_OFFLINE", False)))


def _is_http_url(value: str) -> bool:
    return value.split("://", 1)[0].lower() in ("http", "https", "ftp") and "://" in value


def _url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _download_reason(e: BaseException) -> str:
    """A short, one-line reason for a failed transfer."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        reason = e.reason
        return _one_line(f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else reason)
    if isinstance(e, _TruncatedDownload):
        return str(e)
    if isinstance(e, http.client.IncompleteRead):
        return f"connection closed after {len(e.partial)} bytes, {e.expected} more expected"
    if isinstance(e, TimeoutError):
        return f"no answer within {_DOWNLOAD_TIMEOUT_S:.0f} s"
    return _one_line(f"{type(e).__name__}: {e}")


def _makedirs(path: Path) -> list[Path]:
    """``mkdir -p`` that returns the folders it created (outermost first), for :func:`_remove_empty`."""
    missing = []
    d = path
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    path.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _remove_empty(dirs: list[Path]) -> None:
    """Remove the folders :func:`_makedirs` created, innermost first, if they are still empty."""
    for d in reversed(dirs):
        with contextlib.suppress(OSError):  # not empty (e.g. another process uses it) or already gone
            d.rmdir()


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_md5_file(path: Path) -> str | None:
    """The digest in a GroupLens-style ``<archive>.md5`` file (``MD5 (ml-1m.zip) = ...`` or a bare digest)."""
    if not path.is_file():
        return None
    m = _MD5_RE.search(path.read_text(errors="replace"))
    return m.group(1).lower() if m else None


def _fetch_text(url: str, limit: int = 1 << 16) -> str:
    """GET a small text resource (a published checksum) into memory."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        return response.read(limit).decode("utf-8", errors="replace")


def _fetch(url: str, dest: Path, *, expected_md5: str | None) -> str:
    """Download ``url`` to ``dest``; returns its MD5.

    The bytes are streamed into a temporary file next to ``dest`` while their MD5 is computed; the
    file is renamed to ``dest`` only when the transfer is complete (Content-Length bytes) and the
    digest equals ``expected_md5`` (if given). On any failure the temporary file and the folders this
    call created are removed, so the download cache never holds a partial or unverified archive.
    """
    created = _makedirs(dest.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".incomplete", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as f:
            request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
            with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                received = 0
                with hf_tqdm(
                    total=total, unit="B", unit_scale=True, desc=f"Downloading {dest.name}",
                    disable=total is not None and total < (1 << 20),
                ) as bar:  # fmt: skip
                    while chunk := response.read(1 << 20):
                        f.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                if total is not None and received != total:
                    raise _TruncatedDownload(f"connection closed after {received} of {total} bytes")
            f.flush()
            os.fsync(f.fileno())
        actual = digest.hexdigest()
        if expected_md5 is not None and actual != expected_md5.lower():
            err = ChecksumMismatchError(
                f"MD5 checksum mismatch: the archive downloaded from {url} has MD5 {actual}, expected "
                f"{expected_md5.lower()}; it was not kept. Retry later, or set {DATA_DIR_ENV} to a folder "
                f"holding a verified copy"
            )
            err.path = url
            raise err
        os.replace(tmp, dest)
        return actual
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        raise


def _extract_zip(archive: Path, root: Path, key: str, *, force: bool = False) -> Path:
    """Extract ``archive`` into ``root/key`` and return that folder.

    Extraction goes to a temporary folder that is renamed to ``root/key`` on success (a finished
    extraction is reused unless ``force``); on failure the temporary folder is removed.
    """
    final = root / key
    if final.is_dir() and not force:
        return final
    created = _makedirs(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".incomplete", dir=root))
    try:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
            raise DataFormatError(
                f"cannot extract archive ({_download_reason(e)})", archive, expected="a zip"
            ) from None
        if final.is_dir():  # force: swap the old extraction out, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".old", dir=root))
            os.replace(final, old / key)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same extraction first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise
    return final


# ---------------------------------------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------------------------------------
@dataclass
class MovieLensConfig(datasets.BuilderConfig):
    """Options of one MovieLens preparation. Every field is part of the cache key.

    Attributes:
        protocol: ``leave-one-out`` (default), ``seed-windows`` or ``temporal``.
        seed: random seed of the ``seed-windows`` train/validation/test assignment.
        min_rating: keep only ratings >= this value (None: keep all).
        k_core: iteratively keep users and items with >= k interactions (None: off).
        window_size, window_step: ``seed-windows`` window length and stride (4 and 2 as in the notebook).
        test_fraction: ``seed-windows``: share of windows in test (0.15); ``temporal``: share of
            interactions after the test cut (0.1). None = the protocol's default.
        validation_fraction: ``seed-windows``: share of the non-test windows carved out for validation
            (0.1); ``temporal``: share of interactions between the two cuts (0.1).
        url, md5: override the download location and checksum of the official archive.
        sequences_path, item_map_path, user_map_path, item_metadata_path, user_metadata_path: inputs of
            the ``sequences`` config (local paths, relative to ``data_dir`` if given, or URLs).
    """

    protocol: str = "leave-one-out"
    seed: int = 42
    min_rating: float | None = None
    k_core: int | None = None
    window_size: int = 4
    window_step: int = 2
    test_fraction: float | None = None
    validation_fraction: float | None = None
    url: str | None = None
    md5: str | None = None
    sequences_path: str | None = None
    item_map_path: str | None = None
    user_map_path: str | None = None
    item_metadata_path: str | None = None
    user_metadata_path: str | None = None

    def validate(self) -> None:
        """Reject option values that cannot work, before any file is read."""
        if self.md5 is not None and not _MD5_HEX_RE.fullmatch(self.md5):
            raise ValueError(f"md5 must be an MD5 digest (32 hexadecimal digits), got {self.md5!r}")
        check_protocol_options(
            self.protocol, self.window_size, self.window_step, self.test_fraction, self.validation_fraction
        )
        if self.k_core is not None and (int(self.k_core) != self.k_core or self.k_core < 1):
            raise ValueError(f"k_core must be a positive integer or None, got {self.k_core!r}")

    def fractions(self) -> tuple[float, float]:
        """(test, validation) fractions with the protocol defaults filled in (`splits.protocol_fractions`)."""
        return protocol_fractions(self.protocol, self.test_fraction, self.validation_fraction)

    def filter_spec(self) -> list[tuple[str, dict[str, Any]]]:
        """The generic filters (:func:`~hf_recsys.data.filters.apply_filters` entries) these options ask for:
        ``min_rating`` on the ``rating`` column, then ``k_core`` with the same k for users and items. MovieLens has
        no ``min_history``: a user too short for a split simply gets no row there, as it always did."""
        spec: list[tuple[str, dict[str, Any]]] = []
        if self.min_rating is not None:
            spec.append(("min_rating", {"column": RATING, "threshold": self.min_rating}))
        if self.k_core:
            spec.append(("k_core", {"user_k": int(self.k_core), "item_k": int(self.k_core)}))
        return spec

    def cache_params(self) -> dict[str, Any]:
        """All option values as JSON-friendly data (for the cache key)."""
        skip = {"data_files", "description"}
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        return json.loads(json.dumps(params, sort_keys=True, default=str))


_VERSION = datasets.Version("1.2.0")  # bump when the builder's output (rows, vocabularies, info) changes
_INFO_DESCRIPTION = "MovieLens ratings as tokenized next-movie examples (history -> target)."


# the modules that turn the log this module reads into rows: the shared pipeline of every builder
_PIPELINE_MODULES = tuple(
    f"{__package__}.{name}"
    for name in ("log_pipeline", "filters", "interaction_log", "input_errors", "splits", "vocab")
)


def _module_sources_digest() -> str:
    """Digest of the code that shapes the prepared data: this module, the shared pipeline and the vocabularies.

    Editing the parsing, filtering, splitting or tokenization code invalidates caches; unrelated modules
    (collator, models) do not.
    """
    h = hashlib.sha256()
    for module in (__name__, *_PIPELINE_MODULES, ItemVocab.__module__):
        path = Path(sys.modules[module].__file__ or "")
        h.update(module.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class MovieLensBuilder(SplitRowsBuilder):
    """``datasets`` builder for MovieLens releases and SASRec-format sequence files.

    Configs: ``ml-100k``, ``ml-1m`` (default), ``ml-10m``, ``ml-20m``, ``ml-25m``, ``ml-32m``,
    ``ml-latest-small`` (official GroupLens archives, MD5-checked) and ``sequences`` (a SASRec
    text file given by ``sequences_path``). Offline: pass ``data_dir`` or set ``HF_RECSYS_DATA_DIR``
    to a folder holding the official files (zip or extracted), or a parent folder with one
    subfolder per release (``ml-1m/`` or ``movielens-1m/``...). Option values are config kwargs::

        MovieLensBuilder(config_name="ml-1m", data_dir=..., cache_dir=..., dataset_name="movielens",
                         protocol="seed-windows", seed=0)
    """

    VERSION = _VERSION
    BUILDER_CONFIG_CLASS = MovieLensConfig
    BUILDER_CONFIGS = [
        *(MovieLensConfig(name=r.name, version=_VERSION, description=r.description) for r in RELEASES.values()),
        MovieLensConfig(
            name="sequences",
            version=_VERSION,
            description="A SASRec-format file (`user item` per line, chronological per user), "
            "optionally with id maps and item/user metadata.",
        ),
    ]
    DEFAULT_CONFIG_NAME = "ml-1m"
    config: MovieLensConfig

    def __init__(self, *args: Any, config_name: str | None = None, **kwargs: Any) -> None:
        if config_name is not None and config_name not in CONFIG_NAMES:
            raise ValueError(f"unknown MovieLens config {config_name!r}; expected one of {list(CONFIG_NAMES)}")
        self._inputs: _Inputs | None = None  # resolved by download_and_prepare before datasets writes anything
        self._download_source: tuple[str, str | None] | None = None
        super().__init__(*args, config_name=config_name, **kwargs)
        self.config.validate()  # bad option values fail here, before any file is touched

    # -- cache key ------------------------------------------------------------------------------------------
    def _build_cache_dir(self) -> str:
        # Called by DatasetBuilder.__init__ once the config exists: the hash becomes part of the path.
        if self.hash is None:
            self.hash = self._compute_hash()
        return super()._build_cache_dir()

    def _configured_data_dir(self) -> tuple[Path, str] | None:
        """The local folder to read and how it was configured (``data_dir=...`` or ``HF_RECSYS_DATA_DIR=...``)."""
        if self.config.data_dir:
            return Path(self.config.data_dir).expanduser(), f"data_dir={self.config.data_dir}"
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        return (Path(env).expanduser(), f"{DATA_DIR_ENV}={env}") if env else None

    def _effective_data_dir(self) -> Path | None:
        configured = self._configured_data_dir()
        return None if configured is None else configured[0]

    def _check_data_dir(self) -> None:
        """A configured folder that does not exist: one line saying what to do, before anything is written."""
        configured = self._configured_data_dir()
        if configured is None or configured[0].exists():
            return
        if self.config.name == "sequences" and not self.config.data_dir:
            return  # the variable only helps resolve relative paths of `sequences`; its own files say what is missing
        path, origin = configured
        if self.config.name == "sequences":
            todo = "point it at the folder that holds the sequence file, or give sequences_path as an absolute path"
        else:
            archive = RELEASES[self.config.name].archive
            unset = "unset it" if self.config.data_dir is None else f"omit data_dir (and leave {DATA_DIR_ENV} unset)"
            todo = f"{unset} to download the official archive, or point it at a folder holding {archive} or its files"
        err = MissingDataError(f"{origin}: folder not found; {todo}")
        err.path = str(path)
        raise err

    def _source_url_md5(self) -> tuple[str, str | None]:
        """Where the release archive is downloaded from and the MD5 it must have (None: fetch the published one).

        ``url=``/``md5=`` options win over ``$HF_RECSYS_GROUPLENS_URL``/``$HF_RECSYS_GROUPLENS_MD5``, which win
        over the built-in values. Read once, when the builder is created (the values are part of the cache key).
        """
        if self._download_source is None:
            release = RELEASES[self.config.name]
            self._download_source = (self.config.url or release.url, self.config.md5 or release.expected_md5)
        return self._download_source

    def _compute_hash(self) -> str:
        """Source code + every option + path/size/mtime of the local inputs or the download URL/MD5 (no reading)."""
        self._check_data_dir()
        files: list[Any] = []
        download = None
        try:
            inputs = self._locate_local(quiet=True)
        except Exception as e:  # the error is raised again, properly, by download_and_prepare
            inputs, files = None, [f"unresolved: {type(e).__name__}"]
        if inputs is not None:
            for p in inputs.files():
                st = p.stat()
                files.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        elif self.config.name != "sequences" and not files:
            download = self._source_url_md5()
        payload = {
            "code": _module_sources_digest(),
            "version": str(self.VERSION),
            "config": self.config.cache_params(),
            "data_dir": str(self._effective_data_dir()),
            "inputs": files,
            "download": download,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # -- datasets API ---------------------------------------------------------------------------------------
    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_INFO_DESCRIPTION,
            features=ROW_FEATURES,
            homepage="https://grouplens.org/datasets/movielens/",
            citation=_CITATION,
            license=GROUPLENS_LICENSE,
        )

    def download_and_prepare(
        self,
        output_dir: str | None = None,
        download_config: datasets.DownloadConfig | None = None,
        download_mode: str | datasets.DownloadMode | None = None,
        **kwargs: Any,
    ) -> None:
        """Resolve the inputs (download, MD5 check, extraction), then let ``datasets`` prepare the splits.

        The inputs are resolved before ``datasets`` creates its cache folder, so a missing file, a failed
        download or a checksum mismatch leaves no cache folder (``<hash>``, ``<hash>.incomplete``) behind.
        Nothing is resolved when the prepared dataset is already cached and may be reused.
        """
        mode = datasets.DownloadMode(download_mode or datasets.DownloadMode.REUSE_DATASET_IF_EXISTS)
        target = Path(output_dir if output_dir is not None else self._cache_dir)
        cached = (target / datasets.config.DATASET_INFO_FILENAME).is_file()
        if not (cached and mode == datasets.DownloadMode.REUSE_DATASET_IF_EXISTS):
            self._inputs = self._resolve_inputs(force=mode == datasets.DownloadMode.FORCE_REDOWNLOAD)
        try:
            super().download_and_prepare(output_dir, download_config, download_mode, **kwargs)
        finally:
            self._inputs = None

    # -- locating, downloading and extracting the inputs ---------------------------------------------------
    @property
    def _download_dir(self) -> Path:
        """``<datasets downloads>/movielens``: ``<cache_dir>/downloads`` or ``$HF_HOME/datasets/downloads``."""
        return Path(self._cache_downloaded_dir) / _DOWNLOAD_SUBDIR

    @property
    def _extract_root(self) -> Path:
        return Path(self._cache_downloaded_dir) / "extracted"

    def _locate_local(self, quiet: bool = False) -> _Inputs | None:
        """The local files to read; None when the release must be downloaded. Reads nothing, downloads nothing."""
        cfg = self.config
        data_dir = self._effective_data_dir()
        if cfg.name == "sequences":
            return self._locate_sequences(data_dir, download=False)
        release = RELEASES[cfg.name]
        if data_dir is None:
            return None
        self._check_data_dir()
        found = _locate_release(release, data_dir)
        if found is not None:
            return found
        looked = ", ".join(str(d) for d in [data_dir, *(data_dir / a for a in release.aliases)])
        message = f"no {release.name} files found: looked for {release.ratings} or {release.archive} in {looked}"
        if cfg.data_dir:  # an explicit folder must hold the data; the env var may just lack this release
            raise MissingDataError(
                f"{message}; put them there, or omit data_dir to download the official archive",
                data_dir,
                expected=f"{release.ratings} or {release.archive}",
            )
        if not quiet:
            logger.info("%s (from $%s); downloading %s instead", message, DATA_DIR_ENV, self._source_url_md5()[0])
        return None

    def _resolve_inputs(self, force: bool = False) -> _Inputs:
        """The files one preparation reads: local ones, or the release downloaded and extracted."""
        cfg = self.config
        if cfg.name == "sequences":
            return self._locate_sequences(self._effective_data_dir(), download=True, force=force)
        release = RELEASES[cfg.name]
        inputs = self._locate_local()
        if inputs is None:
            inputs = self._download_release(release, force=force)
        if inputs.archive is not None:
            inputs = self._extract(release, inputs, force=force)
        return inputs

    def _resolve_path(self, value: str | None, data_dir: Path | None, what: str, download: bool, force: bool):
        if value is None:
            return None
        if _is_url(value):
            return self._download_file(value, what, force) if download else None
        path = Path(value.removeprefix("file://")).expanduser()
        if not path.is_absolute() and data_dir is not None and (data_dir / path).exists():
            path = data_dir / path
        if not path.is_file():
            raise MissingDataError(f"{what} not found", path)
        return path

    def _locate_sequences(self, data_dir: Path | None, download: bool, force: bool = False) -> _Inputs:
        cfg = self.config
        if not cfg.sequences_path:
            raise ValueError("the 'sequences' config needs sequences_path=<SASRec-format file: 'user item' per line>")
        res = {
            key: self._resolve_path(getattr(cfg, attr), data_dir, what, download, force)
            for key, attr, what in (
                ("sequences", "sequences_path", "sequence file"),
                ("item_map", "item_map_path", "item id map"),
                ("user_map", "user_map_path", "user id map"),
                ("movies", "item_metadata_path", "item metadata"),
                ("users", "user_metadata_path", "user metadata"),
            )
        }
        return _Inputs(f"SASRec-format file {cfg.sequences_path}", **res)

    def _download_error(self, url: str, reason: str, release: Release | None = None) -> MissingDataError:
        """The one-line error of a failed download: URL, reason, what to do."""
        note = ""
        configured = self._configured_data_dir()
        if release is not None and configured is not None:
            note = f" ({configured[1]} holds no {release.name} files)"
        local = f"a folder holding {release.archive} or its extracted files" if release else "a local copy"
        err = MissingDataError(
            _one_line(
                f"could not download {url}: {reason}{note}. To use local files instead, set {DATA_DIR_ENV} "
                f"(or pass data_dir=...) to {local}"
            )
        )
        err.path = url
        return err

    def _download_file(self, url: str, what: str, force: bool) -> Path:
        """A sequences-config input given as a URL (no checksum): cached under the download folder."""
        if not _is_http_url(url):  # hf://, s3://...: the datasets/fsspec machinery
            from datasets.utils.file_utils import cached_path

            try:
                config = datasets.DownloadConfig(cache_dir=self._cache_downloaded_dir, force_download=force)
                return Path(cached_path(url, download_config=config))
            except Exception as e:
                raise self._download_error(url, f"{what}: {_download_reason(e)}") from e
        dest = self._download_dir / _url_digest(url) / (Path(url.split("?")[0]).name or "file")
        if dest.is_file() and not force:
            return dest
        if _offline_mode():
            raise self._download_error(url, f"{what}: offline mode is on (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE)")
        try:
            _fetch(url, dest, expected_md5=None)
        except _NETWORK_ERRORS as e:
            raise self._download_error(url, f"{what}: {_download_reason(e)}") from e
        return dest

    def _download_release(self, release: Release, force: bool = False) -> _Inputs:
        """The release archive from the download cache, or downloaded into it (MD5-checked before it is kept)."""
        url, expected = self._source_url_md5()
        if not _is_url(url):  # url=<local zip>: verified (never deleted) by _extract
            path = Path(url.removeprefix("file://")).expanduser()
            if not path.is_file():
                raise MissingDataError(f"url={url}: file not found", path, expected=release.archive)
            return _Inputs(f"{release.name} archive {path}", archive=path, url=url)
        name = Path(url.split("?")[0]).name or release.archive
        dest = self._download_dir / _url_digest(url) / name
        sidecar = dest.with_name(f"{name}.md5")
        if dest.is_file() and not force:
            known = expected or _read_md5_file(sidecar)
            if known is not None and _md5(dest) == known.lower():
                logger.info("Using the cached download %s of %s", dest, url)
                return _Inputs(
                    f"{release.name} archive downloaded from {url}", archive=dest, downloaded=True, url=url, md5=known
                )
            logger.warning("The cached download %s does not have the expected MD5; downloading it again", dest)
            dest.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
        if _offline_mode():
            raise self._download_error(url, "offline mode is on (HF_DATASETS_OFFLINE=1 or HF_HUB_OFFLINE=1)", release)
        if expected is None:
            md5_url = f"{url}.md5"
            try:
                text = _fetch_text(md5_url)
            except _NETWORK_ERRORS as e:
                raise self._download_error(md5_url, f"{_download_reason(e)} (the published checksum)", release) from e
            m = _MD5_RE.search(text)
            if m is None:
                raise DataFormatError(
                    f"no MD5 digest in the published checksum; pass md5=... or set {GROUPLENS_MD5_ENV}", md5_url
                )
            expected = m.group(1).lower()
        logger.info("Downloading %s (MD5 %s) to %s", url, expected, dest)
        try:
            digest = _fetch(url, dest, expected_md5=expected)
        except _NETWORK_ERRORS as e:
            raise self._download_error(url, _download_reason(e), release) from e
        try:
            _atomic_write_text(sidecar, f"MD5 ({name}) = {digest}\n")
        except OSError:  # only a shortcut for the next offline run
            logger.warning("could not write %s", sidecar)
        return _Inputs(
            f"{release.name} archive downloaded from {url}", archive=dest, downloaded=True, url=url, md5=digest
        )

    def _extract(self, release: Release, inputs: _Inputs, force: bool = False) -> _Inputs:
        archive = inputs.archive
        assert archive is not None
        digest = inputs.md5
        if not inputs.downloaded:  # a local zip: check it against the published (or given) MD5
            expected = self._source_url_md5()[1] if inputs.url else (self.config.md5 or release.md5)
            expected = expected or _read_md5_file(Path(f"{archive}.md5"))
            if expected is not None:
                digest = _verify_md5(archive, expected, release.url)
            else:
                logger.info("no published MD5 for %s available offline; not verified", archive)
                digest = _md5(archive)
        assert digest is not None
        folder = _extract_zip(archive, self._extract_root, f"{release.name}-{digest}", force=force)
        found = _locate_release(release, folder, allow_archive=False)
        if found is None or found.ratings is None:
            shutil.rmtree(folder, ignore_errors=True)
            raise MissingDataError(
                f"archive does not contain {release.folder}/{release.ratings}", archive, expected=release.archive
            )
        found.description = f"{inputs.description} (extracted to {folder})"
        found.url, found.archive_name, found.md5, found.downloaded = inputs.url, archive.name, digest, inputs.downloaded
        return found

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        cfg = self.config
        cfg.validate()
        inputs = self._inputs if self._inputs is not None else self._resolve_inputs()
        if inputs.fallback:
            logger.warning(
                "%s: the official %s is not in the data folder; FALLING BACK to the SASRec-format file %s "
                "(items with < 5 ratings removed, ratings and timestamps absent; titles via %s)",
                cfg.name, RELEASES[cfg.name].ratings, inputs.sequences, inputs.item_map,
            )  # fmt: skip
        logger.info("Preparing MovieLens %s (%s) from %s", cfg.name, cfg.protocol, inputs.description)

        if cfg.min_rating is not None and inputs.ratings is None:
            raise ValueError(f"min_rating={cfg.min_rating} needs ratings; {inputs.description} has none")
        inter, movies, users_meta = self._read_inputs(inputs)
        log = interaction_log(inter, inputs)
        del inter
        # the generic pipeline from here on: sort, filters, vocabularies (with MovieLens' side information), rows
        prep = prepare_log(
            log,
            cfg.filter_spec(),
            cfg,
            item_vocab=functools.partial(self._item_vocab, movies=movies),
            user_vocab=functools.partial(self._user_vocab, meta=users_meta),
            no_time_expected="the official ratings file: the SASRec-format file has no timestamps",
        )
        del log
        seqs, rows, item_vocab, user_vocab = prep.seqs, prep.rows, prep.items, prep.users

        save_vocabs(self._output_dir, item_vocab, user_vocab)
        data = self._describe(inputs, user_vocab.num_users, item_vocab.num_items, prep.num_interactions, prep.report)
        self.info.description = f"{_INFO_DESCRIPTION} Source: {data['description']}"  # saved in dataset_info.json
        summary = {
            "config_name": cfg.name,
            "protocol": cfg.protocol,
            "source": inputs.description,
            "fallback": inputs.fallback,
            "files": [str(p) for p in inputs.files()],
            "num_users": user_vocab.num_users,
            "num_items": item_vocab.num_items,
            "num_interactions": prep.num_interactions,
            "num_interactions_before_filters": prep.num_before_filters,
            "has_timestamps": bool(np.any(seqs.timestamps)),
            "num_rows": {split: len(r) for split, r in rows.items()},
            "options": cfg.cache_params(),
            "filters": prep.report.to_dict(),
            "data": data,
            **prep.cuts,
        }
        atomic_write_json(Path(self._output_dir) / INFO_FILE, summary)
        # datasets cannot read back a split with no rows: leave it out (load_movielens adds it empty)
        empty = [split for split in SPLITS if len(rows[split]) == 0]
        if empty:
            logger.warning("%s (%s): split(s) %s have no rows", cfg.name, cfg.protocol, ", ".join(empty))
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": rows[split], "seqs": seqs})
            for split in SPLITS
            if split not in empty
        ]

    def _describe(
        self, inputs: _Inputs, num_users: int, num_items: int, num_interactions: int, report: FilterReport
    ) -> dict[str, Any]:
        """What :meth:`MovieLensData.describe` returns, from what this preparation read (stored in the info file)."""
        cfg = self.config
        if cfg.name == "sequences":
            assert inputs.sequences is not None
            source = inputs.sequences
            variant, title, url, license_ = "sequences", f"Sequences from {source.name}", None, None
            description = f"User-supplied SASRec-format file {source.name} ('user item' lines in time order)"
            if cfg.sequences_path and _is_url(cfg.sequences_path):
                url = cfg.sequences_path
        else:
            release = RELEASES[cfg.name]
            title, url, license_ = release.title, release.homepage, GROUPLENS_LICENSE
            if inputs.ratings is not None:
                variant, source = "official", inputs.ratings
                origin = f"downloaded {inputs.archive_name}" if inputs.downloaded else "GroupLens release"
                description = f"Official {release.title} {source.name} ({origin}), all movies that have ratings"
            else:
                assert inputs.sequences is not None
                variant, source = "sasrec-benchmark", inputs.sequences
                description = release.sasrec_description or f"SASRec-format {release.title} file {source.name}"
        filters = []
        if cfg.min_rating is not None:
            filters.append(f"ratings >= {cfg.min_rating:g} only")
        if cfg.k_core:
            filters.append(f"{int(cfg.k_core)}-core filtered")
        if filters:
            description += f"; {', '.join(filters)}"
        return {
            "name": cfg.name,
            "title": title,
            "variant": variant,
            "source_file": source.name,
            "description": description + ".",
            "num_users": int(num_users),
            "num_items": int(num_items),
            "num_interactions": int(num_interactions),
            "url": url,
            "license": license_,
            "protocol": cfg.protocol,
            "min_rating": cfg.min_rating,
            "k_core": cfg.k_core,
            "filters": report.to_dict(),
            "archive": inputs.archive_name,
            "archive_md5": inputs.md5,
            "download_url": inputs.url if inputs.downloaded else None,
        }

    def _read_inputs(self, inputs: _Inputs) -> tuple[Interactions, MovieMetadata | None, UserMetadata | None]:
        if inputs.ratings is not None:
            inter = read_ratings(inputs.ratings)  # min_rating: a filter of the shared pipeline
        else:
            assert inputs.sequences is not None
            inter = read_sasrec(inputs.sequences)
            if inputs.item_map is not None:
                inter.items = _apply_id_map(inter.items, read_id_map(inputs.item_map), inputs.item_map, "item")
            if inputs.user_map is not None:
                inter.users = _apply_id_map(inter.users, read_id_map(inputs.user_map), inputs.user_map, "user")
        movies = read_movies(inputs.movies) if inputs.movies is not None else None
        if movies is not None and inputs.sequences is not None and inputs.item_map is None and inputs.fallback:
            logger.warning("no item id map next to %s: titles cannot be attached", inputs.sequences)
            movies = None
        users = read_users(inputs.users) if inputs.users is not None else None
        if users is not None and inputs.sequences is not None and inputs.user_map is None and inputs.fallback:
            users = None
        return inter, movies, users

    @staticmethod
    def _item_vocab(ids: list[int], movies: MovieMetadata | None) -> ItemVocab:
        """The item vocabulary of the (ascending) movie ids, with titles, years and genres when there are any."""
        if movies is None:
            return ItemVocab(ids)
        return ItemVocab(
            ids,
            titles=[movies.titles.get(i) for i in ids],
            years=[movies.years.get(i) for i in ids],
            genres=[movies.genres.get(i, []) for i in ids],
            genre_names=movies.genre_names,
        )

    @staticmethod
    def _user_vocab(ids: list[int], meta: UserMetadata | None) -> UserVocab:
        """The user vocabulary of the (ascending) user ids, with gender, age group and occupation when known."""
        if meta is None:
            return UserVocab(ids)
        return UserVocab(
            ids,
            gender=[meta.gender.get(u) for u in ids],
            age=[meta.age.get(u) for u in ids],
            occupation=[meta.occupation.get(u) for u in ids],
        )


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------
@dataclass
class MovieLensData:
    """What :func:`load_movielens` returns: the splits plus the vocabularies that tokenized them."""

    dataset: datasets.DatasetDict
    items: ItemVocab
    users: UserVocab
    interactions_count: int
    config_name: str
    protocol: str
    cache_dir: Path
    info: dict[str, Any]

    @functools.cached_property
    def item_features(self) -> Any:
        """Genres and release decade as the item table's feature fields (an
        :class:`~hf_recsys.data.features.EncodedFeatures` in token order), None without them."""
        from .movielens_features import movielens_item_features

        return movielens_item_features(self.items)

    @functools.cached_property
    def user_features(self) -> Any:
        """Gender, age group and occupation as the user table's feature fields (by user index), None without."""
        from .movielens_features import movielens_user_features

        return movielens_user_features(self.users)

    @property
    def fallback(self) -> bool:
        """True when ML-1M was built from the SASRec-format file instead of the official ratings.dat."""
        return bool(self.info.get("fallback"))

    def describe(self) -> dict[str, Any]:
        """Which data this is, as a JSON-able dict (what ``results.json`` stores under ``"data"``).

        Keys: ``name`` (config, e.g. ``ml-1m``), ``title`` (``MovieLens 1M``), ``variant`` (``official``: the
        release's own ratings file, e.g. ratings.dat with 3,706 rated movies; ``sasrec-benchmark``: the
        SASRec-format file, 3,416 items, the ML-1M of published results; ``sequences``: a user's file),
        ``source_file`` (name of the file read), ``description`` (one sentence), ``num_users``,
        ``num_items``, ``num_interactions`` (after filters), ``url`` (homepage or None), ``license`` (short
        text or None), plus ``protocol``, ``min_rating``, ``k_core``, ``archive``, ``archive_md5`` and
        ``download_url`` (None when not applicable). Recorded when the builder prepared the data, so it
        costs nothing and is the same on a cached reload.
        """
        data = self.info.get("data")
        if data is None:  # an info file written before describe() existed
            variant = "sasrec-benchmark" if self.fallback else "official"
            if self.config_name == "sequences":
                variant = "sequences"
            release = RELEASES.get(self.config_name)
            files = self.info.get("files") or []
            data = {
                "name": self.config_name,
                "title": release.title if release else self.config_name,
                "variant": variant,
                "source_file": Path(files[0]).name if files else None,
                "description": str(self.info.get("source", "")),
                "num_users": self.users.num_users,
                "num_items": self.items.num_items,
                "num_interactions": self.interactions_count,
                "url": release.homepage if release else None,
                "license": GROUPLENS_LICENSE if release else None,
            }
        return json.loads(json.dumps(data))  # a copy: callers may edit it


def load_movielens(
    name: str = "ml-1m",
    data_dir: str | os.PathLike[str] | None = None,
    protocol: str = "leave-one-out",
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 42,
    min_rating: float | None = None,
    k_core: int | None = None,
    *,
    download_mode: str | datasets.DownloadMode | None = None,
    **config_kwargs: Any,
) -> MovieLensData:
    """Prepare (or reload from cache) a MovieLens release and return splits + vocabularies.

    Args:
        name: a config name (:data:`CONFIG_NAMES`).
        data_dir: folder with the official files (zip or extracted) or a parent folder with one
            subfolder per release; default ``$HF_RECSYS_DATA_DIR``, else download from GroupLens.
        protocol: ``leave-one-out``, ``seed-windows`` or ``temporal`` (see :class:`MovieLensConfig`).
        cache_dir: ``datasets`` cache root (default: the ``datasets`` cache).
        seed, min_rating, k_core, config_kwargs: :class:`MovieLensConfig` options.
        download_mode: e.g. ``"force_redownload"`` to rebuild the cache.
    """
    if name not in CONFIG_NAMES:
        raise ValueError(f"unknown MovieLens config {name!r}; expected one of {list(CONFIG_NAMES)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
    options = {"protocol": protocol, "seed": seed, "min_rating": min_rating, "k_core": k_core, **config_kwargs}
    defaults = MovieLensConfig()
    # only non-default values go into the config id (readable cache folder names); all are in the hash
    options = {k: v for k, v in options.items() if v is not None and v != getattr(defaults, k, object())}
    builder = MovieLensBuilder(
        config_name=name,
        data_dir=None if data_dir is None else str(Path(data_dir).expanduser()),
        cache_dir=None if cache_dir is None else str(cache_dir),
        dataset_name="movielens",
        **options,
    )
    was_cached = (Path(builder.cache_dir) / datasets.config.DATASET_INFO_FILENAME).is_file()
    builder.download_and_prepare(download_mode=download_mode)
    dataset = builder.as_dataset()
    assert isinstance(dataset, datasets.DatasetDict)
    empty = {name: [] for name in ROW_FEATURES}
    dataset = datasets.DatasetDict(
        {
            split: dataset[split] if split in dataset else datasets.Dataset.from_dict(empty, features=ROW_FEATURES)
            for split in SPLITS
        }
    )
    folder = Path(builder.cache_dir)
    items, users = load_vocabs(folder)
    with open(folder / INFO_FILE, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("fallback") and was_cached:
        logger.warning("%s: using the cached SASRec-format fallback (%s)", name, info["source"])
    return MovieLensData(
        dataset=dataset,
        items=items,
        users=users,
        interactions_count=int(info["num_interactions"]),
        config_name=name,
        protocol=info["protocol"],
        cache_dir=folder,
        info=info,
    )


def push_dataset_to_hub(
    data: MovieLensData | datasets.DatasetDict,
    repo_id: str,
    *,
    items: ItemVocab | None = None,
    users: UserVocab | None = None,
    config_name: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    api: Any | None = None,
) -> str:
    """Upload prepared splits to a Hub dataset repo as Parquet, plus the vocabularies as JSON.

    Wraps ``DatasetDict.push_to_hub(repo_id, config_name=...)`` (one Parquet config per
    release/protocol, e.g. ``ml-1m-leave-one-out``) and uploads ``vocab/<config_name>/item_vocab.json``
    and ``user_vocab.json`` so the token ids in the Parquet files can be decoded. Afterwards
    ``datasets.load_dataset(repo_id, config_name)`` reads the splits back. Needs ``HF_TOKEN`` (or
    ``token``) with write access. ``api`` defaults to ``huggingface_hub.HfApi(token=token)``.

    Returns the dataset's URL.
    """
    if isinstance(data, MovieLensData):
        dataset = data.dataset
        items = items or data.items
        users = users or data.users
        config_name = config_name or f"{data.config_name}-{data.protocol}"
    else:
        dataset = data
    config_name = config_name or "default"
    dataset.push_to_hub(
        repo_id,
        config_name=config_name,
        private=private,
        token=token,
        revision=revision,
        commit_message=commit_message or f"Upload {config_name} splits",
    )
    if items is not None or users is not None:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(token=token)
        for vocab, file in ((items, "item_vocab.json"), (users, "user_vocab.json")):
            if vocab is None:
                continue
            api.upload_file(
                path_or_fileobj=json.dumps(vocab.to_dict(), ensure_ascii=False).encode("utf-8"),
                path_in_repo=f"vocab/{config_name}/{file}",
                repo_id=repo_id,
                repo_type="dataset",
                revision=revision,
                commit_message=f"Upload {config_name} {file}",
            )
    return f"https://huggingface.co/datasets/{repo_id}"
