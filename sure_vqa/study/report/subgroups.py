"""Subgroups: each model's score per value of every record field of its test questions (modality, body region,
content type, age group, sex, ethnicity, ...), with an interval that resamples images and the gap between the
best and the worst group (docs/report.md#subgroups).

The questions of a run are joined to their fields through the split files by qid: the split a run answered is
the `split_selection` its inference_info.json records, so runs without that file (the most frequent answer, the
original code's folders) have no subgroups. iid and ood questions are pooled: the shift's own field then shows
the iid/ood gap beside the others. A field enters when it has 2 to MAX_VALUES values; MIMIC's `age` is grouped as
its shifts group it (< 40, 40-59, >= 60).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from sure_vqa import naming
from sure_vqa.config import ConfigError
from sure_vqa.data.records import QARecord
from sure_vqa.study.report import stats
from sure_vqa.study.report.comparisons import headline_keys, split_scores
from sure_vqa.study.report.grid import MODEL, ShiftRuns
from sure_vqa.study.report.scan import IMAGE, PRETRAINED, Run, Shift
from sure_vqa.study.report.tables import ReportSettings, ScoreReader, metric_label

MAX_VALUES = 20
AGE_GROUPS = ((0, 40, "< 40"), (40, 60, "40-59"), (60, math.inf, ">= 60"))
SUBGROUP_COLUMNS = ["dataset", "shift", "label", "answer_kind", "metric", "metric_label", "field", "value", "mean",
                    "ci_low", "ci_high", "questions", "images", "worst_gap", "is_worst", "is_best"]


def _group_value(field: str, value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, list | dict):
        return None
    if field == "age":
        try:
            age = float(value)
        except (TypeError, ValueError):
            return None
        return next(label for low, high, label in AGE_GROUPS if low <= age < high)
    return str(value)


class SplitRecords:
    """The split files runs answered, read once per split selection (the `split_selection` a run's
    inference_info.json records): each question's fields, and whether the answers are still of that split."""

    def __init__(self, dataset_root: Path | None) -> None:
        self.dataset_root = dataset_root
        self.cache: dict[str, list[QARecord]] = {}
        self.fields: dict[str, dict[str, dict[str, str]]] = {}
        self.problems: list[str] = []

    def _info(self, run: Run | None) -> dict[str, Any] | None:
        if run is None or self.dataset_root is None:
            return None
        try:
            info = json.loads((run.path / naming.INFERENCE_INFO_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) and isinstance(info.get("split_selection"), dict) else None

    def _records(self, run: Run, selection: Mapping[str, Any]) -> tuple[str, list[QARecord]]:
        from sure_vqa.data.splits import split_records

        key = json.dumps(selection, sort_keys=True)
        if key not in self.cache:
            try:
                self.cache[key] = split_records(self.dataset_root, selection["dataset"], selection["mod"],
                                                selection["split"], selection.get("data_shift"),
                                                selection.get("ood_value"))
            except (ConfigError, KeyError) as err:
                self.problems.append(f"{run.path}: {err}")
                self.cache[key] = []
        return key, self.cache[key]

    def fields_of(self, run: Run | None) -> dict[str, dict[str, str]]:
        """qid -> {field: group value} of the questions of the split `run` answered."""
        info = self._info(run)
        if info is None:
            return {}
        key, records = self._records(run, info["split_selection"])
        if key not in self.fields:
            self.fields[key] = {r.qid: {f: g for f, v in r.fields.items() if (g := _group_value(f, v)) is not None}
                                for r in records}
        return self.fields[key]

    def stale_answers(self, run: Run | None) -> str | None:
        """Why `run`'s answers are not of its split file as it is now (the questions changed since inference),
        or None (current, or not checkable: no dataset_root, no inference_info.json, no recorded digest)."""
        from sure_vqa.data.records import records_digest
        from sure_vqa.data.splits import limit_records

        info = self._info(run)
        recorded = ((info or {}).get("settings") or {}).get("split_digest")
        if info is None or not recorded:
            return None
        selection = info["split_selection"]
        _, records = self._records(run, selection)
        if not records:
            return None
        try:
            asked = limit_records(records, selection.get("max_samples"))
        except ConfigError:
            return None
        if records_digest(asked) == recorded:
            return None
        then = (info.get("settings") or {}).get("num_questions", "?")
        return (f"{naming.TEST_RESULTS_FILE} answers the split file as it was at inference ({then} questions); it has "
                f"changed since ({len(asked)} questions now): rerun inference for this folder")


def _variants(found: ShiftRuns) -> list:
    return [v for v in found.clean if not v.swap and v.condition == IMAGE
            and (v.role == MODEL or v.kind == PRETRAINED)]


def subgroup_table(shifts: Mapping[Shift, ShiftRuns], read: ScoreReader, settings: ReportSettings,
                   splits: SplitRecords) -> pd.DataFrame:
    rows = []
    for shift, found in shifts.items():
        for variant in _variants(found):
            seed_runs = found.clean[variant]
            by_qid: dict[str, dict[str, str]] = {}
            for runs in seed_runs.values():
                for run in runs.values():
                    by_qid.update(splits.fields_of(run))
            if not by_qid:
                continue
            for kind, metric, source in headline_keys(seed_runs, read, settings):
                pooled, images = {}, {}
                for split in ("iid", "ood"):
                    scores = split_scores(seed_runs, split, (kind, metric), read)
                    pooled.update(scores.scores)
                    images.update(scores.images)
                names = sorted({f for q in pooled for f in by_qid.get(q, {})})
                for name in names:
                    groups: dict[str, dict[str, float]] = {}
                    for qid, value in pooled.items():
                        group_value = by_qid.get(qid, {}).get(name)
                        if group_value is not None:
                            groups.setdefault(group_value, {})[qid] = value
                    if not 2 <= len(groups) <= MAX_VALUES:
                        continue
                    field_rows = []
                    for value, scores in sorted(groups.items()):
                        clusters = stats.clusters_of(scores, images)
                        interval = stats.cluster_bootstrap_mean(clusters, settings.bootstrap_seed,
                                                                settings.n_resamples, settings.confidence)
                        field_rows.append({
                            "dataset": shift.dataset, "shift": shift.label, "label": variant.label,
                            "answer_kind": kind, "metric": metric, "metric_label": metric_label(metric, source),
                            "field": name, "value": value, "mean": clusters.mean, "ci_low": interval.low,
                            "ci_high": interval.high, "questions": int(clusters.counts.sum()),
                            "images": clusters.n_clusters})
                    rows += _mark_gap(field_rows, settings.subgroup_min_questions)
    return pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)


