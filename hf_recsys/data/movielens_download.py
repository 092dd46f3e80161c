"""Downloading and extracting a release archive safely: the bytes stream into a temporary file, are MD5-checked
and only then renamed into place; extraction goes to a temporary folder renamed on success. A failure leaves
nothing behind."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import datasets
from datasets.utils.tqdm import tqdm as hf_tqdm

from .movielens_errors import ChecksumMismatchError, DataFormatError
from .movielens_releases import _MD5_RE, DATA_DIR_ENV

_DOWNLOAD_TIMEOUT_S = 60.0

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
