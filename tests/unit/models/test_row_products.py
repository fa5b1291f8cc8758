"""Scores from user vectors do not depend on the batch a user is scored in: a precomputed
ranking (users in batches) is served as the ranking of the user alone."""

import numpy as np
from threadpoolctl import threadpool_limits

from otaku.data.dataset import Dataset
from otaku.models.base import row_products
from otaku.models.baselines import IALSRecommender


def test_a_row_scores_bit_for_bit_the_same_alone_and_in_any_batch() -> None:
    rng = np.random.default_rng(3)
    users = rng.standard_normal((40, 64)).astype(np.float32)
    items = rng.standard_normal((3000, 64)).astype(np.float32)
    with threadpool_limits(1):  # as the service and precompute score
        batch = row_products(users, items)
        alone = np.vstack([users[i : i + 1] @ items.T for i in range(len(users))])
    assert batch.dtype == np.float32 and batch.shape == (40, 3000)
    assert batch.tobytes() == alone.tobytes()
    assert row_products(users[7:9], items).tobytes() == batch[7:9].tobytes()


def test_an_empty_batch_has_no_rows() -> None:
    assert row_products(np.empty((0, 4), np.float32), np.ones((5, 4), np.float32)).shape == (0, 5)


def test_ials_scores_a_user_the_same_in_a_batch(small_dataset: Dataset) -> None:
    model = IALSRecommender(factors=48, iterations=3, seed=1).fit(small_dataset)
    vectors = model.user_vectors(np.arange(30))
    batch = model.score_vectors(vectors)
    assert all(
        batch[i].tobytes() == model.score_vectors(vectors[i : i + 1])[0].tobytes()
        for i in range(30)
    )
