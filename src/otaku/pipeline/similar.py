"""The fourth question: anime similar to an anime (cosine over LightFM item embedding ⊕
synopsis embedding), filtered and paged."""

import numpy as np

from otaku.models.rating import on_rating_scale
from otaku.pipeline.catalog import ItemTable
from otaku.pipeline.explain import explain_similar
from otaku.pipeline.filters import ItemFilter
from otaku.pipeline.pages import Page, Recommended, Stopwatch


class SimilarItems:
    """Similar-anime pages over unit item vectors (thread-safe; read-only)."""

    def __init__(
        self, table: ItemTable, unit_vectors: np.ndarray, cold_predictions: np.ndarray
    ) -> None:
        self.table = table
        self.unit_vectors = unit_vectors
        self.cold_predictions = cold_predictions

    def page(self, query: int, k: int, offset: int, item_filter: ItemFilter) -> Page:
        """The items most similar to item ``query``, best first (``query`` itself excluded);
        each with the rating predicted for a user we know nothing about. The caller checks
        the page bounds (:func:`otaku.pipeline.pages.check_page`)."""
        watch = Stopwatch()
        with watch.stage("similar"):
            allowed = item_filter.mask(self.table)
            allowed[query] = False
            similarity = np.where(allowed, self.unit_vectors @ self.unit_vectors[query], -np.inf)
            top = np.argpartition(-similarity, min(offset + k, len(similarity) - 1))
            top = top[: offset + k]
            top = top[np.argsort(-similarity[top], kind="stable")]
            items = top[np.isfinite(similarity[top])][offset:]
        with watch.stage("explain"):
            reasons = explain_similar(self.table, query, items)
        recommended = [
            Recommended(
                self.table.info(int(item)),
                float(similarity[item]),
                float(on_rating_scale(self.cold_predictions[item])),
                reason,
            )
            for item, reason in zip(items, reasons, strict=True)
        ]
        return Page("default", offset, recommended, watch.timings)
