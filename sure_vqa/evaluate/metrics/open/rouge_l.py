"""ROUGE-L, an extra beyond the paper's set (docs/method.md#traditional-metrics): Google's `rouge-score` package
on the normalised answers. Switched on with `extra_metrics=[rouge_l]`."""

from __future__ import annotations

import functools
from typing import Any

from sure_vqa.evaluate.metrics.normalize import normalize_answer
from sure_vqa.evaluate.metrics.registry import Column, OpenMetric, register


@functools.lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(gt: str, pred: str) -> float:
    """ROUGE-L F-measure of the normalised prediction against the normalised ground truth (0 if either is empty)."""
    gt_text, pred_text = normalize_answer(gt), normalize_answer(pred)
    if not gt_text or not pred_text:
        return 0.0
    return float(_rouge().score(gt_text, pred_text)["rougeL"].fmeasure)


register(OpenMetric(
    name="rouge_l", columns=(Column("rouge_l", "ROUGE-L"),), order=100, extra=True,
    score_row=lambda gt, pred, gt_tokens, pred_tokens: (rouge_l(gt, pred),), description="ROUGE-L F-measure"))
