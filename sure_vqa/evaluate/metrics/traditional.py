"""Traditional VQA metrics exactly as docs/method.md#traditional-metrics: token metrics for open questions, accuracy
for closed ones, and the two metrics files they fill.

Open questions are scored on normalised whitespace tokens (`normalize.normalize_tokens`) by the metrics of the
registry (metrics/open/: exact match as LLaVA-Med defines it, token precision/recall/F1, BLEU-1..3, and the
extras). Closed questions are scored by which answer categories occur as whole words in the ground truth and in
the prediction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from sure_vqa.evaluate.metrics import registry
from sure_vqa.evaluate.metrics.normalize import Tokens, normalize_answer, normalize_tokens
from sure_vqa.evaluate.metrics.registry import OpenMetric

YES_NO = ("yes", "no")


def average_key(metric: str) -> str:
    """`exact_match_score` -> `avg_exact_match_score` (the keys of element 0 of the metrics files)."""
    return f"avg_{metric}"


# --- open questions: the metrics themselves are in metrics/open/, one module each ------------------------


def open_metrics(gt: str, pred: str, metrics: Sequence[OpenMetric] | None = None) -> dict[str, float]:
    """The per-row metrics of one answer (default: the paper's), keyed by their columns in file order."""
    return _row_values(gt, pred, normalize_tokens(gt), normalize_tokens(pred),
                       registry.paper_metrics() if metrics is None else metrics)


def _row_values(gt: str, pred: str, gt_tokens: Sequence[str], pred_tokens: Sequence[str],
                metrics: Sequence[OpenMetric]) -> dict[str, float]:
    values: dict[str, float] = {}
    for metric in metrics:
        if metric.score_row is not None:
            keys, scores = metric.keys, metric.score_row(gt, pred, gt_tokens, pred_tokens)
            if len(scores) != len(keys):
                raise ValueError(f"metric {metric.name!r} gave {len(scores)} values for its {len(keys)} columns")
            for key, score in zip(keys, scores, strict=False):
                values[key] = score
    return values


def _add_batch_metric(metric: OpenMetric, scored: list[dict[str, Any]]) -> None:
    results = metric.score_batch([str(row["gt"]) for row in scored], [str(row["pred"]) for row in scored])
    for row, values in zip(scored, results, strict=True):
        row.update(zip(metric.keys, values, strict=True))


def _add_averages(averages: dict[str, Any], metrics: Sequence[OpenMetric], scored: Sequence[Mapping]) -> None:
    for metric in metrics:
        for key in metric.keys:
            averages[average_key(key)] = _mean([row[key] for row in scored])


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


def score_open_rows(rows: Sequence[Mapping[str, Any]], extra: Sequence[str] = (),
                    progress: bool = True) -> list[dict[str, Any]]:
    """open_ended_metrics.json: element 0 the averages (None when there are no rows) and `n_rows`, then each row
    with its scores; the paper's metrics first, then the `extra` ones asked for (their averages after n_rows)."""
    paper, extras = registry.paper_metrics(), registry.check_extra_metrics(extra)
    row_metrics = [metric for metric in (*paper, *extras) if metric.score_row is not None]
    # Answers repeat (a dataset's ground truths come from a small vocabulary, a model's predictions too): each
    # distinct text is normalised once and each distinct (gt, pred) pair scored once; the metrics are pure
    # functions of the pair, so the values are those of scoring every row.
    tokens: dict[str, Tokens] = {}
    by_pair: dict[tuple[str, str], dict[str, float]] = {}
    scored = []
    for row in tqdm(rows, desc="open metrics", unit="row", disable=not progress or len(rows) < 1000):
        pair = (str(row["gt"]), str(row["pred"]))
        values = by_pair.get(pair)
        if values is None:
            for text in pair:
                if text not in tokens:
                    tokens[text] = Tokens(normalize_tokens(text))
            values = by_pair[pair] = _row_values(*pair, tokens[pair[0]], tokens[pair[1]], row_metrics)
        scored.append({**row, **values})
    for metric in (*paper, *extras):
        if metric.score_batch is not None:
            _add_batch_metric(metric, scored)
    averages: dict[str, Any] = {}
    _add_averages(averages, paper, scored)
    averages["n_rows"] = len(scored)
    _add_averages(averages, extras, scored)
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
