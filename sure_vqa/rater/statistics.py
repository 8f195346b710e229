"""The rater study's statistics (docs/method.md#human-rater-study): Kendall's tau-b and Spearman's rho with
p-values (scipy), pooling of every rater's scores against a metric, the mean over rater pairs, Krippendorff's
alpha (ordinal, the `krippendorff` package) and bootstrap percentile intervals that resample questions."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Correlation:
    """Kendall's tau-b and Spearman's rho with their two-sided p-values, over n pairs."""

    n: int
    kendall_tau: float
    kendall_p: float
    spearman_rho: float
    spearman_p: float


def pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def _constant(values: np.ndarray) -> bool:
    return values.size == 0 or bool(np.all(values == values[0]))


def correlate(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> Correlation:
    """Both rank correlations over the pairs where neither value is missing; NaN where undefined
    (fewer than 2 pairs, or one side constant)."""
    x, y = pairs(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    if len(x) < 2 or _constant(x) or _constant(y):
        return Correlation(len(x), math.nan, math.nan, math.nan, math.nan)
    kendall = stats.kendalltau(x, y)  # tau-b, exact p-value for small samples without ties
    spearman = stats.spearmanr(x, y)
    return Correlation(len(x), float(kendall.statistic), float(kendall.pvalue), float(spearman.statistic),
                       float(spearman.pvalue))


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    x, y = pairs(x, y)
    if len(x) < 2 or _constant(x) or _constant(y):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def spearman_rho(x: np.ndarray, y: np.ndarray) -> float:
    x, y = pairs(x, y)
    if len(x) < 2 or _constant(x) or _constant(y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def pooled(human: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(question x rater) human scores and one score per question -> pairs (each rater's score, the other)."""
    return human.T.reshape(-1), np.tile(other, human.shape[1])


def mean_over_rater_pairs(human: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], float]) -> float:
    """The mean of a statistic over all pairs of rater columns (pairs where it is undefined are skipped)."""
    values = [statistic(human[:, a], human[:, b]) for a, b in itertools.combinations(range(human.shape[1]), 2)]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def krippendorff_alpha(human: np.ndarray, value_domain: Sequence[float]) -> float:
    """Ordinal alpha between raters (rows of reliability data = raters); NaN when it is undefined."""
    import krippendorff

    data = human.T
    observed = data[~np.isnan(data)]
    pairable = int(np.sum(np.sum(~np.isnan(data), axis=0) >= 2))
    if data.shape[0] < 2 or pairable == 0 or _constant(observed):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                        value_domain=list(value_domain)))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    n_resamples: int
    n_undefined: int  # resamples where the statistic was undefined (e.g. all scores equal), left out


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float], n_items: int, n_resamples: int, confidence: float,
    rng: np.random.Generator,
) -> Interval:
    """Percentile interval of `statistic(indices)` over resamples of the questions.

    Written out rather than scipy.stats.bootstrap because a resample where a rank correlation is undefined
    (one side constant) makes scipy's whole interval NaN; here such resamples are dropped and counted.
    """
    values = np.array([statistic(rng.integers(0, n_items, n_items)) for _ in range(n_resamples)])
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        return Interval(math.nan, math.nan, n_resamples, n_resamples)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(low), float(high), n_resamples, int(values.size - defined.size))
