"""The numbers of the robustness report (docs/method.md#baselines-and-robustness, #statistics-of-the-report): mean ±
std over seeds, relative robustness, bootstrap intervals that resample images, paired comparisons of two models on
the same questions, Holm's correction and Kendall's W.

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


def question_mean_scores(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """qid -> the question's score averaged over the seeds that scored it."""
    totals: dict[str, list[float]] = {}
    for scores in per_seed:
        for qid, value in scores.items():
            totals.setdefault(qid, []).append(value)
    return {qid: math.fsum(values) / len(values) for qid, values in sorted(totals.items())}


def question_means(per_seed: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Each question's score averaged over the seeds that scored it, in qid order."""
    return np.array(list(question_mean_scores(per_seed).values()), dtype=float)


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


# --- clustered uncertainty (docs/method.md#statistics-of-the-report) -------------------------------------------


@dataclass(frozen=True)
class Clusters:
    """The scores of one split grouped by their sampling unit (the image): per cluster the sum of its questions'
    scores and their number. The split's mean is sum(sums) / sum(counts)."""

    sums: np.ndarray
    counts: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.sums.size)

    @property
    def mean(self) -> float:
        return float(self.sums.sum() / self.counts.sum()) if self.counts.sum() else math.nan


def clusters_of(scores: Mapping[str, float], cluster_of: Mapping[str, str]) -> Clusters:
    """Groups qid -> score by qid -> cluster (a question without a known cluster is a cluster of its own)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for qid, value in sorted(scores.items()):
        key = cluster_of.get(qid, f"question {qid}")
        sums[key] = sums.get(key, 0.0) + float(value)
        counts[key] = counts.get(key, 0) + 1
    keys = sorted(sums)
    return Clusters(np.array([sums[k] for k in keys], dtype=float), np.array([counts[k] for k in keys], dtype=float))


def clustered_variance(clusters: Clusters) -> float:
    """The variance of a split's mean when its images are the sampling units (the ratio estimator's
    linearisation): K/(K − 1) · Σᵢ (sᵢ − m·nᵢ)² / N², sᵢ and nᵢ an image's score sum and question count."""
    k = clusters.n_clusters
    if k < 2:
        return math.nan
    residuals = clusters.sums - clusters.mean * clusters.counts
    return float(k / (k - 1) * np.sum(residuals**2) / clusters.counts.sum() ** 2)


# z quantiles of the minimum detectable difference: two-sided alpha 0.05 and power 0.8
Z_ALPHA, Z_POWER = float(stats.norm.ppf(0.975)), float(stats.norm.ppf(0.8))


def minimum_detectable_difference(iid: Clusters, ood: Clusters) -> float:
    """The smallest iid − ood difference a two-sided test at α = 0.05 detects with 80% power on these splits:
    (z₀.₉₇₅ + z₀.₈) · SE, SE² the sum of the two splits' clustered variances."""
    return (Z_ALPHA + Z_POWER) * math.sqrt(clustered_variance(iid) + clustered_variance(ood))


