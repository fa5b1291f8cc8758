"""Predicted ratings are reported on the 1..10 scale, whatever the regressor says."""

import numpy as np

from otaku.models.rating import on_rating_scale


def test_predictions_past_the_ends_are_clipped_to_the_scale() -> None:
    raw = np.array([10.11, 0.42, 7.25, -3.0, 1.0, 10.0], dtype=np.float32)
    np.testing.assert_allclose(on_rating_scale(raw), [10.0, 1.0, 7.25, 1.0, 1.0, 10.0])
