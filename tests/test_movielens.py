"""MovieLens builder: official formats, protocols, bad input, caching, Hub push, and the real files.

Fixtures are written in each official format (ML-100K, ML-1M, ML-10M, ML-20M/latest CSV, the SASRec
text format) into tmp_path; the real copies in ``$HF_RECSYS_DATA_DIR`` (default ``../shared/data``)
are used when present. Everything runs offline with temporary caches.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import hashlib
import json
import logging
import re
import zipfile
from collections import defaultdict
from pathlib import Path

import datasets
import numpy as np
import pytest

from hf_recsys.data import (
    ROW_FEATURES,
    ChecksumMismatchError,
    DataFormatError,
    ItemVocab,
    MissingDataError,
    MovieLensBuilder,
    load_interactions,
    load_movielens,
    movielens_builder,
    movielens_releases,
    push_dataset_to_hub,
)
from hf_recsys.data import movielens as ml
from hf_recsys.data.interaction_log import chronological

REAL_DATA = Path(os.environ.get("HF_RECSYS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))

# (user, movie, rating, timestamp) in *file order*: users interleaved, not chronological, with ties
# (user 1: movies 5 and 2 share t=200 -> file order 5 then 2).
RATINGS = [
    (1, 10, 4, 300), (2, 1, 5, 100), (1, 5, 3, 200), (3, 32, 2, 50), (1, 2, 5, 200), (2, 5, 4, 400),
    (1, 1, 1, 100), (3, 1, 4, 60), (2, 10, 3, 300), (3, 100, 5, 70), (1, 32, 4, 500), (2, 32, 2, 150),
    (3, 10, 3, 80), (4, 1, 4, 10), (4, 2, 2, 20), (3, 5, 4, 90), (1, 100, 5, 600), (2, 2, 1, 900),
]  # fmt: skip
MOVIES = {
    1: ("Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
    2: ("Café au lait (1993)", ["Comedy"]),
    5: ("Shawshank Redemption, The (1994)", ["Drama"]),
    10: ("GoldenEye (1995)", ["Action", "Adventure", "Thriller"]),
    32: ("Twelve Monkeys (1995)", ["Drama", "Sci-Fi"]),
    100: ("City Hall (1996)", ["Drama", "Thriller"]),
    999: ("Never Rated (2001)", ["Horror"]),
}
USERS = {1: ("F", 1, 10, 17), 2: ("M", 56, 16, 61), 3: ("M", 25, 15, 30), 4: ("F", 35, 0, 40)}
# (gender, ML-1M age code, ML-1M occupation code, exact age for ML-100K)


def expected_sequences(ratings=RATINGS) -> dict[int, list[int]]:
    """Per-user movies in time order, ties in file order (the contract)."""
    seqs: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for pos, (u, m, _, t) in enumerate(ratings):
        seqs[u].append((t, pos, m))
    return {u: [m for _, _, m in sorted(v)] for u, v in sorted(seqs.items())}


def _write(path: Path, lines: list[str], crlf: bool = False, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    path.write_bytes("".join(line + end for line in lines).encode(encoding))
    return path


def write_ml100k(folder: Path, ratings=RATINGS, crlf: bool = False) -> Path:
    _write(folder / "u.data", [f"{u}\t{m}\t{r}\t{t}" for u, m, r, t in ratings], crlf)
    genres = list(movielens_releases._GENRES_100K)
    _write(folder / "u.genre", [f"{g}|{i}" for i, g in enumerate(genres)], crlf)
    items = []
    for mid, (title, gs) in MOVIES.items():
        flags = "|".join("1" if g in gs else "0" for g in genres)
        items.append(f"{mid}|{title}|01-Jan-{title[-5:-1]}||http://us.imdb.com/M/x|{flags}")
    _write(folder / "u.item", items, crlf, "latin-1")
    occupations = ["technician", "writer", "student", "none"]
    users = [f"{u}|{a}|{g}|{occupations[u - 1]}|85711" for u, (g, _, _, a) in USERS.items()]
    _write(folder / "u.user", users, crlf)
    return folder


def write_ml1m(folder: Path, ratings=RATINGS, crlf: bool = False) -> Path:
    _write(folder / "ratings.dat", [f"{u}::{m}::{r}::{t}" for u, m, r, t in ratings], crlf)
    _write(folder / "movies.dat", [f"{m}::{t}::{'|'.join(g)}" for m, (t, g) in MOVIES.items()], crlf, "latin-1")
    _write(folder / "users.dat", [f"{u}::{g}::{a}::{o}::12345" for u, (g, a, o, _) in USERS.items()], crlf)
    return folder


def write_ml10m(folder: Path, ratings=RATINGS, crlf: bool = False) -> Path:
    lines = [f"{u}::{m}::{r - 0.5}::{t}" for u, m, r, t in ratings]
    _write(folder / "ratings.dat", lines, crlf)
    _write(folder / "movies.dat", [f"{m}::{t}::{'|'.join(g)}" for m, (t, g) in MOVIES.items()], crlf)
    return folder


def write_csv_release(folder: Path, ratings=RATINGS, crlf: bool = True) -> Path:
    """ml-latest-small / ml-20m+ layout; the official zips use CRLF."""
    lines = ["userId,movieId,rating,timestamp", *(f"{u},{m},{r - 0.5},{t}" for u, m, r, t in ratings)]
    _write(folder / "ratings.csv", lines, crlf)
    movies = ["movieId,title,genres"]
    for m, (t, g) in MOVIES.items():
        title = f'"{t}"' if "," in t else t
        movies.append(f"{m},{title},{'|'.join(g) or '(no genres listed)'}")
    _write(folder / "movies.csv", movies, crlf)
    return folder


WRITERS = {
    "ml-100k": write_ml100k,
    "ml-1m": write_ml1m,
    "ml-10m": write_ml10m,
    "ml-20m": write_csv_release,
    "ml-latest-small": write_csv_release,
}


def load(name: str, data_dir: Path | None, tmp_path: Path, **kwargs):
    return load_movielens(name, data_dir=data_dir, cache_dir=tmp_path / "cache", **kwargs)


def sequences_of(data, split: str = "test") -> dict[int, list[int]]:
    """Original user id -> decoded movie ids of input_ids + [target]."""
    out = {}
    for row in data.dataset[split]:
        out[row["user_id"]] = data.items.decode_many([*row["input_ids"], row["target"]]).tolist()
    return out


def finished_caches(root: Path) -> list[Path]:
    return sorted(root.rglob(datasets.config.DATASET_INFO_FILENAME))


def leftovers(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith(".incomplete") or p.suffix == ".arrow")


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
    """Fixture tests pass data_dir explicitly; the env var must not leak into them."""
    monkeypatch.delenv(ml.DATA_DIR_ENV, raising=False)


@pytest.fixture
def real_data() -> Path:
    if not (REAL_DATA / "movielens-1m").is_dir():
        pytest.skip(f"real MovieLens files not found under {REAL_DATA} (set HF_RECSYS_DATA_DIR)")
    return REAL_DATA


# --------------------------------------------------------------------------------------------------------
# Official formats
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "crlf"),
    [("ml-100k", False), ("ml-100k", True), ("ml-1m", False), ("ml-1m", True), ("ml-10m", False),
     ("ml-20m", True), ("ml-latest-small", False)],
)  # fmt: skip
def test_official_formats_give_the_same_sequences(tmp_path, name, crlf) -> None:
    folder = WRITERS[name](tmp_path / "data", crlf=crlf)
    data = load(name, folder, tmp_path)
    assert data.interactions_count == len(RATINGS)
    assert data.items.num_items == 6 and data.users.num_users == 4  # movie 999 is never rated
    assert data.items.item_ids.tolist() == [1, 2, 5, 10, 32, 100]
    assert sequences_of(data) == expected_sequences()
    assert data.dataset["test"].features == ROW_FEATURES
    assert data.items.title(data.items.encode(5)) == "Shawshank Redemption, The (1994)"
    assert data.items.title(data.items.encode(2)) == "Café au lait (1993)"  # latin-1 / UTF-8 decoded
    assert data.items.year(data.items.encode(100)) == 1996
    assert data.items.genres(data.items.encode(32)) == ["Drama", "Sci-Fi"]
    assert not data.fallback
    described = data.describe()
    release = ml.RELEASES[name]
    assert described["variant"] == "official" and described["source_file"] == release.ratings
    assert (described["name"], described["title"], described["url"]) == (name, release.title, release.homepage)
    assert (described["num_users"], described["num_items"], described["num_interactions"]) == (4, 6, len(RATINGS))
    assert described["license"] == ml.GROUPLENS_LICENSE and described["archive"] is None


def test_describe_is_json_and_survives_a_cached_reload(tmp_path) -> None:
    folder = write_ml1m(tmp_path / "data")
    first = load("ml-1m", folder, tmp_path, min_rating=3, k_core=2)
    described = first.describe()
    assert json.loads(json.dumps(described)) == described
    required = {"name", "title", "variant", "source_file", "description", "num_users", "num_items"}
    assert required | {"num_interactions", "url", "license"} <= set(described)
    assert described["description"] == (
        "Official MovieLens 1M ratings.dat (GroupLens release), all movies that have ratings; "
        "ratings >= 3 only, 2-core filtered."
    )
    assert (described["min_rating"], described["k_core"]) == (3, 2)
    assert described["num_interactions"] == first.interactions_count
    assert described["num_items"] == first.items.num_items and described["num_users"] == first.users.num_users
    described["variant"] = "edited"  # a copy
    info = json.loads((first.cache_dir / ml.INFO_FILE).read_text())
    assert info["data"]["variant"] == "official"
    again = load("ml-1m", folder, tmp_path, min_rating=3, k_core=2)  # from the cache: nothing re-read
    assert again.cache_dir == first.cache_dir and again.describe() == first.describe()
    assert "Source: Official MovieLens 1M ratings.dat" in again.dataset["test"].info.description


def test_user_side_features(tmp_path) -> None:
    d1 = load("ml-1m", write_ml1m(tmp_path / "m1"), tmp_path)
    assert d1.users.feature_values(d1.users.encode(1)) == {
        "gender": "F",
        "age": "Under 18",
        "occupation": "K-12 student",
    }
    assert d1.users.feature_values(d1.users.encode(2))["occupation"] == "self-employed"
    d100 = load("ml-100k", write_ml100k(tmp_path / "m100"), tmp_path)
    assert d100.users.feature_values(d100.users.encode(2)) == {"gender": "M", "age": "56+", "occupation": "writer"}
    assert d100.users.feature_values(d100.users.encode(3))["age"] == "25-34"
    assert d100.items.genre_names[0] == "unknown" and len(d100.items.genre_names) == 19
    dcsv = load("ml-latest-small", write_csv_release(tmp_path / "small"), tmp_path)
    assert dcsv.users.feature_names == []  # the CSV releases have no demographics


# --------------------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------------------
def test_leave_one_out_rows(tmp_path) -> None:
    data = load("ml-1m", write_ml1m(tmp_path / "d"), tmp_path)
    seqs = expected_sequences()
    ds = data.dataset
    assert list(ds) == ["train", "validation", "test"]
    for split, back in (("test", 1), ("validation", 2), ("train", 3)):
        rows = {r["user_id"]: r for r in ds[split]}
        assert sorted(rows) == [u for u, s in seqs.items() if len(s) > back]  # users with a non-empty input
        for u, row in rows.items():
            items = [data.items.encode(m) for m in seqs[u]][: len(seqs[u]) - back + 1]
            assert row["target"] == items[-1] and row["input_ids"] == items[:-1]
            assert row["user_index"] == data.users.encode(u)
    # the test row carries the time of its target
    assert {r["user_id"]: r["timestamp"] for r in ds["test"]}[1] == 600


def test_seed_windows_protocol(tmp_path) -> None:
    folder = write_ml1m(tmp_path / "d")
    data = load("ml-1m", folder, tmp_path, protocol="seed-windows", seed=3)
    # expected windows: per user, items[s:s+4] for s = 0, 2, 4, ... with more than one item
    windows = []
    for u, s in expected_sequences().items():
        for start in range(0, len(s), 2):
            w = s[start : start + 4]
            if len(w) > 1:
                windows.append((u, tuple(w)))
    got = []
    for split in ("train", "validation", "test"):
        for r in data.dataset[split]:
            got.append((r["user_id"], tuple(data.items.decode_many([*r["input_ids"], r["target"]]).tolist())))
    assert sorted(got) == sorted(windows)
    n = len(windows)
    assert data.dataset["test"].num_rows == round(n * 0.15)
    assert data.dataset["validation"].num_rows == round((n - round(n * 0.15)) * 0.1)
    again = load("ml-1m", folder, tmp_path, protocol="seed-windows", seed=3)
    assert again.dataset["test"]["input_ids"] == data.dataset["test"]["input_ids"]
    other = load("ml-1m", folder, tmp_path, protocol="seed-windows", seed=4, test_fraction=0.5)
    assert other.cache_dir != data.cache_dir
    assert other.dataset["test"].num_rows == round(n * 0.5)


def test_temporal_protocol(tmp_path) -> None:
    # 20 users x 10 interactions at distinct times: the cuts are the 80% / 90% time quantiles
    ratings = [
        (u, m, 4, 1000 + 10 * step + u)
        for step, m in enumerate((1, 2, 5, 10, 32, 100, 999, 3, 4, 6))
        for u in range(1, 21)
    ]
    data = load("ml-1m", write_ml1m(tmp_path / "d", ratings=ratings), tmp_path, protocol="temporal")
    info = data.info
    t_val, t_test = info["validation_cut"], info["test_cut"]
    assert t_val < t_test
    seqs = expected_sequences(ratings)
    times = {(u, m): t for u, m, _, t in ratings}
    test = data.dataset["test"]
    assert test.num_rows == sum(t > t_test for *_, t in ratings)
    for r in test:
        full = seqs[r["user_id"]]
        history = data.items.decode_many(r["input_ids"]).tolist()
        target = data.items.decode(r["target"])
        assert r["timestamp"] > t_test and times[(r["user_id"], target)] == r["timestamp"]
        assert history == full[: full.index(target)]  # the full prior history, not truncated
    for r in data.dataset["validation"]:
        assert t_val < r["timestamp"] <= t_test
    for r in data.dataset["train"]:  # the per-user prefix before the validation cut
        assert r["timestamp"] <= t_val
        assert all(times[(r["user_id"], m)] <= t_val for m in data.items.decode_many(r["input_ids"]).tolist())


def test_min_rating_and_k_core(tmp_path) -> None:
    folder = write_ml1m(tmp_path / "d")
    hi = load("ml-1m", folder, tmp_path, min_rating=4)
    assert hi.interactions_count == sum(r >= 4 for _, _, r, _ in RATINGS)
    core = load("ml-1m", folder, tmp_path, k_core=3)
    counts_u: dict[int, int] = defaultdict(int)
    counts_i: dict[int, int] = defaultdict(int)
    for u, seq in sequences_of(core).items():
        counts_u[u] += len(seq)
        for m in seq:
            counts_i[m] += 1
    assert min(counts_u.values()) >= 3 and min(counts_i.values()) >= 3
    assert 4 not in counts_u  # user 4 has only 2 ratings
    assert core.interactions_count == sum(counts_u.values()) < len(RATINGS)


# --------------------------------------------------------------------------------------------------------
# Archives, checksums, downloads, offline folders
# --------------------------------------------------------------------------------------------------------
def _zip(folder: Path, archive: Path, top: str) -> Path:
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, f"{top}/{p.name}")
    return archive


def test_zip_in_data_dir_is_checked_against_the_published_md5(tmp_path) -> None:
    src = write_ml100k(tmp_path / "src")
    data_dir = tmp_path / "zips"
    data_dir.mkdir()
    _zip(src, data_dir / "ml-100k.zip", "ml-100k")  # not the real archive: MD5 differs
    with pytest.raises(ChecksumMismatchError, match=r"ml-100k\.zip.*0e33842e24a9c977be4e0107933c0723"):
        load("ml-100k", data_dir, tmp_path)
    assert finished_caches(tmp_path / "cache") == []
    # ml-10m has no MD5 built in: a sidecar <archive>.md5 (as published by GroupLens) is used
    src10 = write_ml10m(tmp_path / "src10")
    archive = _zip(src10, data_dir / "ml-10m.zip", "ml-10M100K")
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    (data_dir / "ml-10m.zip.md5").write_text(f"MD5 (ml-10m.zip) = {digest}\n")
    data = load("ml-10m", data_dir, tmp_path)
    assert sequences_of(data) == expected_sequences()
    (data_dir / "ml-10m.zip.md5").write_text("0" * 32)
    with pytest.raises(ChecksumMismatchError, match=r"0{32}"):
        load("ml-10m", data_dir, tmp_path / "fresh")


def test_url_option_with_a_local_zip_is_md5_checked(tmp_path) -> None:
    """``url=`` may name a local zip: it is verified against ``md5=`` and never deleted (downloads: test_download.py)."""
    archive = _zip(write_ml1m(tmp_path / "src"), tmp_path / "ml-1m.zip", "ml-1m")
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    data = load("ml-1m", None, tmp_path, url=str(archive), md5=digest)
    assert sequences_of(data) == expected_sequences()
    assert str(archive) in data.info["source"]
    described = data.describe()
    assert (described["variant"], described["source_file"], described["archive"]) == (
        "official",
        "ratings.dat",
        "ml-1m.zip",
    )
    assert described["archive_md5"] == digest and described["download_url"] is None
    with pytest.raises(ChecksumMismatchError, match="MD5 checksum mismatch"):
        load("ml-1m", None, tmp_path / "fresh", url=str(archive), md5="f" * 32)
    assert archive.is_file()  # a user's own file is never deleted
    assert not (tmp_path / "fresh" / "downloads" / "extracted").exists()  # nothing was extracted
    with pytest.raises(ValueError, match="md5 must be an MD5 digest"):
        load("ml-1m", None, tmp_path, url=str(archive), md5="abc")


def test_offline_without_data_is_a_clear_error(tmp_path) -> None:
    """conftest.py turns on offline mode: with no local folder, the download is refused in one line."""
    with pytest.raises(MissingDataError) as info:
        load("ml-100k", None, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "could not download https://files.grouplens.org/datasets/movielens/ml-100k.zip" in message
    assert "offline mode" in message and "set HF_RECSYS_DATA_DIR" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingDataError, match=r"no ml-100k files found.*u\.data.*omit data_dir"):
        load("ml-100k", empty, tmp_path)
    missing = tmp_path / "nope"
    with pytest.raises(
        FileNotFoundError, match="^" + re.escape(f"data_dir={missing}: folder not found; omit data_dir")
    ):
        load("ml-100k", missing, tmp_path)
    assert finished_caches(tmp_path / "cache") == [] and leftovers(tmp_path / "cache") == []


def test_env_var_parent_folder_with_release_subfolders(tmp_path, monkeypatch) -> None:
    parent = tmp_path / "shared"
    write_ml100k(parent / "movielens-100k")
    write_csv_release(parent / "ml-latest-small", crlf=False)
    monkeypatch.setenv(ml.DATA_DIR_ENV, str(parent))
    assert load("ml-100k", None, tmp_path).interactions_count == len(RATINGS)
    assert load("ml-latest-small", None, tmp_path).users.num_users == 4


def test_unknown_names(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown MovieLens config 'ml-2m'.*ml-1m"):
        load_movielens("ml-2m", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"unknown MovieLens config"):
        MovieLensBuilder(config_name="ml-2m", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"unknown protocol 'random'"):
        load_movielens("ml-1m", protocol="random", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\)"):
        load_movielens("ml-1m", cache_dir=tmp_path, protocol="seed-windows", test_fraction=1.5)
    with pytest.raises(ValueError, match="k_core must be a positive integer"):
        MovieLensBuilder(config_name="ml-1m", cache_dir=str(tmp_path), k_core=0)
    with pytest.raises(ValueError, match="doesn't have a 'windowsize' key"):
        load_movielens("ml-1m", data_dir=write_ml1m(tmp_path / "d"), cache_dir=tmp_path, windowsize=3)


# --------------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------------
BAD_LINES = [
    # (config, writer, file, line index to replace (0-based), new text, expected message parts)
    ("ml-1m", write_ml1m, "ratings.dat", 2, "1::5::3", ["line 3", "found 3 field(s)", "4 '::'-separated fields"]),
    ("ml-1m", write_ml1m, "ratings.dat", 4, "x1::2::5::200", ["line 5", "UserID is not an integer: 'x1'"]),
    ("ml-1m", write_ml1m, "ratings.dat", 0, "1::10::4::yesterday", ["line 1", "Timestamp is not an integer"]),
    ("ml-100k", write_ml100k, "u.data", 6, "1\t1\t1\t100\t7", ["line 7", "found 5 field(s)", "4 tab-separated"]),
    ("ml-100k", write_ml100k, "u.data", 7, "3\tone\t4\t60", ["line 8", "item_id is not an integer: 'one'"]),
    ("ml-20m", write_csv_release, "ratings.csv", 0, "user,movie,rating,time", ["line 1", "header userId,movieId"]),
    ("ml-20m", write_csv_release, "ratings.csv", 3, "1,5,3.0", ["line 4", "found 3 field(s)", "4 comma-separated"]),
    ("ml-1m", write_ml1m, "movies.dat", 1, "2::Cafe (1993)", ["movies.dat, line 2", "found 2 field(s)"]),
    ("ml-1m", write_ml1m, "users.dat", 3, "4::F::35::0", ["users.dat, line 4", "5 '::'-separated fields"]),
]


@pytest.mark.parametrize("case", BAD_LINES, ids=[f"{c[2]}:{c[4][:12]}" for c in BAD_LINES])
def test_malformed_line_names_file_and_line_and_leaves_no_cache(tmp_path, case) -> None:
    name, writer, file, index, text, parts = case
    folder = writer(tmp_path / "d")
    path = folder / file
    lines = path.read_bytes().decode("latin-1").splitlines()
    good = lines[index]
    lines[index] = text
    _write(path, lines, encoding="latin-1")
    with pytest.raises(DataFormatError) as err:
        load(name, folder, tmp_path)
    message = str(err.value)
    assert str(path) in message, message
    for part in parts:
        assert part in message, message
    assert finished_caches(tmp_path / "cache") == [] and leftovers(tmp_path / "cache") == []
    lines[index] = good  # after fixing the file the next call prepares normally
    _write(path, lines, encoding="latin-1")
    assert load(name, folder, tmp_path).interactions_count == len(RATINGS)


@pytest.mark.parametrize("file", ["u.data", "u.item"])
def test_empty_file(tmp_path, file) -> None:
    folder = write_ml100k(tmp_path / "d")
    (folder / file).write_bytes(b"")
    with pytest.raises(DataFormatError, match=rf"{file}, line 1: file is empty"):
        load("ml-100k", folder, tmp_path)
    header_only = write_csv_release(tmp_path / "c")
    (header_only / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DataFormatError, match=r"ratings\.csv, line 2: file has no data lines"):
        load("ml-latest-small", header_only, tmp_path)
    assert finished_caches(tmp_path / "cache") == []


def test_failure_while_writing_rows_leaves_no_cache(tmp_path, monkeypatch) -> None:
    folder = write_ml1m(tmp_path / "d")
    original = MovieLensBuilder._generate_examples

    def broken(self, rows, seqs):
        for i, example in enumerate(original(self, rows, seqs)):
            if i == 2:
                raise RuntimeError("disk on fire")
            yield example

    monkeypatch.setattr(MovieLensBuilder, "_generate_examples", broken)
    with pytest.raises(Exception, match="error occurred while generating"):
        load("ml-1m", folder, tmp_path)
    cache = tmp_path / "cache"
    assert finished_caches(cache) == [] and leftovers(cache) == []
    assert not list(cache.rglob("item_vocab.json"))
    monkeypatch.setattr(MovieLensBuilder, "_generate_examples", original)
    assert load("ml-1m", folder, tmp_path).dataset["test"].num_rows == 4


# --------------------------------------------------------------------------------------------------------
# Caching
# --------------------------------------------------------------------------------------------------------
def test_cache_reuse_and_invalidation(tmp_path, monkeypatch) -> None:
    folder = write_ml1m(tmp_path / "d")
    first = load("ml-1m", folder, tmp_path)
    arrow = sorted(first.cache_dir.glob("*.arrow"))
    stamp = [p.stat().st_mtime_ns for p in arrow]
    again = load("ml-1m", folder, tmp_path)
    assert again.cache_dir == first.cache_dir and [p.stat().st_mtime_ns for p in arrow] == stamp  # reused
    assert load("ml-1m", folder, tmp_path, seed=7).cache_dir != first.cache_dir  # an option changed
    # the data file changed (size + mtime are in the key)
    with open(folder / "ratings.dat", "a") as f:
        f.write("4::5::3::30\n")
    changed = load("ml-1m", folder, tmp_path)
    assert changed.cache_dir != first.cache_dir and changed.interactions_count == len(RATINGS) + 1
    # the code changed
    monkeypatch.setattr(movielens_builder, "_module_sources_digest", lambda: "edited")
    assert load("ml-1m", folder, tmp_path).cache_dir != changed.cache_dir


def test_builder_used_directly(tmp_path) -> None:
    folder = write_ml100k(tmp_path / "d")
    builder = MovieLensBuilder(
        config_name="ml-100k", data_dir=str(folder), cache_dir=str(tmp_path / "c"), dataset_name="movielens"
    )
    builder.download_and_prepare()
    ds = builder.as_dataset()
    assert ds["test"].num_rows == 4 and builder.hash and builder.hash in builder.cache_dir
    items, users = ml.load_vocabs(builder.cache_dir)
    assert items.num_items == 6 and users.num_users == 4


# --------------------------------------------------------------------------------------------------------
# SASRec format: the `sequences` config and the ML-1M fallback
# --------------------------------------------------------------------------------------------------------
def write_sasrec(folder: Path) -> Path:
    """SASRec-style copy of RATINGS: users and items renumbered, one 'user item' line per rating."""
    seqs = expected_sequences()
    user_new = {u: i for i, u in enumerate(sorted(seqs, reverse=True), start=1)}
    item_new = {m: i for i, m in enumerate(sorted(MOVIES, reverse=True), start=1)}
    lines = [f"{user_new[u]} {item_new[m]}" for u in sorted(seqs, key=user_new.get) for m in seqs[u]]
    _write(folder / "sasrec_ml-1m_rebuilt.txt", lines)
    _write(folder / "sources" / "sas_to_original_items.txt", [f"{n} {m}" for m, n in item_new.items()])
    _write(folder / "sources" / "sas_to_original_users.txt", [f"{n} {u}" for u, n in user_new.items()])
    write_ml1m(folder)
    (folder / "ratings.dat").unlink()
    return folder


def test_ml1m_falls_back_to_the_sasrec_file(tmp_path, caplog) -> None:
    parent = tmp_path / "shared"
    write_sasrec(parent / "movielens-1m")
    with caplog.at_level(logging.WARNING, logger="hf_recsys.data.movielens"):
        data = load("ml-1m", parent, tmp_path)
    assert any("FALLING BACK" in r.getMessage() for r in caplog.records)
    assert data.fallback and data.info["has_timestamps"] is False
    described = data.describe()
    assert (described["variant"], described["source_file"]) == ("sasrec-benchmark", "sasrec_ml-1m_rebuilt.txt")
    assert described["description"].startswith("SASRec-format ML-1M benchmark file (items with < 5 ratings removed)")
    assert (described["num_users"], described["num_items"]) == (4, 6)
    assert sequences_of(data) == expected_sequences()  # original ids restored through the maps
    assert data.items.title(data.items.encode(5)) == "Shawshank Redemption, The (1994)"
    assert data.users.feature_values(data.users.encode(1))["gender"] == "F"
    assert set(data.dataset["test"]["timestamp"]) == {0}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hf_recsys.data.movielens"):
        load("ml-1m", parent, tmp_path)  # cached: still says so
    assert any("fallback" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="temporal protocol needs timestamps"):
        load("ml-1m", parent, tmp_path, protocol="temporal")
    with pytest.raises(ValueError, match="min_rating=4 needs ratings"):
        load("ml-1m", parent, tmp_path, min_rating=4)


def test_sequences_config(tmp_path, monkeypatch) -> None:
    folder = write_sasrec(tmp_path / "s")
    monkeypatch.setenv(ml.DATA_DIR_ENV, str(tmp_path / "absent"))  # only resolves relative paths of `sequences`
    plain = load("sequences", None, tmp_path, sequences_path=str(folder / "sasrec_ml-1m_rebuilt.txt"))
    monkeypatch.delenv(ml.DATA_DIR_ENV)
    with pytest.raises(MissingDataError, match=r"^data_dir=\S+absent: folder not found; point it at the folder"):
        load("sequences", tmp_path / "absent", tmp_path, sequences_path="sasrec_ml-1m_rebuilt.txt")
    assert plain.items.num_items == 6 and plain.items.title(1) is None  # ids are the file's own
    rich = load(
        "sequences",
        folder,
        tmp_path,
        sequences_path="sasrec_ml-1m_rebuilt.txt",  # relative to data_dir
        item_map_path="sources/sas_to_original_items.txt",
        user_map_path="sources/sas_to_original_users.txt",
        item_metadata_path="movies.dat",
        user_metadata_path="users.dat",
    )
    assert sequences_of(rich) == expected_sequences()
    assert rich.items.genres(rich.items.encode(10)) == ["Action", "Adventure", "Thriller"]
    described = rich.describe()
    assert (described["name"], described["variant"], described["source_file"]) == (
        "sequences",
        "sequences",
        "sasrec_ml-1m_rebuilt.txt",
    )
    assert described["url"] is None and described["license"] is None and described["num_items"] == 6
    with pytest.raises(ValueError, match="needs sequences_path"):
        load("sequences", None, tmp_path)
    with pytest.raises(MissingDataError, match="sequence file not found"):
        load("sequences", None, tmp_path, sequences_path=str(tmp_path / "missing.txt"))
    bad_map = folder / "sources" / "sas_to_original_items.txt"
    bad_map.write_text("1 100\n")
    with pytest.raises(DataFormatError, match=r"sas_to_original_items\.txt: item \d+ is not in the id map"):
        load("sequences", folder, tmp_path, sequences_path="sasrec_ml-1m_rebuilt.txt", item_map_path=str(bad_map))


# --------------------------------------------------------------------------------------------------------
# Hub push (mocked upload) and Parquet round trip
# --------------------------------------------------------------------------------------------------------
def test_push_dataset_to_hub_with_mocked_upload(tmp_path, monkeypatch) -> None:
    data = load("ml-100k", write_ml100k(tmp_path / "d"), tmp_path)
    pushed, uploaded = [], []
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo_id, **kw: pushed.append((repo_id, kw)))

    class FakeApi:
        def upload_file(self, **kw):
            uploaded.append(kw)

    url = push_dataset_to_hub(data, "me/movielens", private=True, api=FakeApi())
    assert url == "https://huggingface.co/datasets/me/movielens"
    assert len(pushed) == 1 and pushed[0][0] == "me/movielens"
    assert pushed[0][1]["config_name"] == "ml-100k-leave-one-out" and pushed[0][1]["private"] is True
    paths = [u["path_in_repo"] for u in uploaded]
    assert paths == ["vocab/ml-100k-leave-one-out/item_vocab.json", "vocab/ml-100k-leave-one-out/user_vocab.json"]
    assert all(u["repo_type"] == "dataset" for u in uploaded)
    assert ItemVocab.from_dict(json.loads(uploaded[0]["path_or_fileobj"])) == data.items
    # what push_to_hub writes is Parquet: the schema survives the round trip
    data.dataset["test"].to_parquet(tmp_path / "test.parquet")
    back = datasets.Dataset.from_parquet(str(tmp_path / "test.parquet"), cache_dir=str(tmp_path / "pq"))
    assert back.features == ROW_FEATURES and back["input_ids"] == data.dataset["test"]["input_ids"]


# --------------------------------------------------------------------------------------------------------
# Real files (../shared/data)
# --------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_ml100k(tmp_path, real_data) -> None:
    data = load("ml-100k", real_data, tmp_path)
    assert (data.users.num_users, data.items.num_items, data.interactions_count) == (943, 1682, 100_000)
    _check_leave_one_out(data)
    assert data.items.title(data.items.encode(1)) == "Toy Story (1995)"
    assert data.users.feature_sizes == [3, 8, 22]  # 2 genders, 7 age groups, 21 occupations (+ unknown)


@pytest.mark.slow
def test_real_ml1m_sasrec_fallback(tmp_path, real_data) -> None:
    data = load("ml-1m", real_data, tmp_path)
    assert data.fallback
    assert (data.users.num_users, data.items.num_items, data.interactions_count) == (6040, 3416, 999_611)
    described = data.describe()  # the offline copy is the SASRec-format benchmark file, not ratings.dat
    assert described["variant"] == "sasrec-benchmark" and described["source_file"] == "sasrec_ml-1m_rebuilt.txt"
    assert (described["num_users"], described["num_items"], described["num_interactions"]) == (6040, 3416, 999_611)
    assert (described["name"], described["title"]) == ("ml-1m", "MovieLens 1M")
    assert load("ml-1m", real_data, tmp_path).describe() == described  # cached reload
    assert data.dataset["test"].num_rows == 6040
    _check_leave_one_out(data)
    # the test row of every user is the last line of that user in the SASRec file, mapped to ML-1M ids
    folder = real_data / "movielens-1m"
    sas = ml.read_sasrec(folder / "sasrec_ml-1m_rebuilt.txt")
    raw = np.stack([sas.users, sas.items], axis=1).astype(np.int64)
    new_i, orig_i = ml.read_id_map(folder / "sources" / "sas_to_original_items.txt")
    new_u, orig_u = ml.read_id_map(folder / "sources" / "sas_to_original_users.txt")
    item_map, user_map = dict(zip(new_i.tolist(), orig_i.tolist())), dict(zip(new_u.tolist(), orig_u.tolist()))
    last_rows = np.flatnonzero(np.r_[raw[1:, 0] != raw[:-1, 0], True])
    expected = {user_map[u]: item_map[i] for u, i in raw[last_rows].tolist()}
    test = data.dataset["test"]
    got = dict(zip(test["user_id"], data.items.decode_many(test["target"]).tolist()))
    assert got == expected
    assert data.items.title(data.items.encode(1)) == "Toy Story (1995)"
    assert data.users.feature_names == ["gender", "age", "occupation"]


@pytest.mark.slow
def test_real_ml_latest_small(tmp_path, real_data) -> None:
    data = load("ml-latest-small", real_data, tmp_path)
    assert (data.users.num_users, data.items.num_items, data.interactions_count) == (610, 9724, 100_836)
    _check_leave_one_out(data)


# --------------------------------------------------------------------------------------------------------
# One code path: load_movielens and load_interactions on the same ratings give the same splits
# --------------------------------------------------------------------------------------------------------
ROW_COLUMNS = ("user_id", "user_index", "input_ids", "target", "timestamp")
SAME_PATH_CASES = [
    ("leave-one-out", {}),
    ("seed-windows", {"seed": 3}),
    ("temporal", {}),
    ("leave-one-out", {"min_rating": 4}),
    ("seed-windows", {"min_rating": 3, "k_core": 2}),
]


def _as_interactions(u_data: Path, csv: Path) -> Path:
    """ML-100K's ``u.data`` (tab-separated, no header) as a CSV that ``load_interactions`` reads."""
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [",".join(line.split("\t")) for line in u_data.read_text().splitlines() if line.strip()]
    return _write(csv, lines)


