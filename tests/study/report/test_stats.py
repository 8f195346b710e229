"""The report's statistics against hand-computed cases, and the bootstrap interval's coverage on a known case."""

import math

import numpy as np
import pytest

from sure_vqa.study.report import stats


def test_mean_and_sample_std_over_seeds():
    summary = stats.summarise([0.8, 0.6, 0.7])
    assert summary.mean == pytest.approx(0.7)
    assert summary.std == pytest.approx(math.sqrt((0.1**2 + 0.1**2 + 0) / 2))  # ddof=1: divide by n-1
    assert summary.n == 3
    assert stats.summarise([0.8, None, 0.6]).n == 2  # a missing seed is left out, not counted as 0
    single = stats.summarise([0.4])
    assert single.mean == 0.4 and math.isnan(single.std) and single.n == 1
    assert stats.summarise([]).n == 0 and math.isnan(stats.summarise([None]).mean)


def test_relative_robustness_is_ood_over_iid():
    assert stats.relative_robustness(0.8, 0.4) == pytest.approx(0.5)  # 1 - (0.8 - 0.4)/0.8
    assert stats.relative_robustness(0.5, 0.6) == pytest.approx(1.2)
    assert stats.relative_robustness(0.0, 0.3) is None
    assert stats.relative_robustness(None, 0.3) is None and stats.relative_robustness(0.3, None) is None


def test_question_means_average_each_question_over_seeds():
    means = stats.question_means([{"q1": 1.0, "q2": 0.0}, {"q1": 0.0, "q2": 0.0}, {"q1": 1.0}])
    assert means.tolist() == pytest.approx([2 / 3, 0.0])


def test_bootstrap_known_cases():
    # No spread: every resample gives the same difference.
    interval = stats.bootstrap_difference(np.ones(20), np.zeros(30))
    assert (interval.low, interval.high) == (pytest.approx(1.0), pytest.approx(1.0))
    # Too few questions for an interval.
    assert math.isnan(stats.bootstrap_difference(np.ones(1), np.zeros(5)).low)
    # Seeded: the same interval every time; it contains the observed difference.
    iid, ood = np.array([1, 1, 0, 1, 0, 1, 1, 1.0]), np.array([0, 1, 0, 0, 1, 0, 0, 1.0])
    first, again = stats.bootstrap_difference(iid, ood, seed=3), stats.bootstrap_difference(iid, ood, seed=3)
    assert first == again
    assert first.low < iid.mean() - ood.mean() < first.high


def test_bootstrap_interval_covers_the_true_gap_about_95_percent_of_the_time():
    # Known case: iid answers right with p=0.7, ood with p=0.5, 150 questions each; the true gap is 0.2.
    rng = np.random.default_rng(7)
    replicates, covered, widths = 600, 0, []
    for replicate in range(replicates):
        iid = (rng.random(150) < 0.7).astype(float)
        ood = (rng.random(150) < 0.5).astype(float)
        interval = stats.bootstrap_difference(iid, ood, seed=replicate, n_resamples=1000)
        covered += interval.low <= 0.2 <= interval.high
        widths.append(interval.high - interval.low)
    coverage = covered / replicates
    # The binomial sd of the estimate is about 0.009: 0.92-0.975 is more than two and a half sd around 0.95.
    assert 0.92 <= coverage <= 0.975, coverage
    # The width matches the normal-theory interval 2 * 1.96 * sqrt(0.7*0.3/150 + 0.5*0.5/150) = 0.217.
    assert np.mean(widths) == pytest.approx(2 * 1.96 * math.sqrt(0.21 / 150 + 0.25 / 150), rel=0.05)


# --- clustered and paired statistics (docs/method.md#statistics-of-the-report), by hand -----------------------


def _duplicated(image_scores: list[float], k: int, prefix: str) -> tuple[dict[str, float], dict[str, str]]:
    """k questions per image, each with its image's score: qid -> score and qid -> image."""
    scores, images = {}, {}
    for i, value in enumerate(image_scores):
        for j in range(k):
            scores[f"{prefix}{i}-{j}"] = value
            images[f"{prefix}{i}-{j}"] = f"{prefix}img{i}"
    return scores, images


def test_the_cluster_bootstrap_is_wider_by_the_square_root_of_the_questions_per_image():
    """40 iid and 30 ood images, half scored 1 and half 0, each asked k = 4 times with the same score. Resampled
    as independent questions the standard error is sqrt(0.25/160 + 0.25/120); resampled by image it is
    sqrt(0.25/40 + 0.25/30), twice as large: the interval must be sqrt(4) = 2 times as wide."""
    iid, iid_images = _duplicated([1.0, 0.0] * 20, 4, "i")
    ood, ood_images = _duplicated([1.0, 0.0] * 15, 4, "o")
    question_level = stats.bootstrap_difference(np.array(list(iid.values())), np.array(list(ood.values())),
                                                seed=1, n_resamples=20000)
    clustered = stats.cluster_bootstrap_difference(stats.clusters_of(iid, iid_images),
                                                   stats.clusters_of(ood, ood_images), seed=1, n_resamples=20000)
    ratio = (clustered.high - clustered.low) / (question_level.high - question_level.low)
    assert ratio == pytest.approx(2.0, rel=0.06)
    expected_width = 2 * 1.959964 * math.sqrt(0.25 / 40 + 0.25 / 30)
    assert clustered.high - clustered.low == pytest.approx(expected_width, rel=0.06)
    assert clustered.low < 0 < clustered.high  # both means are 0.5


