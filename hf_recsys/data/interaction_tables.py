"""Item and user tables of :func:`hf_recsys.data.interactions.load_interactions`: their options, their cache-key
fingerprint, and the feature files prepared beside the vocabularies.

An item table (CSV, TSV, Parquet, JSON Lines, a pandas DataFrame, or an S3-Rec ``*_item2attributes.json`` mapping,
see :func:`~hf_recsys.data.features.read_feature_table`) is aligned with the item tokens (row ``t`` = token ``t``,
row 0 = padding), a user table with the user indices (row ``u`` = user index ``u``, row 0 = the unknown user), by
:func:`~hf_recsys.data.features.build_feature_fields`. The cache folder then holds, per side,

* ``item_fields.json`` / ``user_fields.json``: the fields (:func:`~hf_recsys.data.features.save_feature_fields`);
* ``item_features.safetensors`` / ``user_features.safetensors``: one int32 matrix per field (no pickle).

An item table's title column becomes the :class:`~hf_recsys.data.vocab.ItemVocab` titles.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..modeling.fields import ITEM_FIELDS_FILE, USER_FIELDS_FILE
from .feature_fields import load_feature_fields, save_feature_fields
from .features import KINDS, EncodedFeatures, FeatureTable, build_feature_fields, read_feature_table
from .interaction_files import _stamp
from .movielens_errors import MissingDataError
from .vocab import ItemVocab, UserVocab

__all__ = ["SIDES", "TableOptions", "fields_file", "load_tables", "matrices_file", "table_options", "write_tables"]

SIDES = ("item", "user")
#: The modules that shape the prepared feature files (part of the code digest of a preparation with tables).
FEATURE_MODULES = ("interaction_tables", "features", "feature_fields", "feature_tables", "feature_values")


def fields_file(side: str) -> str:
    """``item_fields.json`` / ``user_fields.json``: the file of the fields in the cache folder (the names a run
    folder uses too, :data:`~hf_recsys.modeling.fields.ITEM_FIELDS_FILE`)."""
    return {"item": ITEM_FIELDS_FILE, "user": USER_FIELDS_FILE}[side]


def matrices_file(side: str) -> str:
    """``item_features.safetensors`` / ``user_features.safetensors``: the file of the matrices in the cache folder."""
    return f"{side}_features.safetensors"


def _pairs(value: str | Mapping[str, str] | None, what: str) -> str | tuple[tuple[str, str], ...] | None:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{what}={value!r}: expected a string or a mapping column -> value")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


@dataclass(frozen=True)
class TableOptions:
    """One item or user table of a preparation. Every field but ``source`` is an option of the cache key; the
    table's content enters the key through :meth:`fingerprint`."""

    side: str
    source: Any = field(compare=False, repr=False)  # a path, a pandas DataFrame or an {id: attributes} mapping
    id_column: str = ""
    title_column: str | None = None
    feature_columns: tuple[str, ...] | None = None
    kinds: str | tuple[tuple[str, str], ...] | None = None
    delimiter: str | tuple[tuple[str, str], ...] | None = None

    @property
    def is_file(self) -> bool:
        """True when the table is a path."""
        return isinstance(self.source, str | os.PathLike)

    @property
    def label(self) -> str:
        """The table's file (resolved path), or what it was made from."""
        if self.is_file:
            return str(Path(self.source).resolve())
        return "pandas DataFrame" if type(self.source).__name__ == "DataFrame" else "id -> attributes mapping"

    @property
    def source_file(self) -> str:
        """The file name (``describe()``), or what the table was made from."""
        return Path(self.source).name if self.is_file else self.label

    def to_dict(self) -> dict[str, Any]:
        """JSON-able options (the table as :attr:`label`)."""
        unpair = lambda v: dict(v) if isinstance(v, tuple) else v  # noqa: E731
        cols = None if self.feature_columns is None else list(self.feature_columns)
        return {"table": self.label, "id_column": self.id_column, "title_column": self.title_column,
                "feature_columns": cols, "kinds": unpair(self.kinds), "delimiter": unpair(self.delimiter)}  # fmt: skip

    def fingerprint(self) -> Any:
        """What identifies the table's content: a file's path, size and mtime (as for the log's files), else the
        ``datasets`` content hash of the DataFrame or mapping. A missing file raises ``MissingDataError``."""
        if self.is_file:
            path = Path(self.source)
            if not path.is_file():
                raise MissingDataError("file not found", path, expected=f"the {self.side} table ({self.side}_table=)")
            return _stamp(str(path))
        from datasets.fingerprint import Hasher

        return Hasher.hash(self.source)

    def read(self) -> FeatureTable:
        """The checked table (:func:`~hf_recsys.data.features.read_feature_table`)."""
        return read_feature_table(
            self.source,
            self.id_column,
            title_column=self.title_column,
            feature_columns=self.feature_columns,
            kinds=dict(self.kinds) if isinstance(self.kinds, tuple) else self.kinds,
            delimiter=dict(self.delimiter) if isinstance(self.delimiter, tuple) else self.delimiter,
        )


