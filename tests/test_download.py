"""The download path of the MovieLens builder, for real, against a loopback HTTP server.

Each test builds a tiny release zip in the official layout (``ml-1m/ratings.dat``, ``movies.dat``,
``users.dat``; ``ml-latest-small/ratings.csv``, ``movies.csv``) and serves it from ``http.server`` on
127.0.0.1 (port 0, a thread). ``HF_RECSYS_GROUPLENS_URL`` points the builder at the server and
``HF_RECSYS_GROUPLENS_MD5`` gives the checksum of the tiny archive. conftest.py turns on the offline
mode of ``datasets``, which refuses downloads; the tests that download turn it off for themselves
(``datasets.config.HF_HUB_OFFLINE``), and one test checks that offline mode does refuse.

After every failure the tests check that nothing half-written is left: no archive (partial or
unverified) in the download cache, no extracted files, no ``datasets`` cache folder for the build.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest

from hf_recsys.data import ChecksumMismatchError, MissingDataError, load_movielens, movielens_download
from hf_recsys.data import movielens as ml

# (user, movie, rating, timestamp); per user in time order: 1: 10, 20, 30, 40; 2: 20, 30, 50; 3: 40, 10, 50, 20
RATINGS = [
    (1, 30, 4, 300), (2, 20, 5, 100), (1, 10, 3, 100), (3, 40, 2, 10), (1, 20, 5, 200), (2, 50, 4, 900),
    (3, 10, 4, 20), (2, 30, 3, 300), (3, 50, 5, 30), (1, 40, 4, 400), (3, 20, 1, 40),
]  # fmt: skip
SEQUENCES = {1: [10, 20, 30, 40], 2: [20, 30, 50], 3: [40, 10, 50, 20]}
MOVIES = {10: "Heat (1995)", 20: "Fargo (1996)", 30: "Alien (1979)", 40: "Clerks (1994)", 50: "Se7en (1995)"}


def ml1m_zip() -> bytes:
    """A tiny ML-1M-shaped archive: ``ml-1m/{ratings,movies,users}.dat`` and a README, as GroupLens ships it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ml-1m/ratings.dat", "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in RATINGS))
        z.writestr("ml-1m/movies.dat", "".join(f"{m}::{t}::Drama\n" for m, t in MOVIES.items()).encode("latin-1"))
        z.writestr("ml-1m/users.dat", "".join(f"{u}::F::25::{u}::12345\n" for u in SEQUENCES))
        z.writestr("ml-1m/README", "tiny test release\n")
    return buffer.getvalue()


def latest_small_zip() -> bytes:
    """A tiny ml-latest-small-shaped archive (CSV files with CRLF line endings, as the official zip)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        rows = ["userId,movieId,rating,timestamp", *(f"{u},{m},{r - 0.5},{t}" for u, m, r, t in RATINGS)]
        z.writestr("ml-latest-small/ratings.csv", "\r\n".join(rows) + "\r\n")
        movies = ["movieId,title,genres", *(f"{m},{t},Drama" for m, t in MOVIES.items())]
        z.writestr("ml-latest-small/movies.csv", "\r\n".join(movies) + "\r\n")
    return buffer.getvalue()


class Server:
    """A loopback HTTP server: ``files`` maps URL paths to bytes; ``truncate`` paths send half their body."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: Counter[str] = Counter()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] += 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, path: str, body: bytes) -> str:
        """Serve ``body`` at ``path``; returns its MD5."""
        self.files[path] = body
        return hashlib.md5(body).hexdigest()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch) -> None:
    """Downloads allowed (conftest.py sets offline mode), no local data folder, no override left from outside."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    if hasattr(datasets.config, "HF_DATASETS_OFFLINE"):
        monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    for name in (ml.DATA_DIR_ENV, ml.GROUPLENS_URL_ENV, ml.GROUPLENS_MD5_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def default_cache(tmp_path, monkeypatch) -> Path:
    """Point the default ``datasets`` cache (``$HF_HOME/datasets``, downloads inside it) at a fresh folder."""
    home = tmp_path / "hf_home" / "datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home)
    monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", home / datasets.config.DOWNLOADED_DATASETS_DIR)
    return home


def leftovers(root: Path) -> list[str]:
    """Everything under ``root`` except the zero-byte lock files that ``datasets`` creates in the cache root."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not (p.parent == root and p.suffix == ".lock"))


