"""Candidate sources as plug-ins: the contract, the registry of kinds, and how users look to a
source (:class:`UserContext`).

A source is one object with a name, a ``fit``, scores for a batch of users, and (optionally)
a per-user vector for known users and a fold-in for new ones; it pickles its own state into
the bundle. The default strategy draws each source's top ``quota`` items as candidates and
gives the ranker three features per source (score, rank, standard score). Adding a source is
one class registered with :func:`register_source` plus one entry in the sources configuration.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
from scipy import sparse

from otaku.data.dataset import Dataset, binarise
from otaku.models.lightfm import LightFMRecommender


@dataclass(frozen=True)
class SourceSpec:
    """One configured source: its name (the ranker's feature prefix), its kind (a registered
    class), how many candidates it gives a user with a history (``quota``) and one without
    (``cold_quota``), and the kind's parameters."""

    name: str
    kind: str
    quota: int
    cold_quota: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FitInputs:
    """What a source may learn from: the ratings and the parts fitted before the sources."""

    data: Dataset
    text_embeddings: np.ndarray  # items x dim, synopsis embeddings (zeros without text)
    lightfm: LightFMRecommender | None  # the hybrid item model (None: not fitted, e.g. tuning)
    seed: int


@dataclass(frozen=True)
class UserContext:
    """A batch of users as the sources see them: their ratings, features and per-source
    vectors (known users: learned; new users: folded in)."""

    ratings: sparse.csr_matrix  # users x items, 0 = unrated
    features: np.ndarray  # users x (genre shares + mean rating / 10)
    vectors: Mapping[str, np.ndarray]  # source name -> users x dim
    trained_rows: np.ndarray | None = None  # each user's row in the training data (-1: none)

    @property
    def seen(self) -> sparse.csr_matrix:
        """Binary history."""
        return binarise(self.ratings)

    @property
    def n_users(self) -> int:
        """Users in the batch."""
        return int(self.ratings.shape[0])

    def vectors_of(self, source: str) -> np.ndarray:
        """The batch's vectors for one source."""
        try:
            return self.vectors[source]
        except KeyError:
            raise KeyError(f"the user context has no vectors for source {source!r}") from None


class CandidateSource(ABC):
    """One candidate source. Scores are ``users x items`` float32; NaN means "no opinion"
    (an item the source cannot score), never a low score."""

    kind: ClassVar[str]

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        """The configured name."""
        return self.spec.name

    @abstractmethod
    def fit(self, inputs: FitInputs) -> None:
        """Learn from the training data."""

    @abstractmethod
    def score(self, users: UserContext) -> np.ndarray:
        """Scores of every item for a batch of users."""

    def known_vectors(self, user_idx: np.ndarray) -> np.ndarray | None:
        """Per-user vectors of trained users (None: the source reads only histories)."""
        return None

    def fold_in(
        self, items: np.ndarray, ratings: np.ndarray, features: np.ndarray
    ) -> np.ndarray | None:
        """The vector of a user the source never saw (None: the source reads histories)."""
        return None


SOURCE_KINDS: dict[str, type[CandidateSource]] = {}
S = TypeVar("S", bound=type[CandidateSource])


def register_source(kind: str) -> Callable[[S], S]:
    """Class decorator: make a source class available to configurations as ``kind``."""

    def register(cls: S) -> S:
        cls.kind = kind
        SOURCE_KINDS[kind] = cls
        return cls

    return register


def create_source(spec: SourceSpec) -> CandidateSource:
    """An unfitted source for a configured spec (unknown kind: ValueError naming it)."""
    if spec.kind not in SOURCE_KINDS:
        raise ValueError(
            f"source {spec.name!r}: unknown kind {spec.kind!r}; "
            f"registered kinds: {sorted(SOURCE_KINDS)}"
        )
    return SOURCE_KINDS[spec.kind](spec)


def known_context(
    sources: Mapping[str, CandidateSource],
    ratings: sparse.csr_matrix,
    user_features: np.ndarray,
    user_idx: np.ndarray,
) -> UserContext:
    """The context of users present in the fitted data."""
    vectors = learned_vectors(sources, user_idx)
    return UserContext(ratings[user_idx], user_features[user_idx], vectors, np.asarray(user_idx))


def learned_vectors(
    sources: Mapping[str, CandidateSource], user_idx: np.ndarray
) -> dict[str, np.ndarray]:
    """Each source's learned vectors of trained users (users x dim; sources without any left
    out)."""
    vectors = {}
    for name, source in sources.items():
        learned = source.known_vectors(user_idx)
        if learned is not None:
            vectors[name] = learned
    return vectors


def folded_vectors(
    sources: Mapping[str, CandidateSource],
    items: np.ndarray,
    ratings: np.ndarray,
    features: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each source's vector for one user it never saw, folded in from their ratings and
    features (sources without per-user state left out)."""
    vectors = {}
    for name, source in sources.items():
        folded = source.fold_in(items, ratings, features)
        if folded is not None:
            vectors[name] = folded
    return vectors


def vectors_for(source: CandidateSource, users: UserContext) -> np.ndarray | None:
    """A source's own vectors for a batch: learned for users trained with the data the source
    was fitted on (``trained_rows``), folded in from the history for everyone else."""
    rows = users.trained_rows
    if rows is None:
        rows = np.full(users.n_users, -1)
    named = {source.name: source}
    vectors = []
    for position, row in enumerate(rows):
        if row >= 0 and (learned := learned_vectors(named, np.array([row]))):
            vectors.append(learned[source.name][0])
            continue
        history = users.ratings[position]
        folded = folded_vectors(
            named, history.indices.astype(np.int64), history.data, users.features[position]
        )
        if not folded:
            return None
        vectors.append(folded[source.name])
    return np.vstack(vectors) if vectors else None