def _generic_twin(csv: Path, cache: Path, protocol: str, options: dict):
    """``load_interactions`` with the options of a ``load_movielens`` call (MovieLens has no min_history)."""
    filters = []
    if "min_rating" in options:
        filters.append({"name": "min_rating", "column": "rating", "threshold": options["min_rating"]})
    if "k_core" in options:
        filters.append({"k_core": {"user_k": options["k_core"], "item_k": options["k_core"]}})
    rest = {k: v for k, v in options.items() if k not in ("min_rating", "k_core")}
    return load_interactions(
        csv, time_column="timestamp", filters=filters, min_history=None, protocol=protocol, cache_dir=cache, **rest
    )


def _assert_same_splits(movielens, generic) -> None:
    # both vocabularies give tokens 1..n (users 1..m) in ascending id order, so the token ids coincide
    assert movielens.items.item_ids.tolist() == generic.items.item_ids.tolist()
    assert movielens.users.user_ids.tolist() == generic.users.user_ids.tolist()
    assert movielens.interactions_count == generic.interactions_count
    for split in ("train", "validation", "test"):
        a, b = movielens.dataset[split], generic.dataset[split]
        assert a.num_rows == b.num_rows, split
        for column in ROW_COLUMNS:
            assert a[column] == b[column], (split, column)
    # the filters are the same functions, reported the same way
    assert movielens.info["filters"] == generic.info["filters"]