def table_options(
    side: str,
    source: Any,
    default_id_column: str,
    *,
    id_column: str | None = None,
    title_column: str | None = None,
    feature_columns: Sequence[str] | None = None,
    kinds: str | Mapping[str, str] | None = None,
    delimiter: str | Mapping[str, str] | None = None,
) -> TableOptions | None:
    """Validated options of one table (None without one): bad values fail here, before any file is read.

    ``default_id_column`` (the log's item or user column) is the key column unless ``id_column`` names one.
    """
    given = {"id_column": id_column, "title_column": title_column, "feature_columns": feature_columns,
             "feature_kinds": kinds, "delimiter": delimiter}  # fmt: skip
    if source is None:
        extra = [f"{side}_{k}" for k, v in given.items() if v is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} given without {side}_table")
        return None
    if not isinstance(source, str | os.PathLike | Mapping) and type(source).__name__ != "DataFrame":
        raise TypeError(f"{side}_table: expected a path, a pandas DataFrame or a mapping, got {type(source).__name__}")
    if side == "user" and title_column is not None:
        raise ValueError("user tables have no title column")
    for k in kinds.values() if isinstance(kinds, Mapping) else [kinds] if kinds is not None else []:
        if k not in (*KINDS, "auto"):
            raise ValueError(f"{side}_feature_kinds: kind {k!r} is not one of {(*KINDS, 'auto')}")
    cols = None if feature_columns is None else (feature_columns,) if isinstance(feature_columns, str) else feature_columns  # fmt: skip
    return TableOptions(
        side, os.fspath(source) if isinstance(source, os.PathLike) else source, id_column or default_id_column,
        title_column, None if cols is None else tuple(str(c) for c in cols), _pairs(kinds, f"{side}_feature_kinds"),
        _pairs(delimiter, f"{side}_delimiter"),
    )  # fmt: skip


def _summary(table: TableOptions, encoded: EncodedFeatures) -> dict[str, Any]:
    """What ``describe()`` says of a table: its file, its fields and how its ids matched the log's."""
    r = encoded.report
    fields = {n: {"kind": f.kind, "size": f.size, "max_values": f.max_values} for n, f in encoded.fields.items()}
    counts = {k: r[k] for k in ("ids", "matched", "missing_from_table", "unused_table_rows")}
    return {"source_file": table.source_file, "id_column": table.id_column, "fields": fields, **counts}


def _save_matrices(path: Path, matrices: dict[str, np.ndarray]) -> None:
    """safetensors file of the matrices, written atomically (temp file in the same folder + ``os.replace``)."""
    from safetensors.numpy import save_file

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({n: np.ascontiguousarray(m, dtype=np.int32) for n, m in matrices.items()}, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_tables(
    folder: str | os.PathLike[str],
    tables: Mapping[str, tuple[TableOptions, FeatureTable]],
    items: ItemVocab,
    users: UserVocab,
) -> tuple[ItemVocab, dict[str, dict[str, Any]]]:
    """Align each read table with the vocabularies and write its fields and matrices into ``folder``.

    Returns the item vocabulary (with the item table's titles, if it has a title column) and, per side, the
    ``describe()`` summary and the full matching report: ``{"item": {"summary": ..., "report": ...}, ...}``.

    Raises:
        FeatureTableError: no id of the log is in a table (the message names the file and the key column).
    """
    folder, out = Path(folder), {}
    for side, (opts, table) in tables.items():
        ids = items.item_ids if side == "item" else users.user_ids
        encoded = build_feature_fields(table, ids)
        save_feature_fields(folder / fields_file(side), encoded.fields)
        _save_matrices(folder / matrices_file(side), encoded.matrices)
        if side == "item" and encoded.titles is not None:
            items = ItemVocab(items.item_ids, titles=encoded.titles, id_type=items.id_type)
        out[side] = {"summary": _summary(opts, encoded), "report": encoded.report, "titles": encoded.titles is not None}
    return items, out


def load_tables(folder: str | os.PathLike[str], info: Mapping[str, Any], items: ItemVocab) -> dict[str, EncodedFeatures | None]:  # fmt: skip
    """The :class:`~hf_recsys.data.features.EncodedFeatures` of each side stored in a prepared cache folder (None
    for a side without a table); the item titles come from the item vocabulary."""
    from safetensors.numpy import load_file

    folder, stored = Path(folder), info.get("tables") or {}
    out: dict[str, EncodedFeatures | None] = dict.fromkeys(SIDES)
    for side, entry in stored.items():
        fields = {f.name: f for f in load_feature_fields(folder / fields_file(side))}
        matrices = load_file(str(folder / matrices_file(side)))
        titles = [items.title(t) for t in range(1, len(items))] if entry.get("titles") else None
        out[side] = EncodedFeatures(fields, {n: matrices[n] for n in fields}, titles, entry["report"])
    return out
