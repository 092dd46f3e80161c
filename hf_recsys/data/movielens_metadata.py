"""Side information of a release: movie titles, years and genres (``u.item``, ``movies.dat``, ``movies.csv``)
and user demographics (``u.user``, ``users.dat``), keyed by the original ids."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .movielens_errors import DataFormatError, MissingDataError
from .movielens_files import _INT_RE
from .movielens_releases import _AGE_GROUPS, _GENRES_100K, _NO_GENRES, _OCCUPATIONS_1M, age_group, parse_year


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
