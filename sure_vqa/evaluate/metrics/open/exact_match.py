"""Exact match as LLaVA-Med defines it (docs/method.md#traditional-metrics)."""

from __future__ import annotations

from collections.abc import Sequence

from sure_vqa.evaluate.metrics.normalize import ngram_counts
from sure_vqa.evaluate.metrics.registry import Column, OpenMetric, register


def exact_match(pred_tokens: Sequence[str], gt_tokens: Sequence[str]) -> float:
    """Distinct ground-truth tokens found in the prediction / prediction tokens (LLaVA-Med); 0 if empty."""
    if not pred_tokens:
        return 0.0
    in_pred = ngram_counts(pred_tokens, 1)  # the distinct tokens (shared with F1 and BLEU, counted once)
    found = sum(1 for token in ngram_counts(gt_tokens, 1) if token in in_pred)
    return found / len(pred_tokens)


register(OpenMetric(
    name="exact_match", columns=(Column("exact_match_score", "exact match"),), order=10,
    score_row=lambda gt, pred, gt_tokens, pred_tokens: (exact_match(pred_tokens, gt_tokens),),
    description="LLaVA-Med's exact match on normalised tokens"))
