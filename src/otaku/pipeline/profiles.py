"""Users as the engine sees them (:class:`Profile`): a known user's trained profile, one built
from their current ratings, or a new user folded in from ratings and/or genre weights — no
retraining. Also what a profile says in words (genre shares, mean rating) and who the most
active users are."""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy import sparse

from otaku.columns import RATING_MAX, RATING_MIN
from otaku.features.user import features_from_history, features_from_preferences
from otaku.pipeline.catalog import ItemTable
from otaku.pipeline.components import Components
from otaku.pipeline.filters import InvalidInputError
from otaku.pipeline.sources import UserContext
from otaku.pipeline.sources.base import folded_vectors, learned_vectors


class UnknownUserError(LookupError):
    """The user id is not in the served model."""

    def __init__(self, user_id: int) -> None:
        super().__init__(
            f"user {user_id} is not known to the model; new users get recommendations from "
            "POST /v1/recommendations with their genre preferences and/or a few ratings"
        )
        self.user_id = user_id


@dataclass(frozen=True)
class NewUser:
    """A user the model has not seen: genre weights and/or a few ratings (anime id → 1..10)."""

    ratings: Mapping[int, float] = field(default_factory=dict)
    preferences: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A user as the engine sees them (known, or folded in from what they told us)."""

    rated_items: np.ndarray
    ratings: np.ndarray
    features: np.ndarray
    vectors: Mapping[str, np.ndarray]  # per candidate source: learned, or folded in
    preferences: Mapping[str, float]
    trained_row: int = -1  # the user's row in the training data (-1: folded in)
    # items the user said "not interested" to: never recommended, like rated ones
    dismissed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def has_history(self) -> bool:
        """Whether the user rated anything."""
        return len(self.rated_items) > 0

    def context(self, n_items: int) -> UserContext:
        """The profile as a one-user batch for the candidate sources."""
        return batch_context([self], n_items)

    @cached_property
    def fingerprint(self) -> bytes:
        """A digest of everything a ranking depends on (history, features, preferences, and
        whether the source vectors were learned for a trained user or folded in)."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.rated_items, self.ratings, self.features):
            digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(b"|")
        digest.update(repr((sorted(self.preferences.items()), self.trained_row)).encode())
        if len(self.dismissed):  # (no dismissals: the digest stored rankings were made with)
            digest.update(b"|dismissed|" + np.ascontiguousarray(self.dismissed).tobytes())
        return digest.digest()


def batch_context(profiles: Sequence[Profile], n_items: int) -> UserContext:
    """Profiles as one batch for the candidate sources, a row each, each row exactly the
    profile's own (every profile must carry vectors for the same sources)."""
    if not profiles:
        raise ValueError("a batch needs at least one profile")
    names = list(profiles[0].vectors)
    if any(list(profile.vectors) != names for profile in profiles):
        raise ValueError("profiles of one batch must carry vectors for the same sources")
    counts = [len(profile.rated_items) for profile in profiles]
    users = np.repeat(np.arange(len(profiles), dtype=np.int64), counts)
    items = np.concatenate([profile.rated_items for profile in profiles])
    values = np.concatenate([profile.ratings for profile in profiles])
    ratings = sparse.csr_matrix((values, (users, items)), shape=(len(profiles), n_items))
    return UserContext(
        ratings,
        np.stack([profile.features for profile in profiles]),
        {name: np.stack([profile.vectors[name] for profile in profiles]) for name in names},
        np.array([profile.trained_row for profile in profiles], dtype=np.int64),
    )


