"""MovieLens' side data as feature tables: genres and release decade per movie, gender, age and occupation per
user. The model knows no MovieLens special case: these become feature fields (:mod:`.features`) exactly as the
item and user tables of any other data set do, fitted on the vocabularies that tokenized the data."""

from __future__ import annotations

import pandas as pd

from .features import EncodedFeatures, build_feature_fields, read_feature_table
from .vocab import ItemVocab, UserVocab

#: The item fields MovieLens has: genres (multi-valued) and the release decade (categorical, e.g. "1990s").
ITEM_FIELDS = {"genres": "multi", "decade": "categorical"}
_ITEM_KEY, _USER_KEY = "movie_id", "user_id"


def movielens_item_features(items: ItemVocab) -> EncodedFeatures | None:
    """The genres and release decade of each movie as two feature fields in token order; None when the
    vocabulary has neither (a bare ``user item`` file). A field with no value for any movie is left out."""
    tokens = range(ItemVocab.NUM_SPECIAL, len(items))
    years = [items.year(t) for t in tokens]
    columns = {
        "genres": [items.genres(t) for t in tokens],
        "decade": [None if y is None else f"{y // 10 * 10}s" for y in years],
    }
    columns = {name: values for name, values in columns.items() if any(values)}
    if not columns:
        return None
    table = pd.DataFrame({_ITEM_KEY: items.item_ids, **columns})
    kinds = {name: ITEM_FIELDS[name] for name in columns}
    return build_feature_fields(read_feature_table(table, _ITEM_KEY, kinds=kinds), items.item_ids)


def movielens_user_features(users: UserVocab) -> EncodedFeatures | None:
    """Gender, age group and occupation of each user as categorical feature fields by user index (row 0, the
    unknown user, is zero); None when the release has no demographics (the CSV releases)."""
    names = users.feature_names
    if not names or not users.num_users:
        return None
    rows = [users.feature_values(i) for i in range(UserVocab.NUM_SPECIAL, len(users))]
    table = pd.DataFrame({_USER_KEY: users.user_ids, **{n: [r[n] for r in rows] for n in names}})
    return build_feature_fields(read_feature_table(table, _USER_KEY, kinds="categorical"), users.user_ids)
