"""Finding an anime by title: exact (case- and accent-insensitive; romaji, English or Japanese
name), else the best Jaro-Winkler match above a threshold, else "did you mean" suggestions."""

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from otaku.pipeline.catalog import ItemTable

FUZZY_THRESHOLD = 0.9
_LATIN_END = 0x0250  # combining marks are dropped only after Latin letters (keeps kana voicing)


def normalise_title(title: str) -> str:
    """Case-folded, accent-free, whitespace-collapsed form used for matching."""
    decomposed = unicodedata.normalize("NFKD", title)
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) and kept and ord(kept[-1]) < _LATIN_END:
            continue
        kept.append(char)
    composed = unicodedata.normalize("NFKC", "".join(kept))
    return " ".join(composed.casefold().split())


class TitleNotFoundError(LookupError):
    """No anime matches a title; ``suggestions`` holds the closest names."""

    def __init__(self, query: str, suggestions: list[str]) -> None:
        hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"no anime is called {query!r}{hint}")
        self.query = query
        self.suggestions = suggestions


@dataclass(frozen=True)
class TitleMatch:
    """An anime found by title."""

    item: int
    matched_name: str
    similarity: float
    exact: bool


class TitleIndex:
    """Every name of every anime, normalised once; lookups scan arrays with rapidfuzz."""

    def __init__(self, table: ItemTable) -> None:
        names: list[str] = []
        owners: list[int] = []
        for item in range(table.n_items):
            for name in (table.names[item], table.english_names[item], table.japanese_names[item]):
                if name:
                    names.append(name)
                    owners.append(item)
        self._names = names
        self._normalised = [normalise_title(name) for name in names]
        self._joined = "\n".join(self._normalised)
        lengths = np.array([len(name) + 1 for name in self._normalised], dtype=np.int64)
        self._line_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self._owners = np.asarray(owners, dtype=np.int64)
        # Exact lookup: the first name wins, romaji names first, then the most popular anime.
        popularity = np.nan_to_num(table.members, nan=0.0)
        self._popularity = popularity
        order = sorted(range(len(names)), key=lambda i: -popularity[owners[i]])
        self._exact: dict[str, int] = {}
        for position in order:
            self._exact.setdefault(self._normalised[position], position)

    def find(self, query: str) -> TitleMatch:
        """The anime a title names; raises :class:`TitleNotFoundError` with suggestions."""
        key = normalise_title(query)
        if not key:
            raise TitleNotFoundError(query, [])
        if key in self._exact:
            position = self._exact[key]
            return TitleMatch(int(self._owners[position]), self._names[position], 1.0, True)
        best = process.extractOne(
            key,
            self._normalised,
            scorer=JaroWinkler.normalized_similarity,
            score_cutoff=FUZZY_THRESHOLD,
        )
        if best is not None:
            _, similarity, position = best
            return TitleMatch(
                int(self._owners[position]), self._names[position], float(similarity), False
            )
        raise TitleNotFoundError(query, self.suggest(key))

    def suggest(self, query: str, limit: int = 5) -> list[str]:
        """The closest distinct names to ``query`` (Jaro-Winkler), best first."""
        found = process.extract(
            normalise_title(query),
            self._normalised,
            scorer=JaroWinkler.normalized_similarity,
            limit=limit * 3,
        )
        return _distinct([self._names[position] for _, _, position in found])[:limit]

    def search(self, query: str, limit: int = 10) -> list[TitleMatch]:
        """Anime whose names contain ``query`` (exact first, then the better known), topped up
        with the closest names by Jaro-Winkler (>= 0.8) so typos still find something."""
        key = normalise_title(query)
        if not key:
            return []
        containing = self._containing(key)
        containing.sort(
            key=lambda i: (self._normalised[i] != key, -self._popularity[self._owners[i]])
        )
        matches = [self._match(i, key, exact=self._normalised[i] == key) for i in containing]
        close = process.extract(
            key,
            self._normalised,
            scorer=JaroWinkler.normalized_similarity,
            score_cutoff=0.8,
            limit=limit * 3,
        )
        matches += [self._match(position, key, exact=False) for _, _, position in close]
        return _distinct_items(matches)[:limit]

    def _containing(self, key: str) -> list[int]:
        """Positions of the names containing ``key``: one regex scan of all names joined,
        in C, instead of a Python loop over every name."""
        if "\n" in key:
            return []
        hits = {
            int(np.searchsorted(self._line_starts, found.start(), side="right")) - 1
            for found in re.finditer(re.escape(key), self._joined)
        }
        return sorted(hits)

    def _match(self, position: int, key: str, exact: bool) -> TitleMatch:
        similarity = (
            1.0 if exact else JaroWinkler.normalized_similarity(key, self._normalised[position])
        )
        return TitleMatch(int(self._owners[position]), self._names[position], similarity, exact)


def _distinct_items(matches: list[TitleMatch]) -> list[TitleMatch]:
    seen: set[int] = set()
    unique = []
    for match in matches:
        if match.item not in seen:
            seen.add(match.item)
            unique.append(match)
    return unique


def _distinct(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