class Profiles:
    """Builds and describes profiles for one trained bundle (thread-safe; read-only)."""

    def __init__(self, parts: Components, table: ItemTable) -> None:
        self.parts = parts
        self.table = table
        self.genres = list(parts.genres)
        self._genre_position = {genre: i for i, genre in enumerate(self.genres)}

    def known_profile(self, user_id: int) -> Profile:
        """The profile of a user in the training data (raises :class:`UnknownUserError`)."""
        user = self.parts.state.users.position(user_id)
        if user < 0:
            raise UnknownUserError(user_id)
        ratings = self.parts.ratings
        start, end = ratings.indptr[user], ratings.indptr[user + 1]  # the user's CSR row
        return Profile(
            rated_items=ratings.indices[start:end].astype(np.int64),
            ratings=ratings.data[start:end].astype(np.float32),
            features=self.parts.user_features[user],
            vectors={
                name: vectors[0]
                for name, vectors in learned_vectors(self.parts.sources, np.array([user])).items()
            },
            preferences={},
            trained_row=user,
        )

    def profile_from_ratings(self, user_id: int, ratings: Mapping[int, int]) -> Profile:
        """A user's profile from their current ratings (anime id → rating): the trained one
        when nothing changed since training, else folded in from those ratings."""
        positions = self.parts.state.items
        items = np.array([positions.position(a) for a in ratings], dtype=np.int64)
        values = np.fromiter(ratings.values(), dtype=np.float32, count=len(ratings))
        known = items >= 0  # anime added after training are not the model's to use
        items, values = items[known], values[known]
        order = np.argsort(items, kind="stable")
        items, values = items[order], values[order]
        if self.parts.state.users.position(user_id) >= 0:
            trained = self.known_profile(user_id)
            if np.array_equal(trained.rated_items, items) and np.array_equal(
                trained.ratings, values
            ):
                return trained
        anime_ids = self.table.anime_ids[items].tolist()
        return self.new_profile(NewUser(ratings=dict(zip(anime_ids, values.tolist(), strict=True))))

    def with_dismissed(self, profile: Profile, anime_ids: Iterable[int]) -> Profile:
        """The profile with these anime never to be recommended (anime outside the model's
        catalog are ignored: they cannot be recommended anyway)."""
        positions = self.parts.state.items
        items = np.array([positions.position(int(a)) for a in anime_ids], dtype=np.int64)
        items = np.unique(items[items >= 0])
        return replace(profile, dismissed=items) if len(items) else profile

    def _check_ratings(self, ratings: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
        items, values = [], []
        for anime_id, rating in ratings.items():
            if not RATING_MIN <= rating <= RATING_MAX:
                raise InvalidInputError(
                    f"ratings.{anime_id}",
                    f"rating must be between {RATING_MIN} and {RATING_MAX}, got {rating}",
                )
            item = self.parts.state.items.position(anime_id)
            if item < 0:
                raise InvalidInputError(f"ratings.{anime_id}", "unknown anime id")
            items.append(item)
            values.append(float(rating))
        return np.asarray(items, dtype=np.int64), np.asarray(values, dtype=np.float32)

    def _check_preferences(self, preferences: Mapping[str, float]) -> dict[str, float]:
        for genre, weight in preferences.items():
            if genre not in self._genre_position:
                raise InvalidInputError(
                    f"preferences.{genre}", f"unknown genre; known genres: {self.genres}"
                )
            if not 0.0 <= weight <= 1.0:
                raise InvalidInputError(
                    f"preferences.{genre}", f"weight must be between 0 and 1, got {weight}"
                )
        return dict(preferences)

    def new_profile(self, user: NewUser) -> Profile:
        """Fold a new user in: features from their ratings and/or genre weights, no retraining.

        With both, the genre part of the features is the mean of the history's genre shares
        and the stated weights.
        """
        items, ratings = self._check_ratings(user.ratings)
        preferences = self._check_preferences(user.preferences)
        stated = features_from_preferences(preferences, self.genres)
        if len(items):
            features = features_from_history(items, ratings, self.parts.item_genres)
            if preferences:
                features[:-1] = (features[:-1] + stated[:-1]) / 2.0
        else:
            features = stated
        return Profile(
            rated_items=items,
            ratings=ratings,
            features=features.astype(np.float32),
            vectors=folded_vectors(self.parts.sources, items, ratings, features.astype(np.float32)),
            preferences=preferences,
        )

    def genre_shares(self, profile: Profile) -> dict[str, float]:
        """The share of each genre among what the user rated (empty without a history)."""
        if not profile.has_history:
            return {}
        shares = profile.features[:-1]
        return {self.genres[g]: float(shares[g]) for g in np.flatnonzero(shares)}

    @staticmethod
    def mean_rating(profile: Profile) -> float:
        """The user's mean rating on the 1..10 scale (0 without a history)."""
        return float(profile.features[-1]) * 10.0

    def most_active(self, limit: int) -> np.ndarray:
        """Ids of up to ``limit`` known users, the ones with the most ratings first."""
        counts = np.diff(self.parts.ratings.indptr)
        return self.parts.state.users.external_ids[np.argsort(-counts, kind="stable")[:limit]]
