"""Paired bootstrap intervals: is one model's per-user metric really higher than another's?"""

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean difference with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    level: float = 0.95

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero."""
        return self.low > 0.0 or self.high < 0.0

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired_bootstrap(
    first: np.ndarray,
    second: np.ndarray,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    seed: int = 42,
) -> Interval:
    """The mean of ``first - second`` over paired units (users) with a percentile bootstrap
    interval: users are resampled with replacement, the pairs kept together."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape or first.ndim != 1 or len(first) == 0:
        raise ValueError("paired_bootstrap needs two equally long, non-empty 1-d arrays")
    difference = first - second
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 256):  # bounded memory for many users
        stop = min(start + 256, resamples)
        picks = rng.integers(0, len(difference), size=(stop - start, len(difference)))
        means[start:stop] = difference[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return Interval(float(difference.mean()), float(low), float(high), level)
