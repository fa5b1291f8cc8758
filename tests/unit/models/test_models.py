"""Every collaborative model: fit returns self, using it unfitted raises, a save/load round
trip keeps its scores (ranking them is the strategies' job, tested in tests/unit/pipeline)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from otaku.data.dataset import Dataset
from otaku.models.base import NotFittedError, Recommender
from otaku.models.baselines import EASERecommender, IALSRecommender, ItemKNNRecommender
from otaku.models.lightfm import LightFMConfig, LightFMRecommender


def _ease_scores(model: Recommender, data: Dataset) -> np.ndarray:
    assert isinstance(model, EASERecommender)
    return model.score_ratings(data.rating_matrix[:8])


def _ials_scores(model: Recommender, data: Dataset) -> np.ndarray:
    assert isinstance(model, IALSRecommender)
    return model.score_vectors(model.user_vectors(np.arange(8)))


def _knn_scores(model: Recommender, data: Dataset) -> np.ndarray:
    assert isinstance(model, ItemKNNRecommender)
    return model.score_history(data.seen_matrix[:8])


def _lightfm_scores(model: Recommender, data: Dataset) -> np.ndarray:
    assert isinstance(model, LightFMRecommender)
    return model.score_vectors(model.user_embeddings[:8])


MODELS: dict[
    str, tuple[Callable[[], Recommender], Callable[[Recommender, Dataset], np.ndarray]]
] = {
    "ease": (lambda: EASERecommender(min_item_ratings=3), _ease_scores),
    "ials": (lambda: IALSRecommender(factors=8, iterations=3), _ials_scores),
    "itemknn": (lambda: ItemKNNRecommender(neighbours=20), _knn_scores),
    "lightfm": (
        lambda: LightFMRecommender(LightFMConfig(epochs=2, no_components=8)),
        _lightfm_scores,
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_score_save_load(name: str, small_dataset: Dataset, tmp_path: Path) -> None:
    make, scores_of = MODELS[name]
    unfitted = make()
    with pytest.raises(NotFittedError):
        _ = unfitted.state
    model = make()
    assert model.fit(small_dataset) is model
    scores = scores_of(model, small_dataset)
    assert scores.shape == (8, small_dataset.n_items)
    assert np.isfinite(scores).any(axis=1).all()
    model.save(tmp_path / "model.joblib")
    again = type(model).load(tmp_path / "model.joblib")
    np.testing.assert_allclose(scores_of(again, small_dataset), scores)


def test_ease_has_no_opinion_on_items_it_did_not_model(small_dataset: Dataset) -> None:
    model = EASERecommender(min_item_ratings=10).fit(small_dataset)
    scores = model.score_ratings(small_dataset.rating_matrix[:4])
    rare = np.flatnonzero(small_dataset.item_counts < 10)
    assert len(rare) and np.isnan(scores[:, rare]).all()
    assert not np.isnan(scores[:, small_dataset.item_counts >= 10]).any()


def test_load_refuses_another_model_type(small_dataset: Dataset, tmp_path: Path) -> None:
    ItemKNNRecommender(neighbours=5).fit(small_dataset).save(tmp_path / "knn.joblib")
    with pytest.raises(TypeError, match="not a EASERecommender"):
        EASERecommender.load(tmp_path / "knn.joblib")


def test_the_item_gram_summed_by_user_blocks_is_the_whole_product(
    small_dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otaku.models import baselines

    seen = small_dataset.seen_matrix
    whole = (seen.T @ seen).toarray()
    monkeypatch.setattr(baselines, "GRAM_BLOCK_USERS", 7)  # many blocks, a ragged last one
    assert np.array_equal(baselines.item_gram(seen), whole)


def test_ease_weights_are_the_closed_form(small_dataset: Dataset) -> None:
    model = EASERecommender(min_item_ratings=1, regularization=50.0).fit(small_dataset)
    seen = small_dataset.seen_matrix[:, model._columns].toarray().astype(np.float64)
    gram = seen.T @ seen + 50.0 * np.eye(seen.shape[1])
    precision = np.linalg.inv(gram)
    expected = precision / -np.diag(precision)
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(model._weights, expected, atol=1e-5)
    # Row order matters on the request path: a history times Fortran-ordered weights makes
    # scipy copy the whole matrix on every call (seconds per request at 15k items).
    assert model._weights.flags.c_contiguous
