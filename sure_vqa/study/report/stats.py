"""The numbers of the robustness report (docs/method.md#baselines-and-robustness): mean ± std over seeds, relative robustness, and a
bootstrap interval of the iid − ood gap over questions.

RR = 1 − (iid − ood)/iid = ood/iid is computed per seed and then summarised over seeds, like every other
figure; std uses ddof=1 (the sample standard deviation, NaN for a single seed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SeedSummary:
    mean: float
    std: float  # ddof=1; NaN with fewer than two values
    n: int


def summarise(values: Sequence[float | None]) -> SeedSummary:
    """Mean and sample std (ddof=1) of the values that exist."""
    present = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if present.size == 0:
        return SeedSummary(math.nan, math.nan, 0)
    std = float(np.std(present, ddof=1)) if present.size > 1 else math.nan
    return SeedSummary(float(np.mean(present)), std, int(present.size))


def relative_robustness(iid: float | None, ood: float | None) -> float | None:
    """ood / iid; None when either is missing or iid is 0 (the ratio is undefined)."""
    if iid is None or ood is None or not math.isfinite(iid) or not math.isfinite(ood) or iid == 0:
        return None
    return ood / iid


def question_means(per_seed: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Each question's score averaged over the seeds that scored it (a question is one sampling unit)."""
    totals: dict[str, list[float]] = {}
    for scores in per_seed:
        for qid, value in scores.items():
            totals.setdefault(qid, []).append(value)
    return np.array([np.mean(values) for _, values in sorted(totals.items())], dtype=float)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def _mean_difference(iid: np.ndarray, ood: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(iid, axis=axis) - np.mean(ood, axis=axis)


def bootstrap_difference(iid: np.ndarray, ood: np.ndarray, seed: int = 0, n_resamples: int = 2000,
                         confidence: float = 0.95) -> Interval:
    """Percentile bootstrap interval of mean(iid) − mean(ood), resampling the questions of each split
    independently (they are different questions), with a seeded generator so that reports are reproducible.

    scipy's `bootstrap` does the resampling; the percentile method is used because BCa is undefined when all
    scores are equal (a common case for closed accuracy on small splits).
    """
    iid, ood = np.asarray(iid, dtype=float), np.asarray(ood, dtype=float)
    if iid.size < 2 or ood.size < 2:
        return Interval(math.nan, math.nan)
    result = stats.bootstrap(
        (iid, ood), _mean_difference, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
        vectorized=True, paired=False, rng=np.random.default_rng(seed),
    )
    return Interval(float(result.confidence_interval.low), float(result.confidence_interval.high))
