"""A toy candidate source, written the way a newcomer adds one: this one file (and one entry
in a sources file). It proposes the anime MyAnimeList rates best; no opinion on unscored ones."""

import numpy as np

from otaku.columns import Columns
from otaku.pipeline.catalog import catalog_numbers
from otaku.pipeline.sources import CandidateSource, FitInputs, UserContext, register_source


@register_source("acclaimed")
class AcclaimedSource(CandidateSource):
    """Anime with a higher MAL score score higher (params: ``weight``)."""

    scores: np.ndarray

    def fit(self, inputs: FitInputs) -> None:
        weight = float(self.spec.params.get("weight", 1.0))
        self.scores = weight * catalog_numbers(inputs.data.catalog, Columns.score)

    def score(self, users: UserContext) -> np.ndarray:
        return np.tile(self.scores, (users.n_users, 1))
