"""The champion/challenger rule, branch by branch, on constructed errors and NDCG values."""

import numpy as np
import pytest

from otaku.jobs.promotion import bootstrap_medians, decide

RNG = np.random.default_rng(3)
ERRORS = np.abs(RNG.normal(0.0, 1.2, size=2_000))  # a champion's absolute errors


@pytest.mark.parametrize(
    ("champion", "challenger", "ndcg_champion", "ndcg_challenger", "promote", "reason"),
    [
        (None, ERRORS, None, 0.30, True, "no champion yet"),
        (ERRORS, ERRORS.copy(), 0.30, 0.30, True, "no significant difference"),
        (ERRORS, ERRORS * 0.8, 0.30, 0.30, True, "significantly better"),
        (ERRORS, ERRORS * 1.25, 0.30, 0.35, False, "significantly worse"),
        (ERRORS, ERRORS.copy(), 0.30, 0.25, False, "NDCG@10 would drop from 0.3000 to 0.2500"),
        (ERRORS, ERRORS * 0.8, 0.30, 0.25, False, "NDCG@10 would drop"),
        (ERRORS, ERRORS * 0.8, 0.30, 0.29, True, "significantly better"),  # within the margin
    ],
    ids=[
        "no champion",
        "no significant difference",
        "significantly better",
        "significantly worse",
        "NDCG veto on a tie",
        "NDCG veto on a better MAE",
        "NDCG drop within the margin",
    ],
)
def test_every_branch_of_the_rule(
    champion: np.ndarray | None,
    challenger: np.ndarray,
    ndcg_champion: float | None,
    ndcg_challenger: float,
    promote: bool,
    reason: str,
) -> None:
    decision = decide(champion, challenger, ndcg_champion, ndcg_challenger, ndcg_margin=0.02)
    assert decision.promote is promote
    assert decision.reason.startswith(reason), decision.reason


def test_significance_uses_the_bootstrap_medians() -> None:
    decision = decide(ERRORS, ERRORS * 1.25, 0.3, 0.3)
    assert decision.p_value < 0.05
    assert decision.challenger_median_ae > decision.champion_median_ae
    assert len(decision.champion_medians) == len(decision.challenger_medians) == 100
    np.testing.assert_allclose(decision.champion_median_ae, decision.champion_medians.mean())


def test_both_models_must_be_scored_on_the_same_ratings() -> None:
    with pytest.raises(ValueError, match="same held-out ratings"):
        decide(ERRORS, ERRORS[:-1], 0.3, 0.3)
    with pytest.raises(ValueError, match="no held-out ratings"):
        bootstrap_medians(np.empty(0), 100, 0)


def test_resamples_are_seeded() -> None:
    np.testing.assert_array_equal(
        bootstrap_medians(ERRORS, 50, 7), bootstrap_medians(ERRORS, 50, 7)
    )
