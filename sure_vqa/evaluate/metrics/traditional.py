"""Traditional VQA metrics exactly as docs/method.md#traditional-metrics: token metrics for open questions, accuracy for closed ones.

Open questions are scored on normalised whitespace tokens (`normalize.normalize_tokens`): exact match as
LLaVA-Med defines it, token precision/recall/F1, and BLEU-1..3 from nltk's `sentence_bleu` (uniform weights, no
smoothing; nltk's tokenizer is not used because it needs data that is not available offline). Closed questions
are scored by which answer categories occur as whole words in the ground truth and in the prediction.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nltk.translate.bleu_score import sentence_bleu
from tqdm import tqdm

from sure_vqa.evaluate.metrics.normalize import normalize_answer, normalize_tokens

OPEN_METRICS = (
    "exact_match_score",
    "f1_score",
    "precision",
    "recall",
    "bleu_score_1",
    "bleu_score_2",
    "bleu_score_3",
)
BLEU_WEIGHTS = [(1.0,), (1 / 2, 1 / 2), (1 / 3, 1 / 3, 1 / 3)]
YES_NO = ("yes", "no")


def average_key(metric: str) -> str:
    """`exact_match_score` -> `avg_exact_match_score` (the keys of element 0 of the metrics files)."""
    return f"avg_{metric}"


# --- open questions ------------------------------------------------------------------------------


def exact_match(pred_tokens: Sequence[str], gt_tokens: Sequence[str]) -> float:
    """Distinct ground-truth tokens found in the prediction / prediction tokens (LLaVA-Med); 0 if empty."""
    if not pred_tokens:
        return 0.0
    found = set(gt_tokens) & set(pred_tokens)
    return len(found) / len(pred_tokens)


def precision_recall_f1(pred_tokens: Sequence[str], gt_tokens: Sequence[str]) -> tuple[float, float, float]:
    """Token precision, recall and F1 with the counts of docs/method.md#traditional-metrics; all 0 when tp is 0 or a side is empty."""
    pred_counts, gt_counts = Counter(pred_tokens), Counter(gt_tokens)
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


def bleu_scores(pred_tokens: Sequence[str], gt_tokens: Sequence[str]) -> tuple[float, float, float]:
    """BLEU-1, BLEU-2, BLEU-3 of the prediction against the single reference, as nltk computes them.

    Without smoothing nltk warns and uses the smallest float for a zero n-gram precision, so a one-word match
    has BLEU-2 of about 1e-154 rather than 0; those values are kept as nltk gives them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk's "n-gram overlaps" warnings, one per short answer
        scores = sentence_bleu([list(gt_tokens)], list(pred_tokens), weights=BLEU_WEIGHTS)
    return tuple(float(s) for s in scores)  # type: ignore[return-value]


def open_metrics(gt: str, pred: str) -> dict[str, float]:
    """Every open-question metric of one answer, keyed by `OPEN_METRICS`."""
    gt_tokens, pred_tokens = normalize_tokens(gt), normalize_tokens(pred)
    precision, recall, f1 = precision_recall_f1(pred_tokens, gt_tokens)
    bleu_1, bleu_2, bleu_3 = bleu_scores(pred_tokens, gt_tokens)
    return {
        "exact_match_score": exact_match(pred_tokens, gt_tokens),
        "f1_score": f1,
        "precision": precision,
        "recall": recall,
        "bleu_score_1": bleu_1,
        "bleu_score_2": bleu_2,
        "bleu_score_3": bleu_3,
    }


# --- closed questions ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _category_pattern(category: str) -> re.Pattern[str]:
    # Whole word: no letter, digit or underscore right before or after; inner whitespace may vary.
    words = [re.escape(part) for part in category.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def matching_categories(text: str, categories: Iterable[str]) -> list[str]:
    """The categories that occur in `text` as whole words, case-insensitively (each category once)."""
    matched: list[str] = []
    seen: set[str] = set()
    for category in categories:
        key = str(category).strip().casefold()
        if not key or key in seen:
            continue
        seen.add(key)
        if _category_pattern(str(category).strip()).search(str(text)):
            matched.append(str(category).strip())
    return matched


@dataclass(frozen=True)
class ClosedScore:
    """Accuracy of one closed answer; None (undefined) when the ground truth doesn't match exactly one category."""

    accuracy: float | None
    gt_matches: list[str]
    pred_matches: list[str]


def closed_accuracy(gt: str, pred: str, categories: Sequence[str] | None) -> ClosedScore:
    """1 if the prediction matches exactly the one category the ground truth matches; 0 if it matches another,
    none or several; undefined if the ground truth matches none or several (or there are no categories)."""
    gt_matches = matching_categories(gt, categories or ())
    pred_matches = matching_categories(pred, categories or ())
    if len(gt_matches) != 1:
        return ClosedScore(None, gt_matches, pred_matches)
    correct = len(pred_matches) == 1 and pred_matches[0].casefold() == gt_matches[0].casefold()
    return ClosedScore(1.0 if correct else 0.0, gt_matches, pred_matches)


def yes_no_categories(gt: str) -> list[str] | None:
    """[yes, no] when the normalised ground truth is yes or no, else None: the fallback when no categories are known."""
    return list(YES_NO) if normalize_answer(gt) in YES_NO else None


# --- whole files ---------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_open_rows(rows: Sequence[Mapping[str, Any]], progress: bool = True) -> list[dict[str, Any]]:
    """open_ended_metrics.json: element 0 the averages (None when there are no rows), then each row with its scores."""
    scored = []
    for row in tqdm(rows, desc="open metrics", unit="row", disable=not progress or len(rows) < 1000):
        scored.append({**row, **open_metrics(str(row["gt"]), str(row["pred"]))})
    averages: dict[str, Any] = {
        average_key(metric): _mean([row[metric] for row in scored]) for metric in OPEN_METRICS
    }
    averages["n_rows"] = len(scored)
    return [averages, *scored]


def score_closed_rows(
    rows: Sequence[Mapping[str, Any]],
    categories: Sequence[Sequence[str] | None],
    progress: bool = True,
) -> list[dict[str, Any]]:
    """closed_ended_metrics.json: element 0 `avg_accuracy` over the rows whose accuracy is defined, with the
    counts of scored and undefined rows, then each row with its categories, matches and accuracy (null if
    undefined)."""
    if len(categories) != len(rows):
        raise ValueError(f"{len(rows)} closed rows but {len(categories)} category lists")
    scored = []
    for row, row_categories in tqdm(
        zip(rows, categories, strict=True), total=len(rows), desc="closed metrics", unit="row",
        disable=not progress or len(rows) < 1000,
    ):
        result = closed_accuracy(str(row["gt"]), str(row["pred"]), row_categories)
        scored.append({
            **row,
            "categories": list(row_categories) if row_categories is not None else None,
            "gt_matches": result.gt_matches,
            "pred_matches": result.pred_matches,
            "accuracy": result.accuracy,
        })
    defined = [row["accuracy"] for row in scored if row["accuracy"] is not None]
    averages = {
        "avg_accuracy": _mean(defined),
        "n_rows": len(scored),
        "n_scored": len(defined),
        "n_undefined": len(scored) - len(defined),
    }
    return [averages, *scored]
