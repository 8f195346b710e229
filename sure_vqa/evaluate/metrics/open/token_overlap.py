"""Token F1, precision and recall (docs/method.md#traditional-metrics)."""

from __future__ import annotations

from collections.abc import Sequence

from sure_vqa.evaluate.metrics.normalize import ngram_counts
from sure_vqa.evaluate.metrics.registry import Column, OpenMetric, register


def precision_recall_f1(pred_tokens: Sequence[str], gt_tokens: Sequence[str]) -> tuple[float, float, float]:
    """Token precision, recall and F1 with the counts of docs/method.md#traditional-metrics; all 0 when tp is 0 or a side is empty."""
    pred_counts, gt_counts = ngram_counts(pred_tokens, 1), ngram_counts(gt_tokens, 1)
    if not pred_counts or not gt_counts:
        return 0.0, 0.0, 0.0
    tp = sum(count for word, count in pred_counts.items() if word in gt_counts)
    if tp == 0:
        return 0.0, 0.0, 0.0
    fp = sum(count for word, count in pred_counts.items() if word not in gt_counts)
    fn = sum(count for word, count in gt_counts.items() if word not in pred_counts)
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall)


def _f1_precision_recall(gt: str, pred: str, gt_tokens: Sequence[str], pred_tokens: Sequence[str]) -> tuple[float, ...]:
    precision, recall, f1 = precision_recall_f1(pred_tokens, gt_tokens)
    return f1, precision, recall


register(OpenMetric(
    name="token_overlap", order=20, score_row=_f1_precision_recall,
    columns=(Column("f1_score", "F1"), Column("precision", "precision"), Column("recall", "recall")),
    description="token F1, precision and recall"))