def sequences_of(data, split: str = "test") -> dict[int, list[int]]:
    return {
        row["user_id"]: data.items.decode_many([*row["input_ids"], row["target"]]).tolist()
        for row in data.dataset[split]
    }


# --------------------------------------------------------------------------------------------------------
# (a) a successful download
# --------------------------------------------------------------------------------------------------------
def test_download_build_and_reload(tmp_path, server, monkeypatch) -> None:
    digest = server.serve("/movielens/ml-1m.zip", ml1m_zip())
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, f"{server.url}/movielens")  # a base URL: the archive name is appended
    monkeypatch.setenv(ml.GROUPLENS_MD5_ENV, digest)
    cache = tmp_path / "cache"

    data = load_movielens("ml-1m", cache_dir=cache)
    assert server.requests == {"/movielens/ml-1m.zip": 1}
    assert (data.users.num_users, data.items.num_items, data.interactions_count) == (3, 5, len(RATINGS))
    assert data.users.user_ids.tolist() == [1, 2, 3]
    assert sequences_of(data) == SEQUENCES
    assert data.items.title(data.items.encode(20)) == "Fargo (1996)"
    url = f"{server.url}/movielens/ml-1m.zip"
    described = data.describe()
    assert described == {
        "name": "ml-1m",
        "title": "MovieLens 1M",
        "variant": "official",
        "source_file": "ratings.dat",
        "description": "Official MovieLens 1M ratings.dat (downloaded ml-1m.zip), all movies that have ratings.",
        "num_users": 3,
        "num_items": 5,
        "num_interactions": len(RATINGS),
        "url": "https://grouplens.org/datasets/movielens/1m/",
        "license": ml.GROUPLENS_LICENSE,
        "protocol": "leave-one-out",
        "min_rating": None,
        "k_core": None,
        "filters": {"filters": []},
        "repeat_consumption": {"repeat_share": 0.0, "repeats": False},
        "archive": "ml-1m.zip",
        "archive_md5": digest,
        "download_url": url,
    }
    assert "downloaded from" in data.info["source"]
    # the verified archive sits in the download cache under a digest of its URL, nothing else beside it
    archive = cache / "downloads" / "movielens" / movielens_download._url_digest(url) / "ml-1m.zip"
    assert archive.is_file() and hashlib.md5(archive.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in archive.parent.iterdir()) == ["ml-1m.zip", "ml-1m.zip.md5"]
    assert not [p for p in cache.rglob("*") if p.name.endswith((".incomplete", ".tmp"))]

    # a cached reload: no request, the same description (stored at build time)
    again = load_movielens("ml-1m", cache_dir=cache)
    assert server.requests["/movielens/ml-1m.zip"] == 1
    assert again.describe() == described and again.cache_dir == data.cache_dir
    # a new build (another protocol) in offline mode reuses the downloaded archive
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    windows = load_movielens("ml-1m", cache_dir=cache, protocol="seed-windows")
    assert server.requests["/movielens/ml-1m.zip"] == 1
    assert windows.describe()["protocol"] == "seed-windows" and windows.describe()["num_items"] == 5


def test_url_template_and_per_call_options(tmp_path, server, monkeypatch) -> None:
    digest = server.serve("/mirror/ml-1m.zip?x=1", ml1m_zip())
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, f"{server.url}/mirror/{{archive}}?x=1")  # a template
    monkeypatch.setenv(ml.GROUPLENS_MD5_ENV, digest)
    assert ml.RELEASES["ml-1m"].url == f"{server.url}/mirror/ml-1m.zip?x=1"
    assert load_movielens("ml-1m", cache_dir=tmp_path / "a").users.num_users == 3
    # url=/md5= win over the variables
    other = server.serve("/other.zip", ml1m_zip() + b"")
    data = load_movielens("ml-1m", cache_dir=tmp_path / "b", url=f"{server.url}/other.zip", md5=other)
    assert data.describe()["download_url"] == f"{server.url}/other.zip"
    assert server.requests["/other.zip"] == 1
    monkeypatch.setenv(ml.GROUPLENS_MD5_ENV, "not-a-digest")
    with pytest.raises(ValueError, match="HF_RECSYS_GROUPLENS_MD5='not-a-digest' is not an MD5 digest"):
        load_movielens("ml-1m", cache_dir=tmp_path / "c")


