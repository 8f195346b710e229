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