def resample_weights(n_clusters: int, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """How often each cluster is drawn in each of `n_resamples` resamples with replacement (rows sum to
    n_clusters): a resample's sums are then one matrix product, much faster than indexing."""
    picks = rng.integers(0, n_clusters, size=(n_resamples, n_clusters))
    flat = (np.arange(n_resamples)[:, None] * n_clusters + picks).ravel()
    return np.bincount(flat, minlength=n_resamples * n_clusters).reshape(n_resamples, n_clusters).astype(float)


def _resampled_means(clusters: Clusters, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """The split's mean in each of `n_resamples` resamples of its clusters (with replacement)."""
    weights = resample_weights(clusters.n_clusters, rng, n_resamples)
    return (weights @ clusters.sums) / (weights @ clusters.counts)


def cluster_bootstrap_mean(clusters: Clusters, seed: int = 0, n_resamples: int = 2000,
                           confidence: float = 0.95) -> Interval:
    """Percentile bootstrap interval of one split's (or group's) mean, resampling its images."""
    if clusters.n_clusters < 2:
        return Interval(math.nan, math.nan)
    means = _resampled_means(clusters, np.random.default_rng(seed), n_resamples)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(low), float(high))


def cluster_bootstrap_difference(iid: Clusters, ood: Clusters, seed: int = 0, n_resamples: int = 2000,
                                 confidence: float = 0.95) -> Interval:
    """Percentile bootstrap interval of mean(iid) − mean(ood) that resamples whole images: all questions about
    an image move together, so questions that share an image do not count as independent evidence.

    Written here rather than with scipy.stats.bootstrap: the mean of a cluster resample is a ratio of two
    cluster-level sums that must be drawn together (paired) while iid and ood are drawn independently, and
    scipy pairs either all samples or none.
    """
    if iid.n_clusters < 2 or ood.n_clusters < 2:
        return Interval(math.nan, math.nan)
    rng = np.random.default_rng(seed)
    differences = _resampled_means(iid, rng, n_resamples) - _resampled_means(ood, rng, n_resamples)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(differences, [alpha, 1 - alpha])
    return Interval(float(low), float(high))


@dataclass(frozen=True)
class PairedDifference:
    """mean(a) − mean(b) over the questions both models answered, with a cluster-bootstrap interval and a
    sign-flip p-value over clusters (images)."""

    difference: float
    low: float
    high: float
    p_value: float
    n_questions: int
    n_clusters: int


def paired_difference(a: Mapping[str, float], b: Mapping[str, float], cluster_of: Mapping[str, str], seed: int = 0,
                      n_resamples: int = 2000, confidence: float = 0.95) -> PairedDifference:
    """Two models on the same questions: each image's sum of per-question differences (a − b) is one unit.

    The difference is the question-weighted mean difference (as the table's means are). The interval resamples
    images with their differences; the p-value flips the sign of each image's difference (under "no difference"
    the two models' labels are exchangeable within an image): `sign_flip_p_value`, exact over all 2^k sign
    patterns when there are few images, `n_resamples` of them otherwise.
    """
    common = sorted(set(a) & set(b))
    differences = clusters_of({q: a[q] - b[q] for q in common}, cluster_of)
    if not common:
        return PairedDifference(math.nan, math.nan, math.nan, math.nan, 0, 0)
    observed = differences.mean
    if differences.n_clusters < 2:
        return PairedDifference(observed, math.nan, math.nan, math.nan, len(common), differences.n_clusters)
    rng = np.random.default_rng(seed)
    resampled = _resampled_means(differences, rng, n_resamples)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    return PairedDifference(observed, float(low), float(high), sign_flip_p_value(differences.sums, n_resamples, rng),
                            len(common), differences.n_clusters)


EXACT_FLIP_LIMIT = 16  # up to 2^16 sign patterns are enumerated


def sign_flip_p_value(sums: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of "no difference" for per-image sums of paired differences, flipping each image's
    sign: over all 2^k patterns when there are no more of them than `n_resamples` (and k <= EXACT_FLIP_LIMIT),
    else over `n_resamples` random patterns, the observed one counted in (+1 above and below). The statistic is
    the total, which orders patterns as the question-weighted mean difference does (N is fixed).

    What scipy.stats.permutation_test(permutation_type="samples") computes for one sample (tests compare the
    two); written vectorised here because scipy's per-call overhead made the paired comparisons of a
    paper-sized report take over a minute.
    """
    sums = np.asarray(sums, dtype=float)
    k = sums.size
    observed = abs(float(sums.sum()))
    tolerance = 1e-9 * max(1.0, observed)
    if k <= EXACT_FLIP_LIMIT and 2**k <= max(n_resamples, 2):
        patterns = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1) * 2 - 1
        totals = np.abs(patterns @ sums)
        return float(np.mean(totals >= observed - tolerance))
    signs = rng.integers(0, 2, size=(n_resamples, k)) * 2 - 1
    totals = np.abs(signs @ sums)
    return float((np.sum(totals >= observed - tolerance) + 1) / (n_resamples + 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels; scipy has only false-discovery-rate methods); NaN stays
    NaN and does not count as a comparison."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(values.shape, math.nan)
    present = ~np.isnan(values)
    if present.any():
        adjusted[present] = multipletests(values[present], method="holm")[1]
    return adjusted.tolist()


@dataclass(frozen=True)
class Concordance:
    """Kendall's W of m rankings (blocks) of the same n items, with Friedman's chi-square and its p-value."""

    w: float
    chi_square: float
    p_value: float
    m: int
    n: int


def kendalls_w(scores: np.ndarray) -> Concordance:
    """`scores`: one row per ranking (e.g. per shift), one column per item (e.g. per method); higher ranks
    higher. W = χ²_F / (m (n − 1)) from scipy's Friedman test, which ranks within each row and corrects for
    ties; it needs at least 3 items and 2 rankings."""
    scores = np.asarray(scores, dtype=float)
    m, n = scores.shape
    if m < 2 or n < 3:
        return Concordance(math.nan, math.nan, math.nan, m, n)
    chi_square, p_value = stats.friedmanchisquare(*scores.T)
    return Concordance(float(chi_square / (m * (n - 1))), float(chi_square), float(p_value), m, n)
