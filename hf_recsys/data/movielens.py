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

The modules
-----------
This module is the public face (its public names stay importable from here); the work is split by concern:
:mod:`.movielens_releases` (the releases, environment variables, side-information codes),
:mod:`.movielens_errors`, :mod:`.movielens_files` (ratings, SASRec-format files and id maps, and
:func:`interaction_log`, the hand-over to the shared pipeline), :mod:`.movielens_metadata` (titles, genres,
demographics), :mod:`.movielens_inputs` / :mod:`.movielens_download` (locating, downloading, MD5-checking and
extracting), :mod:`.movielens_builder` (:class:`MovieLensConfig`, :class:`MovieLensBuilder`) and
:mod:`.movielens_data` (:func:`load_movielens`, :class:`MovieLensData`, :func:`push_dataset_to_hub`). After reading,
a release goes through :func:`hf_recsys.data.log_pipeline.prepare_log`, the same sorting, filters (``min_rating``,
``k_core``, reported in ``describe()["filters"]``), vocabularies and protocol rows as
:func:`~hf_recsys.data.interactions.load_interactions`, so both give identical splits on the same ratings.
"""

from __future__ import annotations

from .movielens_builder import INFO_FILE, MovieLensBuilder, MovieLensConfig
from .movielens_data import MovieLensData, load_movielens, push_dataset_to_hub
from .movielens_errors import ChecksumMismatchError, DataFormatError, MissingDataError
from .movielens_files import RATING, Interactions, interaction_log, read_id_map, read_ratings, read_sasrec
from .movielens_metadata import MovieMetadata, UserMetadata, read_movies, read_users
from .movielens_releases import (
    CONFIG_NAMES,
    DATA_DIR_ENV,
    GROUPLENS_LICENSE,
    GROUPLENS_MD5_ENV,
    GROUPLENS_URL,
    GROUPLENS_URL_ENV,
    RELEASES,
    Release,
    age_group,
    parse_year,
)
from .splits import PROTOCOLS, ROW_FEATURES
from .vocab import load_vocabs  # the cache folder's vocabularies (the docstring's example)

__all__ = [
    "CONFIG_NAMES",
    "DATA_DIR_ENV",
    "GROUPLENS_LICENSE",
    "GROUPLENS_MD5_ENV",
    "GROUPLENS_URL",
    "GROUPLENS_URL_ENV",
    "INFO_FILE",
    "PROTOCOLS",
    "RATING",
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
    "load_vocabs",
    "parse_year",
    "push_dataset_to_hub",
    "read_id_map",
    "read_movies",
    "read_ratings",
    "read_sasrec",
    "read_users",
]