def _mark_gap(field_rows: list[dict[str, Any]], min_questions: int) -> list[dict[str, Any]]:
    """The best and the worst group among those with at least `min_questions` questions, and their gap."""
    counted = [r for r in field_rows if r["questions"] >= min_questions]
    worst = min(counted, key=lambda r: r["mean"]) if len(counted) >= 2 else None
    best = max(counted, key=lambda r: r["mean"]) if len(counted) >= 2 else None
    gap = best["mean"] - worst["mean"] if worst is not None and best is not None else math.nan
    return [{**r, "worst_gap": gap, "is_worst": r is worst, "is_best": r is best} for r in field_rows]


def subgroup_display(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per model × metric × field: the worst and the best group and the gap (– when fewer than two
    groups have enough questions to decide it)."""
    from sure_vqa.study.report.render import fmt

    lines = []
    for (label, metric, kind, name), group in rows.groupby(["label", "metric_label", "answer_kind", "field"],
                                                           sort=False):
        worst, best = group[group["is_worst"].astype(bool)], group[group["is_best"].astype(bool)]
        if worst.empty or best.empty:  # no two groups are large enough for a gap: show the extremes, no gap
            w, b = group.loc[group["mean"].idxmin()], group.loc[group["mean"].idxmax()]
        else:
            w, b = worst.iloc[0], best.iloc[0]
        lines.append({"model": label, "metric": f"{metric} ({kind})", "field": name, "groups": len(group),
                      "worst group": f"{w['value']}: {fmt(w['mean'])} [{fmt(w['ci_low'])}, {fmt(w['ci_high'])}] "
                                     f"({w['questions']} q)",
                      "best group": f"{b['value']}: {fmt(b['mean'])} [{fmt(b['ci_low'])}, {fmt(b['ci_high'])}] "
                                    f"({b['questions']} q)",
                      "gap": fmt(w["worst_gap"])})
    return pd.DataFrame(lines, columns=["model", "metric", "field", "groups", "worst group", "best group", "gap"])
