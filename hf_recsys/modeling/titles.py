"""Title lookup for the recommender: a title (exact, sloppy or misspelt) -> the item token it names.

Titles are matched exactly, then case-insensitively, then by a normalised key (articles such as "Matrix, The"
moved to the front, accents and punctuation dropped, the year dropped when the query has none), then by whole
words ("Star Wars"), then fuzzily; an ambiguous or unknown title raises `TitleMatchError` listing close matches.

The fuzzy step scores candidates with `difflib.SequenceMatcher.ratio` on the normalised keys and accepts a clear
winner only. With `rapidfuzz` installed (the optional `fast-titles` extra) the candidates are first narrowed to the
`PREFILTER` keys of best `rapidfuzz.fuzz.ratio` (an upper bound of difflib's ratio, computed in C), which makes a
fuzzy lookup in an 87k-title catalogue about two orders of magnitude faster (benchmarks/inference.md); without it
every key goes through difflib. Part of the self-contained modeling bundle: standard library (+ optional rapidfuzz).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from .errors import TitleMatchError

try:  # optional: narrows the fuzzy candidates in C (pip install rapidfuzz)
    from rapidfuzz import fuzz as _rf_fuzz
    from rapidfuzz import process as _rf_process
except ImportError:  # pragma: no cover - exercised by setting USE_RAPIDFUZZ = False
    _rf_fuzz = _rf_process = None

__all__ = ["PREFILTER", "USE_RAPIDFUZZ", "TitleIndex", "title_key"]

#: Use rapidfuzz for the fuzzy step when it is installed (set False to force the pure-difflib path).
USE_RAPIDFUZZ = _rf_process is not None
#: How many keys rapidfuzz keeps for difflib to score.
PREFILTER = 32
_MAX_CACHE = 4096

_YEAR_RE = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_TRAILING_PAREN_RE = re.compile(r"\s*\([^()]*\)\s*$")
_ARTICLE_RE = re.compile(
    r"^(?P<rest>.*?),\s*(?P<article>the|a|an|les|la|le|l'|il|das|der|die|el|los|las|lo|det|den)$", re.IGNORECASE
)
_NON_WORD_RE = re.compile(r"[^\w]+")


def _casefold(text: str) -> str:
    """Case- and whitespace-insensitive form of a title."""
    return " ".join(text.casefold().split())


def title_key(title: str, keep_year: bool) -> tuple[str, str | None]:
    """Normalised matching key of a title and its year, e.g. "Matrix, The (1999)" -> ("the matrix 1999", "1999").

    Accents, case and punctuation are dropped, a trailing article ("..., The") moves to the front, alternative
    titles in parentheses (e.g. "Cité des enfants perdus, La") are dropped; the year is kept in the key
    only when `keep_year`.
    """
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).strip()
    year = None
    match = _YEAR_RE.search(text)
    if match:
        year = match.group(1)
        text = text[: match.start()]
    while True:  # alternative titles: "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)"
        stripped = _TRAILING_PAREN_RE.sub("", text)
        if stripped == text or not stripped.strip():
            break
        text = stripped
    article = _ARTICLE_RE.match(text.strip())
    if article:
        text = f"{article.group('article')} {article.group('rest')}"
    key = " ".join(_NON_WORD_RE.sub(" ", text.casefold()).split())
    if keep_year and year:
        key = f"{key} {year}"
    return key, year


def _add(index: dict[str, list[int]], key: str, token: int) -> None:
    if key:
        index.setdefault(key, []).append(token)


class TitleIndex:
    """The lookup tables of one catalogue's titles: `titles[token]` (None for token 0 and untitled items) and
    `item_ids[token]` (to name candidates in errors). Built once (one pass), then `resolve` costs dict lookups
    except for the fuzzy step; results are cached because real traffic repeats titles."""

    def __init__(self, titles: Sequence[str | None], item_ids: Sequence[Any]) -> None:
        self._titles = titles
        self._item_ids = item_ids
        self._exact: dict[str, list[int]] = {}
        self._folded: dict[str, list[int]] = {}
        self._keyed: dict[str, list[int]] = {}  # normalised key with year
        self._keyed_no_year: dict[str, list[int]] = {}
        for token, title in enumerate(titles):
            if not title:
                continue
            _add(self._exact, title, token)
            _add(self._folded, _casefold(title), token)
            key, year = title_key(title, keep_year=False)  # one normalisation: the year is appended below
            _add(self._keyed, f"{key} {year}" if key and year else key, token)
            _add(self._keyed_no_year, key, token)
        self.has_titles = bool(self._exact)
        self._padded_keys = [(f" {key} ", tokens) for key, tokens in self._keyed_no_year.items()]
        self._key_list = list(self._keyed)
        self._key_no_year_list = list(self._keyed_no_year)
        self._cache: dict[str, tuple[int, str]] = {}

    def candidates(self, tokens: Sequence[int], limit: int = 10) -> list[tuple[Any, str]]:
        """(item id, title) of the first `limit` distinct tokens."""
        return [(self._item_ids[t], self._titles[t]) for t in list(dict.fromkeys(tokens))[:limit]]  # type: ignore[misc]

    def resolve(self, title: str) -> tuple[int, str]:
        """(token, how it matched: exact / case-insensitive / normalised / words / fuzzy) of `title`.

        Raises `TitleMatchError` when the title is unknown or ambiguous, or the catalogue has no titles.
        """
        cached = self._cache.get(title)
        if cached is not None:
            return cached
        if not self.has_titles:
            raise TitleMatchError(
                title, [], ambiguous=False, message=f"title {title!r}: this model's items have no titles; pass ids"
            )
        result = self._match(title)
        if len(self._cache) >= _MAX_CACHE:
            self._cache.clear()
        self._cache[title] = result
        return result

    def _unique(self, title: str, tokens: list[int] | None, how: str) -> tuple[int, str] | None:
        if not tokens:
            return None
        if len(set(tokens)) > 1:
            raise TitleMatchError(title, self.candidates(tokens), ambiguous=True)
        return tokens[0], how

    def _match(self, title: str) -> tuple[int, str]:
        for tokens, how in (
            (self._exact.get(title), "exact"),
            (self._folded.get(_casefold(title)), "case-insensitive"),
        ):
            found = self._unique(title, tokens, how)
            if found:
                return found
        key, year = title_key(title, keep_year=True)
        if not key:
            raise TitleMatchError(title, [], ambiguous=False)
        found = self._unique(title, self._keyed.get(key), "normalised")
        if found:
            return found
        if year is None:
            found = self._unique(title, self._keyed_no_year.get(key), "normalised")
            if found:
                return found
            # Whole-word containment: "Star Wars" -> every "Star Wars: ..." title (ambiguous unless only one).
            if len(key) >= 3:
                padded = f" {key} "
                hits = [t for k, tokens in self._padded_keys if padded in k for t in tokens]
                found = self._unique(title, hits, "words")
                if found:
                    return found
        return self._fuzzy(title, key, year)

    def close_keys(self, key: str, keys: list[str]) -> list[tuple[float, str]]:
        """The (difflib ratio, key) of the best <= 8 keys with ratio >= 0.5, best first."""
        pool = keys
        if USE_RAPIDFUZZ and _rf_process is not None and len(keys) > PREFILTER:
            hits = _rf_process.extract(key, keys, scorer=_rf_fuzz.ratio, limit=PREFILTER, score_cutoff=50)
            pool = [keys[index] for _, _, index in hits]
        matcher = difflib.SequenceMatcher(b=key, autojunk=False)
        scored = []
        for candidate in difflib.get_close_matches(key, pool, n=8, cutoff=0.5):
            matcher.set_seq1(candidate)
            scored.append((matcher.ratio(), candidate))
        scored.sort(key=lambda pair: -pair[0])
        return scored

    def _fuzzy(self, title: str, key: str, year: str | None) -> tuple[int, str]:
        """Fuzzy match on the normalised keys; accept a clear winner only."""
        keys = self._key_list if year is not None else self._key_no_year_list
        index = self._keyed if year is not None else self._keyed_no_year
        scored = self.close_keys(key, keys)
        # A query with a year only accepts titles of that year (typos, not remakes: "Grumpy Old Men (1993)" must
        # not silently become "Grumpier Old Men (1995)"); those of other years are listed as close matches.
        good = [(ratio, k) for ratio, k in scored if ratio >= 0.8 and (year is None or k.endswith(f" {year}"))]
        if good:
            best_ratio, best_key = good[0]
            rivals = [k for ratio, k in good[1:] if ratio > best_ratio - 0.05]
            if not rivals and len(index[best_key]) == 1:
                return index[best_key][0], "fuzzy"
            tokens = [t for _, k in good for t in index[k]]
            raise TitleMatchError(title, self.candidates(tokens, limit=8), ambiguous=True)
        tokens = [t for _, k in scored for t in index[k]]
        raise TitleMatchError(title, self.candidates(tokens, limit=5), ambiguous=False)