def test_clusters_hold_each_images_sum_and_count():
    groups = stats.clusters_of({"q1": 1.0, "q2": 0.0, "q3": 1.0, "q4": 0.5}, {"q1": "a", "q2": "a", "q3": "b"})
    assert groups.sums.tolist() == [1.0, 1.0, 0.5] and groups.counts.tolist() == [2, 1, 1]  # q4 alone
    assert groups.mean == pytest.approx(2.5 / 4) and groups.n_clusters == 3


@pytest.mark.parametrize(("image_sums", "expected_p"), [
    # all 2^3 sign patterns of the sums 1, 2, 3: totals 6, 0, 2, -4, 4, -2, 0, -6; |total| >= 6 twice: 2/8
    ([1.0, 2.0, 3.0], 2 / 8),
    # sums 1, -2, 3 (total 2): totals >= 2: 6, 2, 4 (3/8); totals <= 2: 0, 2, -4, -2, 0, -6 (6/8); 2 * 3/8
    ([1.0, -2.0, 3.0], 6 / 8),
])
def test_the_paired_sign_flip_p_value_is_exact_for_few_images(image_sums, expected_p):
    a, b, images = {}, {}, {}
    for i, total in enumerate(image_sums):  # image i has i + 1 questions sharing its sum of differences
        for j in range(i + 1):
            qid = f"img{i}-q{j}"
            a[qid], b[qid], images[qid] = 0.5 + total / (i + 1), 0.5, f"img{i}"
    a["only-in-a"] = 1.0  # not answered by b: left out of the pairing
    result = stats.paired_difference(a, b, images, seed=0, n_resamples=1000)
    assert result.n_questions == 6 and result.n_clusters == 3
    assert result.difference == pytest.approx(sum(image_sums) / 6)
    assert result.p_value == pytest.approx(expected_p)


def test_paired_interval_resamples_images():
    # 10 images, one question each, a better than b by 0.1 everywhere: no spread, a degenerate interval at 0.1
    a = {f"q{i}": 0.6 for i in range(10)}
    b = {f"q{i}": 0.5 for i in range(10)}
    images = {f"q{i}": f"img{i}" for i in range(10)}
    result = stats.paired_difference(a, b, images)
    assert result.difference == pytest.approx(0.1) and result.low == pytest.approx(0.1)
    assert result.high == pytest.approx(0.1)
    assert result.p_value == pytest.approx(2 / 2**10)  # only all-plus and all-minus reach |0.1|


def test_holm_step_down_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = stats.holm([0.01, math.nan])
    assert adjusted[0] == pytest.approx(0.01) and math.isnan(adjusted[1])  # one comparison, not two


def test_kendalls_w_by_hand_equals_the_friedman_conversion():
    """3 rankings of 4 items: rank sums R = 4, 6, 8, 12, mean 7.5, S = 12.25 + 2.25 + 0.25 + 20.25 = 35,
    W = 12 S / (m^2 (n^3 - n)) = 420 / 540 = 7/9; Friedman's chi-square = m (n - 1) W = 7."""
    ranks = np.array([[1, 2, 3, 4], [2, 1, 3, 4], [1, 3, 2, 4]], dtype=float)
    result = stats.kendalls_w(ranks)
    assert result.w == pytest.approx(7 / 9) and result.chi_square == pytest.approx(7.0)
    from scipy.stats import chi2

    assert result.p_value == pytest.approx(chi2.sf(7.0, 3))
    assert stats.kendalls_w(np.array([[1, 2, 3], [1, 2, 3]], dtype=float)).w == pytest.approx(1.0)
    assert math.isnan(stats.kendalls_w(np.array([[1.0, 2.0], [2.0, 1.0]])).w)  # two items: not defined here


def test_clustered_variance_and_minimum_detectable_difference_by_hand():
    # four images of two questions each, image means 1, 0, 1, 0: the sample variance of the image means is 1/3
    # (ddof=1), so the variance of the mean is 1/3 / 4 = 1/12; by the formula: 4/3 * (1+1+1+1) / 8^2 = 1/12
    clusters = stats.Clusters(np.array([2.0, 0.0, 2.0, 0.0]), np.array([2.0, 2.0, 2.0, 2.0]))
    assert stats.clustered_variance(clusters) == pytest.approx(1 / 12)
    # (1.959964 + 0.841621) * sqrt(1/12 + 1/12)
    assert stats.minimum_detectable_difference(clusters, clusters) == pytest.approx(
        (1.959964 + 0.841621) * math.sqrt(1 / 6), rel=1e-6)
    assert math.isnan(stats.clustered_variance(stats.Clusters(np.array([1.0]), np.array([1.0]))))


def test_the_sign_flip_p_value_is_scipys_permutation_test():
    """The vectorised sign flip gives what scipy.stats.permutation_test computes for one sample of per-image
    sums: exactly when all patterns are enumerated, and within Monte Carlo error otherwise."""
    from scipy.stats import permutation_test

    rng = np.random.default_rng(5)
    for k, n_resamples in ((8, 1000), (11, 4000), (40, 20000)):
        sums = rng.normal(0.3, 1.0, size=k)
        ours = stats.sign_flip_p_value(sums, n_resamples, np.random.default_rng(1))
        scipys = permutation_test((sums,), lambda x, axis: np.sum(x, axis=axis), permutation_type="samples",
                                  n_resamples=n_resamples, vectorized=True, rng=np.random.default_rng(2)).pvalue
        exact = 2**k <= n_resamples
        assert ours == pytest.approx(scipys, abs=0 if exact else 0.02), (k, ours, scipys)