def test_release_without_built_in_md5_uses_the_published_checksum(tmp_path, server, monkeypatch) -> None:
    """ml-latest-small has no MD5 in the code: the ``<archive>.md5`` file that GroupLens publishes is used."""
    body = latest_small_zip()
    digest = server.serve("/ml-latest-small.zip", body)
    server.serve("/ml-latest-small.zip.md5", f"MD5 (ml-latest-small.zip) = {digest}\n".encode())
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, server.url)
    data = load_movielens("ml-latest-small", cache_dir=tmp_path / "cache")
    assert sequences_of(data) == SEQUENCES
    assert data.describe()["variant"] == "official" and data.describe()["source_file"] == "ratings.csv"
    # a wrong published checksum is refused like any mismatch
    server.serve("/ml-latest-small.zip.md5", b"0" * 32)
    cache = tmp_path / "fresh"
    with pytest.raises(ChecksumMismatchError, match=r"expected 0{32}"):
        load_movielens("ml-latest-small", cache_dir=cache)
    assert leftovers(cache) == []


def test_corrupt_cached_archive_is_downloaded_again(tmp_path, server, monkeypatch) -> None:
    digest = server.serve("/ml-1m.zip", ml1m_zip())
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, server.url)
    monkeypatch.setenv(ml.GROUPLENS_MD5_ENV, digest)
    load_movielens("ml-1m", cache_dir=tmp_path / "cache")
    archive = (
        tmp_path
        / "cache"
        / "downloads"
        / "movielens"
        / movielens_download._url_digest(f"{server.url}/ml-1m.zip")
        / "ml-1m.zip"
    )
    archive.write_bytes(archive.read_bytes()[:100])  # e.g. a disk problem
    data = load_movielens("ml-1m", cache_dir=tmp_path / "cache", protocol="temporal")  # a new build reads it
    assert server.requests["/ml-1m.zip"] == 2 and hashlib.md5(archive.read_bytes()).hexdigest() == digest
    assert data.users.num_users == 3


# --------------------------------------------------------------------------------------------------------
# (b) a checksum mismatch is refused and leaves nothing behind
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["cache_dir", "default cache ($HF_HOME)"])
def test_checksum_mismatch_is_refused_and_leaves_no_cache(tmp_path, server, monkeypatch, default_cache, where) -> None:
    """A tiny zip served as ml-1m.zip does not have the official MD5 built into the code: refused."""
    server.serve("/ml-1m.zip", ml1m_zip())
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, server.url)
    cache_dir = tmp_path / "cache" if where == "cache_dir" else None
    root = cache_dir or default_cache
    with pytest.raises(ChecksumMismatchError) as info:
        load_movielens("ml-1m", cache_dir=cache_dir)
    message = str(info.value)
    assert "\n" not in message
    assert f"{server.url}/ml-1m.zip" in message and ml.RELEASES["ml-1m"].md5 in message
    assert "it was not kept" in message
    assert server.requests["/ml-1m.zip"] == 1
    # nothing half-written: no archive, no extracted files, no datasets cache folder (.incomplete or not)
    assert leftovers(root) == []
    if cache_dir is not None:
        assert not (tmp_path / "hf_home").exists()  # with cache_dir, nothing goes to $HF_HOME
    builder = ml.MovieLensBuilder(config_name="ml-1m", cache_dir=None if cache_dir is None else str(cache_dir))
    assert not Path(builder.cache_dir).exists() and not Path(f"{builder.cache_dir}.incomplete").exists()
    # the same files with the right MD5 then work
    monkeypatch.setenv(ml.GROUPLENS_MD5_ENV, hashlib.md5(server.files["/ml-1m.zip"]).hexdigest())
    assert load_movielens("ml-1m", cache_dir=cache_dir).users.num_users == 3


