"""The champion/challenger rule as one pure function: errors and NDCG in, a decision out.

The reference's rule on the rating model: 100 bootstrap resamples of each model's median
absolute error on the same held-out ratings, a Welch t-test at α = 0.05 — no significant
difference → promote (the challenger knows more users); significantly better → promote;
significantly worse → keep. Then a guard on the recommendations: a promotion that would lose
more than ``ndcg_margin`` NDCG@10 is refused.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 100
ALPHA = 0.05


@dataclass(frozen=True)
class Decision:
    """Promote or keep, why, and the figures the decision rests on."""

    promote: bool
    reason: str
    p_value: float = float("nan")
    champion_median_ae: float = float("nan")
    challenger_median_ae: float = float("nan")
    champion_medians: np.ndarray = field(default_factory=lambda: np.empty(0))
    challenger_medians: np.ndarray = field(default_factory=lambda: np.empty(0))


def bootstrap_medians(errors: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Medians of ``resamples`` seeded resamples (with replacement) of ``errors``."""
    if len(errors) == 0:
        raise ValueError("no held-out ratings to compare the models on")
    picks = np.random.default_rng(seed).integers(0, len(errors), size=(resamples, len(errors)))
    return np.median(errors[picks], axis=1)


def decide(
    champion_errors: np.ndarray | None,
    challenger_errors: np.ndarray,
    ndcg_champion: float | None,
    ndcg_challenger: float,
    ndcg_margin: float = 0.02,
    alpha: float = ALPHA,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Decision:
    """The decision for absolute errors of both models on the same held-out ratings (in the
    same order) and their NDCG@10 on the same users. No champion (``None``) → promote."""
    new = bootstrap_medians(challenger_errors, resamples, seed)
    if champion_errors is None:
        mean = float(new.mean())
        return Decision(True, "no champion yet", challenger_median_ae=mean, challenger_medians=new)
    if len(champion_errors) != len(challenger_errors):
        raise ValueError("both models must be scored on the same held-out ratings")
    old = bootstrap_medians(champion_errors, resamples, seed)
    p_value = float(stats.ttest_ind(new, old, equal_var=False).pvalue)
    if np.isnan(p_value) or p_value >= alpha:
        promote = True
        reason = f"no significant difference (p = {p_value:.3g}): the challenger knows more users"
    elif new.mean() < old.mean():
        promote, reason = True, f"significantly better median absolute error (p = {p_value:.3g})"
    else:
        promote, reason = False, f"significantly worse median absolute error (p = {p_value:.3g})"
    if promote and ndcg_champion is not None and ndcg_challenger < ndcg_champion - ndcg_margin:
        promote = False
        reason = (
            f"NDCG@10 would drop from {ndcg_champion:.4f} to {ndcg_challenger:.4f} "
            f"(margin {ndcg_margin})"
        )
    return Decision(promote, reason, p_value, float(old.mean()), float(new.mean()), old, new)
