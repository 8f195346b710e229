"""BLEU-1..3 from nltk's `sentence_bleu` (docs/method.md#traditional-metrics): uniform weights, no smoothing.

nltk's tokenizer is not used because it needs data that is not available offline; the tokens are the
normalised whitespace tokens of every open metric.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from nltk.translate.bleu_score import sentence_bleu

from sure_vqa.evaluate.metrics.registry import Column, OpenMetric, register

BLEU_WEIGHTS = [(1.0,), (1 / 2, 1 / 2), (1 / 3, 1 / 3, 1 / 3)]


def bleu_scores(pred_tokens: Sequence[str], gt_tokens: Sequence[str]) -> tuple[float, float, float]:
    """BLEU-1, BLEU-2, BLEU-3 of the prediction against the single reference, as nltk computes them.

    Without smoothing nltk warns and uses the smallest float for a zero n-gram precision, so a one-word match
    has BLEU-2 of about 1e-154 rather than 0; those values are kept as nltk gives them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk's "n-gram overlaps" warnings, one per short answer
        scores = sentence_bleu([list(gt_tokens)], list(pred_tokens), weights=BLEU_WEIGHTS)
    return tuple(float(s) for s in scores)  # type: ignore[return-value]


register(OpenMetric(
    name="bleu", order=30, score_row=lambda gt, pred, gt_tokens, pred_tokens: bleu_scores(pred_tokens, gt_tokens),
    columns=(Column("bleu_score_1", "BLEU-1"), Column("bleu_score_2", "BLEU-2"), Column("bleu_score_3", "BLEU-3")),
    description="BLEU-1, BLEU-2 and BLEU-3 (nltk, no smoothing)"))
