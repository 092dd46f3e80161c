"""Item and user feature tables -> feature fields, the side features of any data set (groundwork of issue 21).

A table is keyed by item (or user) id. Each feature column becomes a field of one kind:

* ``categorical``: one value per row (brand, gender, occupation).
* ``multi``: a list, or a delimited string such as ``Action|Comedy`` (genres, tags, S3-Rec attributes); a set:
  repeats merge, and a row's values are ordered by repeats, then first occurrence (what a ``max_values`` cut keeps).
* ``numeric``: bucketed by quantiles (price, year, age). Rule: with at most ``max_buckets`` (16) distinct values
  each value is its own bucket; otherwise the cut points are the ``i / max_buckets`` quantiles (inverted CDF: data
  values), repeats removed, so tied data get fewer buckets. Bucket ``b`` holds ``edges[b-2] <= x < edges[b-1]``.

Index 0 means padding, missing or unknown. A field is a :class:`FeatureField` (JSON round trip, so that, saved
beside a model, it encodes new items later; unseen values -> 0) and an int32 matrix ``(len(ordered_ids) + 1,
max_values)`` in token order (row ``t`` = ``ordered_ids[t - 1]``; row 0, the padding token or unknown user, is
zero) that feeds ``nn.EmbeddingBag(mode="mean", padding_idx=0)`` as is. Categorical and multi values compare as
normalised text (trimmed, ``3.0`` -> ``"3"``, empty = missing), so CSV, Parquet and JSON requests agree. Fields
are fitted on the rows whose id is in ``ordered_ids``: a value seen only outside them would never be trained.

    table = read_feature_table("items.csv", "item_id", title_column="title")  # kinds="auto": table.inferred
    feats = build_feature_fields(table, item_vocab.item_ids)  # feats.matrices["genres"], feats.report
    save_feature_fields("model/item_fields.json", feats.fields)  # load_feature_fields(...) to encode new items

The code is split by concern: :mod:`.feature_tables` reads and checks a table, :mod:`.feature_fields` holds
:class:`FeatureField` (fitting, encoding, the JSON file), :mod:`.feature_values` normalises raw column values and
:mod:`.feature_errors` holds :class:`FeatureTableError`; this module aligns a table with the token order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .feature_errors import FeatureTableError, _Where
from .feature_fields import (
    DEFAULT_DELIMITER,
    KINDS,
    MAX_BUCKETS,
    FeatureField,
    _fit,
    load_feature_fields,
    save_feature_fields,
)
from .feature_tables import AUTO_NUMERIC_MIN_DISTINCT, MAPPING_COLUMN, FeatureTable, read_feature_table
from .feature_values import _column, _keys
from .input_errors import InputDataError

__all__ = [
    "AUTO_NUMERIC_MIN_DISTINCT",
    "DEFAULT_DELIMITER",
    "KINDS",
    "MAPPING_COLUMN",
    "MAX_BUCKETS",
    "EncodedFeatures",
    "FeatureField",
    "FeatureTable",
    "FeatureTableError",
    "InputDataError",
    "build_feature_fields",
    "load_feature_fields",
    "read_feature_table",
    "save_feature_fields",
]

logger = logging.getLogger(__name__)


@dataclass
class EncodedFeatures:
    """What :func:`build_feature_fields` makes: the fields by name; one int32 matrix per field, in token order,
    row 0 = padding; the titles in token order (None where unknown, or no title column); the matching report."""

    fields: dict[str, FeatureField]
    matrices: dict[str, np.ndarray]
    titles: list[str | None] | None
    report: dict[str, Any]


def build_feature_fields(
    table: FeatureTable,
    ordered_ids: Sequence[Any] | np.ndarray,
    *,
    fields: Iterable[FeatureField] | Mapping[str, FeatureField] | None = None,
    max_values: int | Mapping[str, int] | None = None,
    max_buckets: int = MAX_BUCKETS,
) -> EncodedFeatures:
    """Feature fields and their matrices for the ids in token order (token ``t`` is ``ordered_ids[t - 1]``).

    Why: the model looks a token's features up by row, so the table is aligned with the vocabulary once, here,
    vectorised. Ids that are not in the table get all-zero rows and table rows of other ids are ignored; both
    are counted in ``report`` (with up to 5 examples). Integer and string ids are matched as text.

    Args:
        fields: reuse these fields (a trained model's) instead of fitting new ones, e.g. for new items at
            fine-tuning time: unseen values give 0 and multi matrices keep the fields' ``max_values``.
        max_values: at most this many values per multi row (an int, or a mapping column -> int); default the
            longest row. Rows cut are counted in ``report["fields"][name]["truncated_rows"]``.
        max_buckets: at most this many buckets per numeric field.

    Raises:
        FeatureTableError: no id is in the table (usually ids of another form); repeated ``ordered_ids``.
        ValueError: ``fields`` that do not fit the table's columns.
    """
    ids = _keys(_column(np.asarray(ordered_ids), _Where("ordered_ids"), None), _Where("ordered_ids"), "ordered_ids")
    keys = table.data[table.key_column].combine_chunks()
    match = "exact" if ids.type == keys.type else "as text"
    a, b = (ids, keys) if match == "exact" else (ids.cast(pa.large_string()), keys.cast(pa.large_string()))
    pos = pd.Index(b.to_numpy(zero_copy_only=False)).get_indexer(a.to_numpy(zero_copy_only=False))
    matched, n = pos >= 0, len(ids)
    rows, n_matched = pos[pos >= 0], int(np.count_nonzero(pos >= 0))
    used = np.zeros(table.data.num_rows, dtype=bool)
    used[rows] = True
    missing, unused = ids.filter(pa.array(~matched))[:5].to_pylist(), keys.filter(pa.array(~used))[:5].to_pylist()
    if n and table.data.num_rows and not n_matched:
        raise FeatureTableError(f"none of the {n} ids is in the table (ids {missing}..., keys {unused}...)",
                                table.source, column=table.key_column, expected="the ids of the log")  # fmt: skip
    given = (
        None if fields is None else {f.name: f for f in (fields.values() if isinstance(fields, Mapping) else fields)}
    )
    for name, f in (given or {}).items():
        if table.kinds.get(name, f.kind) != f.kind or name not in table.kinds:
            got = table.kinds.get(name, "absent")
            raise ValueError(f"field {name!r} ({f.kind}) does not fit column {name!r} of {table.source} ({got})")
    where = table.where  # the columns were checked when read: no error can name a row here
    take = pa.array(rows, pa.int64())
    out_fields, matrices, stats = {}, {}, {}
    for name in given or table.kinds:
        col = table.data[name].combine_chunks().take(take)
        if given is not None:
            f, width, exact = given[name], given[name].max_values, True
        else:
            f = _fit(name, table.kinds[name], col, table.delimiters[name], where, max_buckets)
            width = max_values.get(name) if isinstance(max_values, Mapping) else max_values
            exact = False
        m, cut = f._encode(col, where, width, exact, table.delimiters[name])  # the table's own delimiter
        f.max_values = m.shape[1]
        matrices[name] = np.zeros((n + 1, m.shape[1]), dtype=np.int32)
        matrices[name][1 + np.flatnonzero(matched)] = m
        out_fields[name] = f
        stats[name] = {"kind": f.kind, "size": f.size, "max_values": f.max_values, "truncated_rows": cut,
                       "rows_without_value": int(np.count_nonzero(~m.any(axis=1)))}  # fmt: skip
    titles = None
    if table.title_column:
        t = np.full(n, None, dtype=object)
        t[matched] = table.data[table.title_column].combine_chunks().take(take).to_numpy(zero_copy_only=False)
        titles = t.tolist()
    report = {"source": table.source, "key_column": table.key_column, "ids": n, "table_rows": table.data.num_rows,
              "matched": n_matched, "missing_from_table": n - n_matched, "unused_table_rows": table.data.num_rows - n_matched,
              "missing_examples": missing, "unused_examples": unused, "key_match": match,
              "inferred": dict(table.inferred), "fields": stats}  # fmt: skip
    if n_matched < n:
        logger.warning("%s: %d of %d ids are not in the table; their features are 0", table.source, n - n_matched, n)
    return EncodedFeatures(out_fields, matrices, titles, report)
