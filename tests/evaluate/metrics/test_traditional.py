"""Traditional metrics (docs/method.md#traditional-metrics) against hand-computed values."""

from __future__ import annotations

import math
import sys

import pytest

from sure_vqa.evaluate.metrics.registry import paper_keys
from sure_vqa.evaluate.metrics.traditional import (
    closed_accuracy,
    matching_categories,
    open_metrics,
    score_closed_rows,
    score_open_rows,
    yes_no_categories,
)

OPEN_METRICS = paper_keys()
FMIN = sys.float_info.min  # nltk's stand-in for a zero n-gram precision without smoothing


def geometric_mean(*precisions: float) -> float:
    """BLEU's uniform-weight mean of n-gram precisions, in log space as nltk computes it."""
    return math.exp(sum(math.log(p) for p in precisions) / len(precisions))


def approx(values: dict[str, float]) -> dict[str, object]:
    return {key: pytest.approx(value, rel=1e-12, abs=0) for key, value in values.items()}


def test_open_metrics_repeated_tokens_and_articles() -> None:
    # pred tokens: left lung and left lung (articles dropped); gt: left lung
    # exact match: 2 distinct gt tokens found / 5 pred tokens; tp = 2+2, fp = 1 (and), fn = 0
    # BLEU-1: clipped unigrams 2/5; BLEU-2: bigram "left lung" clipped to 1 of 4 -> sqrt(2/5 * 1/4)
    assert open_metrics("left lung", "the left lung and the left lung") == approx({
        "exact_match_score": 2 / 5, "precision": 4 / 5, "recall": 1.0, "f1_score": 8 / 9,
        "bleu_score_1": 2 / 5, "bleu_score_2": math.sqrt(0.1), "bleu_score_3": geometric_mean(2 / 5, 1 / 4, FMIN),
    })


def test_open_metrics_exact_answer_one_word() -> None:
    # a one-word answer has no bigram, so nltk's BLEU-2/3 are tiny, not 1 (kept as nltk computes them)
    scores = open_metrics("liver", "Liver.")
    assert scores == approx({
        "exact_match_score": 1.0, "precision": 1.0, "recall": 1.0, "f1_score": 1.0,
        "bleu_score_1": 1.0, "bleu_score_2": geometric_mean(1, FMIN), "bleu_score_3": geometric_mean(1, FMIN, FMIN),
    })


def test_open_metrics_empty_prediction_is_zero() -> None:
    assert open_metrics("liver", "") == {metric: 0.0 for metric in OPEN_METRICS}
    assert open_metrics("liver", "  ?! ") == {metric: 0.0 for metric in OPEN_METRICS}


def test_open_metrics_empty_ground_truth_is_zero() -> None:
    assert open_metrics("", "liver") == {metric: 0.0 for metric in OPEN_METRICS}


def test_open_metrics_no_overlap() -> None:
    assert open_metrics("liver", "kidney") == {metric: 0.0 for metric in OPEN_METRICS}


def test_open_metrics_repeated_prediction_word() -> None:
    # exact match 1 distinct gt token / 2 pred tokens; tp counts the prediction's 2 -> P = R = 1
    assert open_metrics("yes", "yes yes") == approx({
        "exact_match_score": 1 / 2, "precision": 1.0, "recall": 1.0, "f1_score": 1.0,
        "bleu_score_1": 1 / 2, "bleu_score_2": geometric_mean(1 / 2, FMIN),
        "bleu_score_3": geometric_mean(1 / 2, FMIN, FMIN),
    })


def test_open_metrics_short_prediction_and_brevity_penalty() -> None:
    # gt 5 tokens, pred 2 tokens both in gt: exact match 2/2 (it behaves like a precision), recall 2/5,
    # BLEU-1 = exp(1 - 5/2) * 1, BLEU-2 = exp(1 - 5/2) * sqrt(1 * 0/1 -> FMIN)
    scores = open_metrics("left upper lobe of lung", "left lung")
    bp = math.exp(1 - 5 / 2)
    assert scores == approx({
        "exact_match_score": 1.0, "precision": 1.0, "recall": 2 / 5, "f1_score": 2 * 0.4 / 1.4,
        "bleu_score_1": bp, "bleu_score_2": bp * geometric_mean(1, FMIN), "bleu_score_3": bp * geometric_mean(1, FMIN, FMIN),
    })


def test_open_metrics_bleu_orders() -> None:
    # unigrams 3/4, bigrams (p q) of {pq, qx, xs} -> 1/3, trigrams 0/2 -> FMIN
    scores = open_metrics("p q r s", "p q x s")
    assert scores["bleu_score_1"] == pytest.approx(3 / 4)
    assert scores["bleu_score_2"] == pytest.approx(math.sqrt(3 / 4 * 1 / 3))
    assert scores["bleu_score_3"] == pytest.approx(geometric_mean(3 / 4, 1 / 3, FMIN), rel=1e-9)
    assert scores["f1_score"] == pytest.approx(3 / 4)


def test_open_metrics_number_words_match_digits() -> None:
    scores = open_metrics("2", "two")
    assert scores["exact_match_score"] == scores["f1_score"] == scores["bleu_score_1"] == 1.0