@pytest.mark.parametrize(("protocol", "options"), SAME_PATH_CASES)
def test_movielens_and_load_interactions_give_the_same_splits(tmp_path, protocol, options) -> None:
    folder = write_ml100k(tmp_path / "d")
    movielens = load("ml-100k", folder, tmp_path, protocol=protocol, **options)
    csv = _as_interactions(folder / "u.data", tmp_path / "log" / "u_data.csv")
    _assert_same_splits(movielens, _generic_twin(csv, tmp_path / "generic", protocol, options))
    assert movielens.items.title(movielens.items.encode(1)) == "Toy Story (1995)"  # MovieLens keeps its metadata


@pytest.mark.slow
@pytest.mark.parametrize(("protocol", "options"), SAME_PATH_CASES)
def test_real_ml100k_movielens_and_load_interactions_give_the_same_splits(
    tmp_path, real_data, protocol, options
) -> None:
    movielens = load("ml-100k", real_data, tmp_path, protocol=protocol, **options)
    csv = _as_interactions(real_data / "movielens-100k" / "u.data", tmp_path / "log" / "u_data.csv")
    _assert_same_splits(movielens, _generic_twin(csv, tmp_path / "generic", protocol, options))


def _check_leave_one_out(data) -> None:
    """Targets are the last items; inputs are everything before; no target in its own input."""
    test, val, train = (data.dataset[s] for s in ("test", "validation", "train"))
    assert test.num_rows == data.users.num_users  # every real user has >= 20 ratings
    for t, v, tr in zip(test.select(range(50)), val.select(range(50)), train.select(range(50))):
        assert t["user_id"] == v["user_id"] == tr["user_id"]
        assert v["input_ids"] + [v["target"]] == t["input_ids"]
        assert tr["input_ids"] + [tr["target"]] == v["input_ids"]
    lengths = np.fromiter((len(x) for x in test["input_ids"]), dtype=np.int64)
    assert lengths.sum() + test.num_rows == data.interactions_count  # the test row holds the whole sequence
    for row in test.select(range(0, test.num_rows, 7)):  # each movie is rated once per user
        assert row["target"] not in row["input_ids"]


def test_chronological_order_is_stable_on_both_paths() -> None:
    """MovieLens sorts with the generic pipeline's ``chronological``: by (user, time), ties in file order."""
    rng = np.random.default_rng(1)
    users = rng.integers(1, 50, 2_000)
    stamps = rng.integers(0, 30, 2_000)  # many ties
    expected = sorted(range(users.size), key=lambda i: (users[i], stamps[i], i))

    def order(u: np.ndarray, t: np.ndarray) -> list[int]:
        inter = ml.Interactions(u, np.ones_like(u), t, np.full(u.size, 4.0, dtype=np.float32))
        return chronological(ml.interaction_log(inter)).table["row"].to_pylist()

    assert order(users, stamps) == expected
    # ids too large for the combined key: the lexsort fallback gives the same order
    huge = users.astype(np.int64) * 2**40
    assert order(huge, stamps * 2**30) == expected
