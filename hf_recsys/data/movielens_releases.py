"""The official MovieLens releases (archive, layout, checksum, homepage), the environment variables that
relocate them, and the codes of their side information (age groups, occupations, genres)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

DATA_DIR_ENV = "HF_RECSYS_DATA_DIR"
"""Environment variable naming a folder with offline copies of the MovieLens files."""

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/{archive}"
"""Default location of the official archives (``{archive}`` is e.g. ``ml-1m.zip``)."""

GROUPLENS_URL_ENV = "HF_RECSYS_GROUPLENS_URL"
"""Environment variable overriding :data:`GROUPLENS_URL`: a base URL or a template with ``{archive}``."""

GROUPLENS_MD5_ENV = "HF_RECSYS_GROUPLENS_MD5"
"""Environment variable overriding the MD5 that a downloaded archive must have (tests, private mirrors)."""

GROUPLENS_LICENSE = "MovieLens terms of use: research use, no redistribution (see the release README)"


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
