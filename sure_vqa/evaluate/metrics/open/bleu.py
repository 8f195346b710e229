"""BLEU-1..3 as nltk's `sentence_bleu` computes them (docs/method.md#traditional-metrics): uniform weights, one
reference, no smoothing.

Written here rather than calling nltk because nltk's general version (any number of references, Fractions,
a warning per short answer) was most of the time of the open metrics; the rules are nltk's, and
tests/evaluate/metrics/test_traditional.py compares the two on thousands of random answers (equal to 1e-12):

- p_n = clipped n-gram matches / max(1, n-grams of the prediction), for n = 1..3;
- no unigram match at all: every BLEU is 0;
- a zero p_n (with some unigram match) counts as the smallest float, `sys.float_info.min`, so BLEU-2 of a
  one-word match is about 1e-154, not 0 (nltk's method0 without smoothing);
- brevity penalty exp(1 - r/c) when the prediction (c tokens) is not longer than the reference (r tokens),
  0 for an empty prediction;
- BLEU-N = BP * exp(fsum(log(p_n) / N for n = 1..N)).

nltk's tokenizer is not used either (it needs data that is not available offline); the tokens are the
normalised whitespace tokens of every open metric.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from sure_vqa.evaluate.metrics.normalize import ngram_counts
from sure_vqa.evaluate.metrics.registry import Column, OpenMetric, register

MAX_N = 3


_LOG_FLOAT_MIN = math.log(sys.float_info.min)


def _clipped_matches(pred: Sequence[str], gt: Sequence[str], n: int) -> int:
    if len(pred) < n or len(gt) < n:  # no n-gram on one side (a one-word answer has no bigram)
        return 0
    gt_counts = ngram_counts(gt, n)
    matches = 0
    for gram, count in ngram_counts(pred, n).items():
        reference = gt_counts.get(gram, 0)
        matches += count if count < reference else reference
    return matches


def bleu_scores(pred_tokens: Sequence[str], gt_tokens: Sequence[str]) -> tuple[float, float, float]:
    """BLEU-1, BLEU-2, BLEU-3 of the prediction against the single reference, with nltk's rules (above)."""
    pred, gt = pred_tokens, gt_tokens
    c, r = len(pred), len(gt)
    if _clipped_matches(pred, gt, 1) == 0:
        return 0.0, 0.0, 0.0
    matches = [_clipped_matches(pred, gt, n) for n in range(1, MAX_N + 1)]
    logs = [math.log(m / max(1, c - n + 1)) if m else _LOG_FLOAT_MIN for n, m in enumerate(matches, start=1)]
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    scores = []
    for n in range(1, MAX_N + 1):
        weight = 1 / n  # nltk's uniform weights: (1,), (1/2, 1/2), (1/3, 1/3, 1/3)
        scores.append(brevity * math.exp(math.fsum(weight * lp for lp in logs[:n])))
    return scores[0], scores[1], scores[2]


register(OpenMetric(
    name="bleu", order=30, score_row=lambda gt, pred, gt_tokens, pred_tokens: bleu_scores(pred_tokens, gt_tokens),
    columns=(Column("bleu_score_1", "BLEU-1"), Column("bleu_score_2", "BLEU-2"), Column("bleu_score_3", "BLEU-3")),
    description="BLEU-1, BLEU-2 and BLEU-3 (nltk's sentence BLEU, no smoothing)"))
