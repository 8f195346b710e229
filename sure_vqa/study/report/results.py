"""Reading one eval run's metrics files into per-question scores (docs/method.md#experiment-folders, #traditional-metrics, #llm-judge).

Every metrics file is a JSON list: element 0 the averages, then one row per question. A metric `X` has its
mean under `avg_X` in element 0 and its per-question value under `X` in each row. The traditional files
(open_ended_metrics.json, closed_ended_metrics.json) and the judge files (`<judge>_metrics.json`,
`<judge>_metrics_closed.json`) share that layout, including files written by the original SURE-VQA code, so one
reader serves all of them. A row whose value is missing or not a number is not scored: for a judge that is a
judge failure (never a zero), for closed accuracy an undefined row; both are counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import DataError

OPEN, CLOSED = "open", "closed"
TRADITIONAL = "traditional"
# Element-0 keys that count a judge's unparseable answers, whatever the evaluation version called them.
FAILURE_KEYS = ("n_failures", "failures", "judge_failures", "n_judge_failures", "failure_count", "n_failed")


@dataclass(frozen=True)
class MetricScores:
    """One metric of one run: the file's mean, each scored question's value, and the rows left unscored."""

    mean: float | None
    per_question: dict[str, float]
    unscored: int
    source: str  # traditional | <judge name>
    version: str | None = None  # a judge's identity and prompt version, as recorded beside its mean

    @property
    def n_scored(self) -> int:
        return len(self.per_question)


@dataclass
class RunScores:
    """Every metric found in one eval folder, keyed by (answer kind, metric name)."""

    metrics: dict[tuple[str, str], MetricScores] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):  # the original judge code stored a reply it could not parse as the score
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _failure_count(averages: Mapping[str, Any]) -> int | None:
    for key in FAILURE_KEYS:
        if isinstance(averages.get(key), int):
            return int(averages[key])
    return None


def _judge_version(averages: Mapping[str, Any]) -> str | None:
    """`identity, prompt version` of a judge file (docs/method.md#llm-judge); None for files that do not record them."""
    identity = averages.get("judge_identity") or averages.get("judge")
    prompt = averages.get("prompt_version")
    if isinstance(prompt, list):
        prompt = "+".join(map(str, prompt))
    parts = [str(p) for p in (identity, f"prompt {prompt}" if prompt else None) if p]
    return ", ".join(parts) or None


def read_metrics_file(path: Path, source: str) -> dict[str, MetricScores]:
    """Every `avg_X` metric of one metrics file, with its per-question values from the rows."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable JSON metrics file ({err})") from None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        raise DataError(f"{path}: a metrics file must be a JSON list whose element 0 holds the averages")
    averages, rows = content[0], [row for row in content[1:] if isinstance(row, dict)]
    declared_failures = _failure_count(averages)
    version = _judge_version(averages) if source != TRADITIONAL else None
    found: dict[str, MetricScores] = {}
    for key, mean in averages.items():
        if not key.startswith("avg_"):
            continue
        metric = key[len("avg_"):]
        per_question: dict[str, float] = {}
        unscored = 0
        for index, row in enumerate(rows):
            value = _number(row.get(metric))
            if value is None:
                unscored += 1
            else:
                per_question[str(row.get("qid", index))] = value
        if rows and not per_question and all(metric not in row for row in rows):
            unscored = 0  # an average without per-row values (e.g. the original's avg_bleu_score); mean only
        if source != TRADITIONAL and declared_failures is not None:
            unscored = max(unscored, declared_failures)
        found[metric] = MetricScores(_number(mean), per_question, unscored, source, version)
    return found


def _judge_metric(scores: dict[str, MetricScores], judge: str) -> MetricScores | None:
    """A judge file's score: the metric named after the judge, else the first with per-question values."""
    for name in (f"{judge}_score", judge, "score"):
        if name in scores:
            return scores[name]
    with_rows = [s for s in scores.values() if s.per_question]
    return with_rows[0] if with_rows else next(iter(scores.values()), None)


def read_run(eval_dir: Path) -> RunScores:
    """All metrics of one eval folder. Judge metrics are named after the judge (`gemma`)."""
    result = RunScores()
    for name, kind in ((naming.OPEN_METRICS_FILE, OPEN), (naming.CLOSED_METRICS_FILE, CLOSED)):
        path = eval_dir / name
        if path.is_file():
            result.files.append(name)
            for metric, scores in read_metrics_file(path, TRADITIONAL).items():
                result.metrics[(kind, metric)] = scores
    for path in sorted(eval_dir.glob("*_metrics*.json")):
        parsed = naming.parse_judge_metrics_file(path.name)
        if parsed is None:
            continue
        judge, kind = parsed
        result.files.append(path.name)
        scores = _judge_metric(read_metrics_file(path, judge), judge)
        if scores is not None:
            result.metrics[(kind, judge)] = scores
    return result