# --------------------------------------------------------------------------------------------------------
# (c) a configured folder that does not exist
# --------------------------------------------------------------------------------------------------------
def test_configured_but_missing_folder_is_a_one_line_error(tmp_path, server, monkeypatch) -> None:
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv(ml.DATA_DIR_ENV, str(missing))
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, server.url)  # must not be contacted
    cache = tmp_path / "cache"
    with pytest.raises(MissingDataError) as info:
        load_movielens("ml-1m", cache_dir=cache)
    assert str(info.value) == (
        f"HF_RECSYS_DATA_DIR={missing}: folder not found; unset it to download the official archive, "
        "or point it at a folder holding ml-1m.zip or its files"
    )
    assert isinstance(info.value, FileNotFoundError) and info.value.path == str(missing)
    monkeypatch.delenv(ml.DATA_DIR_ENV)
    with pytest.raises(MissingDataError) as info:
        load_movielens("ml-100k", data_dir=missing, cache_dir=cache)
    assert str(info.value) == (
        f"data_dir={missing}: folder not found; omit data_dir (and leave HF_RECSYS_DATA_DIR unset) to download "
        "the official archive, or point it at a folder holding ml-100k.zip or its files"
    )
    assert not cache.exists() and server.requests == {}  # raised before anything was written or fetched


# --------------------------------------------------------------------------------------------------------
# (d) a failed download
# --------------------------------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_is_a_one_line_missing_data_error(tmp_path, monkeypatch) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, url)
    cache = tmp_path / "cache"
    with pytest.raises(MissingDataError) as info:
        load_movielens("ml-1m", cache_dir=cache)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {url}/ml-1m.zip: ConnectionRefusedError")
    assert message.endswith(
        "To use local files instead, set HF_RECSYS_DATA_DIR (or pass data_dir=...) to a folder holding ml-1m.zip "
        "or its extracted files"
    )
    assert info.value.path == f"{url}/ml-1m.zip"
    assert leftovers(cache) == []


def test_http_error_truncated_transfer_and_offline_mode(tmp_path, server, monkeypatch) -> None:
    monkeypatch.setenv(ml.GROUPLENS_URL_ENV, server.url)
    cache = tmp_path / "cache"
    with pytest.raises(MissingDataError, match=r"could not download http://127\.0\.0\.1:\d+/ml-1m\.zip: HTTP 404"):
        load_movielens("ml-1m", cache_dir=cache)
    assert leftovers(cache) == []
    # the server sends half of the archive and closes the connection: no partial archive is kept
    digest = server.serve("/ml-1m.zip", ml1m_zip())
    server.truncate.add("/ml-1m.zip")
    monkeypatch.setenv(ml.GROUPLENS_MD5_ENV, digest)
    with pytest.raises(MissingDataError, match=r"ml-1m\.zip: connection closed after \d+ of \d+ bytes") as info:
        load_movielens("ml-1m", cache_dir=cache)
    assert "\n" not in str(info.value)
    assert leftovers(cache) == []
    # offline mode refuses the download before contacting the server
    server.truncate.clear()
    requests = server.requests["/ml-1m.zip"]
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(MissingDataError, match=r"ml-1m\.zip: offline mode is on .*set HF_RECSYS_DATA_DIR"):
        load_movielens("ml-1m", cache_dir=cache)
    assert server.requests["/ml-1m.zip"] == requests and leftovers(cache) == []
    # a data folder without the release (set by the variable) falls through to the download, and says so
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(ml.DATA_DIR_ENV, str(other))
    with pytest.raises(MissingDataError, match=rf"\(HF_RECSYS_DATA_DIR={other} holds no ml-1m files\)"):
        load_movielens("ml-1m", cache_dir=cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert load_movielens("ml-1m", cache_dir=cache).describe()["variant"] == "official"