@pytest.mark.parametrize(
    ("gt", "pred", "categories", "accuracy", "gt_n", "pred_n"),
    [
        ("yes", "Yes.", ["yes", "no"], 1.0, 1, 1),  # case and punctuation around the word
        ("no", "Yes, there is.", ["yes", "no"], 0.0, 1, 1),  # the other category
        ("yes", "maybe", ["yes", "no"], 0.0, 1, 0),  # prediction matches no category
        ("yes", "yes or no", ["yes", "no"], 0.0, 1, 2),  # prediction matches two categories
        ("no", "nodule not seen", ["yes", "no"], 0.0, 1, 0),  # whole words only: no/nodule, no/not
        ("possibly", "yes", ["yes", "no"], None, 0, 1),  # ground truth matches none: undefined
        ("left and right", "left", ["left", "right"], None, 2, 1),  # ground truth matches two: undefined
        ("X-Ray", "This is an x-ray image.", ["CT", "X-Ray"], 1.0, 1, 1),  # hyphenated category
        ("Left Lung", "left  lung", ["left lung", "right lung"], 1.0, 1, 1),  # multi-word, any whitespace
        ("both", "both", ["nodule", "mass", "both", "none"], 1.0, 1, 1),
        ("yes", "yes", None, None, 0, 0),  # no categories known: undefined
    ],
)
def test_closed_accuracy(gt: str, pred: str, categories: list[str] | None, accuracy: float | None,
                         gt_n: int, pred_n: int) -> None:
    score = closed_accuracy(gt, pred, categories)
    assert score.accuracy == accuracy
    assert (len(score.gt_matches), len(score.pred_matches)) == (gt_n, pred_n)


def test_matching_categories_counts_each_category_once() -> None:
    assert matching_categories("yes yes YES", ["yes", "Yes", "no"]) == ["yes"]


def test_yes_no_categories_from_ground_truth() -> None:
    assert yes_no_categories("Yes.") == ["yes", "no"]
    assert yes_no_categories(" NO ") == ["yes", "no"]
    assert yes_no_categories("CT") is None


def test_score_open_rows_file_layout() -> None:
    rows = [
        {"qid": "1", "question": "q", "gt": "yes", "pred": "yes yes", "answer_type": "OPEN"},
        {"qid": "2", "question": "q", "gt": "liver", "pred": "", "answer_type": "OPEN"},
    ]
    results = score_open_rows(rows)
    averages = results[0]
    assert set(averages) >= {"avg_exact_match_score", "avg_f1_score", "avg_precision", "avg_recall",
                             "avg_bleu_score_1", "avg_bleu_score_2", "avg_bleu_score_3"}
    assert averages["avg_exact_match_score"] == pytest.approx((1 / 2 + 0) / 2)
    assert averages["avg_f1_score"] == pytest.approx(1 / 2)
    assert averages["n_rows"] == 2
    assert results[1]["qid"] == "1" and results[1]["exact_match_score"] == 0.5
    assert results[2]["pred"] == "" and results[2]["f1_score"] == 0.0


def test_score_closed_rows_leaves_undefined_rows_out_of_the_mean() -> None:
    rows = [
        {"qid": "1", "gt": "yes", "pred": "yes", "answer_type": "CLOSED"},
        {"qid": "2", "gt": "no", "pred": "yes", "answer_type": "CLOSED"},
        {"qid": "3", "gt": "perhaps", "pred": "yes", "answer_type": "CLOSED"},
        {"qid": "4", "gt": "CT", "pred": "a CT scan", "answer_type": "CLOSED"},
    ]
    results = score_closed_rows(rows, [["yes", "no"], ["yes", "no"], ["yes", "no"], ["CT", "MRI"]])
    assert results[0] == {"avg_accuracy": pytest.approx(2 / 3), "n_rows": 4, "n_scored": 3, "n_undefined": 1}
    assert [row["accuracy"] for row in results[1:]] == [1.0, 0.0, None, 1.0]
    assert results[4]["categories"] == ["CT", "MRI"] and results[4]["pred_matches"] == ["CT"]


def test_no_rows_give_no_average() -> None:
    assert score_open_rows([])[0]["avg_f1_score"] is None
    assert score_closed_rows([], [])[0] == {"avg_accuracy": None, "n_rows": 0, "n_scored": 0, "n_undefined": 0}


def test_bleu_equals_nltk_sentence_bleu_on_random_answers() -> None:
    """Our BLEU follows nltk's rules (metrics/open/bleu.py); nltk itself is the reference here."""
    import random
    import warnings

    from nltk.translate.bleu_score import sentence_bleu

    from sure_vqa.evaluate.metrics.open.bleu import bleu_scores

    rng = random.Random(0)
    words = "liver lung left right ct mri 2 no".split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3000):
            pred = [rng.choice(words) for _ in range(rng.randint(0, 7))]
            gt = [rng.choice(words) for _ in range(rng.randint(0, 7))]
            expected = sentence_bleu([gt], pred, weights=[(1.0,), (1 / 2, 1 / 2), (1 / 3, 1 / 3, 1 / 3)])
            assert bleu_scores(pred, gt) == pytest.approx([float(e) for e in expected], abs=1e-12, rel=0)


def test_repeated_answers_score_as_each_row_alone() -> None:
    """score_open_rows scores each distinct pair once; every row still gets the values of scoring it alone."""
    rows = [{"qid": str(i), "gt": gt, "pred": pred, "answer_type": "OPEN"}
            for i, (gt, pred) in enumerate([("left lung", "the left lung"), ("liver", "Liver."),
                                            ("left lung", "the left lung"), ("left lung", "right lung"),
                                            ("liver", "spleen, liver")] * 3)]
    scored = score_open_rows(rows, progress=False)[1:]
    for row, result in zip(rows, scored, strict=True):
        assert {k: result[k] for k in open_metrics(row["gt"], row["pred"])} == open_metrics(row["gt"], row["pred"])
        assert result["qid"] == row["qid"]
