"""The open-question metrics behind one registry, and every metric's display label (docs/method.md#traditional-metrics).

A metric is one module in `sure_vqa/evaluate/metrics/open/` that calls `register` (every module there is
loaded): its name (the `extra_metrics` entry for an extra), the per-row keys it writes into
open_ended_metrics.json with their labels, its place in the file, and how it scores. The paper's metrics are
always computed; an extra only when `extra_metrics` names it. The evaluation, the report and the rater analysis
take keys and labels from here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sure_vqa.config import ConfigError
from sure_vqa.registry import Registry

# A per-row scorer gets the raw answers and their normalised tokens; a batch scorer gets every answer of a file
# at once (a model that embeds them in batches). Both return one value per column.
RowScorer = Callable[[str, str, Sequence[str], Sequence[str]], Sequence[float]]
BatchScorer = Callable[[Sequence[str], Sequence[str]], Sequence[Sequence[float]]]


@dataclass(frozen=True)
class Column:
    """One per-question key of a metrics file and how tables and plots name it."""

    key: str
    label: str


@dataclass(frozen=True)
class OpenMetric:
    """An open-question metric: `columns` in the order it writes them, `order` its place among the metrics
    (the paper's first), and either `score_row` or `score_batch`."""

    name: str
    columns: tuple[Column, ...]
    order: int
    score_row: RowScorer | None = None
    score_batch: BatchScorer | None = None
    extra: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if (self.score_row is None) == (self.score_batch is None):
            raise ValueError(f"metric {self.name!r} needs exactly one of score_row and score_batch")

    @functools.cached_property
    def keys(self) -> tuple[str, ...]:
        return tuple(column.key for column in self.columns)


# Closed questions have one metric, computed from the answer categories (metrics.traditional).
CLOSED_COLUMNS = (Column("accuracy", "accuracy"),)
# Keys of the original code's metrics files (legacy files the report still reads).
LEGACY_COLUMNS = (Column("bleu_score", "BLEU"), Column("yes_no_acc", "accuracy (original)"))

REGISTRY: Registry[OpenMetric] = Registry("open-question metric", "sure_vqa.evaluate.metrics.open", "extra_metrics entry")
register = REGISTRY.register


def all_metrics() -> list[OpenMetric]:
    return sorted(REGISTRY, key=lambda metric: (metric.order, metric.name))


def paper_metrics() -> list[OpenMetric]:
    """The metrics every evaluation computes, in file order."""
    return [metric for metric in all_metrics() if not metric.extra]


def extra_names() -> list[str]:
    return [metric.name for metric in all_metrics() if metric.extra]


def check_extra_metrics(names: Sequence[str] | None) -> list[OpenMetric]:
    """The configured extras in file order, validated; the error names the setting and what is valid."""
    requested = list(names or [])
    valid = extra_names()
    for name in requested:
        if name not in valid:
            raise ConfigError(f"extra_metrics contains {name!r}; valid extras: {', '.join(valid)}")
    return [metric for metric in all_metrics() if metric.name in requested]


def paper_keys() -> tuple[str, ...]:
    """The per-row keys of the paper's open metrics, in file order."""
    return tuple(key for metric in paper_metrics() for key in metric.keys)


def columns() -> list[Column]:
    """Every known column in display order: open metrics, then closed, then the original code's keys."""
    return [*(c for metric in all_metrics() for c in metric.columns), *CLOSED_COLUMNS, *LEGACY_COLUMNS]


def label(key: str) -> str:
    """The display name of a metric key (the key itself when unknown)."""
    for column in columns():
        if column.key == key:
            return column.label
    return key
