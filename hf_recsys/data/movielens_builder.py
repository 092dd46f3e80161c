"""The MovieLens ``datasets`` builder: its options (:class:`MovieLensConfig`), its cache key, and the preparation
itself, which reads a release (:mod:`.movielens_files`, :mod:`.movielens_metadata`) and hands the interactions to
the pipeline every builder shares (:func:`hf_recsys.data.log_pipeline.prepare_log`). Where the files come from is
:class:`~hf_recsys.data.movielens_inputs.ReleaseInputs`; see :mod:`hf_recsys.data.movielens` for the whole story."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers.utils import logging

from .filters import FilterReport
from .log_pipeline import prepare_log
from .movielens_files import (
    RATING,
    Interactions,
    _apply_id_map,
    interaction_log,
    read_id_map,
    read_ratings,
    read_sasrec,
)
from .movielens_inputs import ReleaseInputs, _Inputs, _is_url
from .movielens_metadata import MovieMetadata, UserMetadata, read_movies, read_users
from .movielens_releases import _MD5_HEX_RE, CONFIG_NAMES, GROUPLENS_LICENSE, RELEASES
from .splits import ROW_FEATURES, SPLITS, SplitRowsBuilder, check_protocol_options, protocol_fractions
from .vocab import ItemVocab, UserVocab, atomic_write_json, save_vocabs

logger = logging.get_logger("hf_recsys.data.movielens")  # one logger for every MovieLens module

INFO_FILE = "movielens_info.json"

_CITATION = """\
@article{harper2015movielens,
  title={The MovieLens Datasets: History and Context},
  author={Harper, F. Maxwell and Konstan, Joseph A.},
  journal={ACM Transactions on Interactive Intelligent Systems (TiiS)},
  volume={5}, number={4}, pages={19:1--19:19}, year={2015}, doi={10.1145/2827872}
}"""


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


_VERSION = datasets.Version("1.3.0")  # bump when the builder's output (rows, vocabularies, info) changes
_INFO_DESCRIPTION = "MovieLens ratings as tokenized next-movie examples (history -> target)."


# the modules that shape the prepared data: MovieLens' readers, then the pipeline every builder shares
_DATA_MODULES = tuple(
    f"{__package__}.{name}"
    for name in (
        "movielens_releases", "movielens_files", "movielens_metadata", "movielens_inputs",
        "log_pipeline", "filters", "interaction_log", "input_errors", "splits", "vocab",
    )
)  # fmt: skip


def _module_sources_digest() -> str:
    """Digest of the code that shapes the prepared data: this module, the readers, the shared pipeline and the
    vocabularies.

    Editing the parsing, filtering, splitting or tokenization code invalidates caches; unrelated modules
    (collator, models) do not.
    """
    h = hashlib.sha256()
    for module in (__name__, *_DATA_MODULES, ItemVocab.__module__):
        path = Path(importlib.import_module(module).__file__ or "")
        h.update(module.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class MovieLensBuilder(ReleaseInputs, SplitRowsBuilder):
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
        log = interaction_log(inter, str(inputs.ratings or inputs.sequences), inputs.files())
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
        data["repeat_consumption"] = prep.repeat_consumption
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
