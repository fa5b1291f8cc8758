"""Duplicate (user, anime) pairs found by sorting packed 64-bit keys: about 3 x 8 bytes a
rating, where a hash of two columns took 7 GB at 57M ratings."""

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Duplicates:
    """Rows (positions in the combined table) that repeat an earlier pair, and the rows a
    later rating of the same pair supersedes."""

    repeats: np.ndarray  # sorted
    superseded: np.ndarray  # sorted

    @property
    def count(self) -> int:
        """Number of rows that repeat an earlier pair."""
        return len(self.repeats)


def _pair_keys(users: np.ndarray, anime: np.ndarray) -> np.ndarray:
    """One int64 per pair, equal exactly when the pairs are (dense codes when the ids are too
    large to pack side by side)."""
    users = users.astype(np.int64, copy=False)
    anime = anime.astype(np.int64, copy=False)
    if len(users) == 0:
        return users
    width = int(anime.max()) + 1
    if int(users.max()) < np.iinfo(np.int64).max // width:
        return users * width + anime
    user_codes = pd.factorize(users)[0].astype(np.int64)
    anime_codes = pd.factorize(anime)[0].astype(np.int64)
    return user_codes * (int(anime_codes.max()) + 1) + anime_codes


def find_duplicates(users: np.ndarray, anime: np.ndarray) -> Duplicates:
    """The duplicate pairs among ``(users[i], anime[i])`` in row order."""
    keys = _pair_keys(users, anime)
    order = np.argsort(keys, kind="stable")  # equal keys keep their row order
    sorted_keys = keys[order]
    del keys
    same_as_previous = sorted_keys[1:] == sorted_keys[:-1]
    del sorted_keys
    repeats = np.sort(order[1:][same_as_previous])
    superseded = np.sort(order[:-1][same_as_previous])
    return Duplicates(repeats, superseded)
