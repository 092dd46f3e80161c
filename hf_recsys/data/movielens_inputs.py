"""Where a MovieLens preparation's files come from: a local folder (a release's files, its zip, or the
SASRec-format fallback with its id maps), a download, or the ``sequences`` config's paths and URLs."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from transformers.utils import logging

from .movielens_download import (
    _NETWORK_ERRORS,
    _atomic_write_text,
    _download_reason,
    _extract_zip,
    _fetch,
    _fetch_text,
    _is_http_url,
    _offline_mode,
    _one_line,
    _read_md5_file,
    _url_digest,
)
from .movielens_errors import ChecksumMismatchError, DataFormatError, MissingDataError
from .movielens_releases import _MD5_RE, DATA_DIR_ENV, GROUPLENS_MD5_ENV, RELEASES, Release

logger = logging.get_logger("hf_recsys.data.movielens")  # one logger for every MovieLens module

_DOWNLOAD_SUBDIR = "movielens"  # under the datasets download cache


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


class ReleaseInputs:
    """The part of :class:`~hf_recsys.data.movielens.MovieLensBuilder` that finds what a preparation reads.

    A release's files in the configured folder (``data_dir`` or ``$HF_RECSYS_DATA_DIR``), its archive there, or the
    archive downloaded into the ``datasets`` download cache (MD5-checked, then extracted); or the files of the
    ``sequences`` config. Nothing here reads the data: :meth:`_locate_local` only looks (for the cache key),
    :meth:`_resolve_inputs` also downloads and extracts.
    """

    config: Any  # MovieLensConfig
    _download_source: tuple[str, str | None] | None
    _cache_downloaded_dir: str

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
