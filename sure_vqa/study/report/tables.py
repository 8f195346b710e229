"""The report's tables as pandas DataFrames: the robustness summary, corruption results, and missing runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sure_vqa import naming
from sure_vqa.config import ConfigError, DataError
from sure_vqa.eval_folder import CLOSED, OPEN, TRADITIONAL, MetricScores, RunScores, read_json, read_run
from sure_vqa.evaluate.metrics import registry as metric_registry
from sure_vqa.runs import CorruptionSetting
from sure_vqa.study.report import stats
from sure_vqa.study.report.grid import SeedRuns, ShiftRuns, Variant, corruption_order
from sure_vqa.study.report.scan import Run, Shift

JUDGE = "judge"  # in `headline`: every judge found
ANSWER_KINDS = (OPEN, CLOSED)


@dataclass
class ReportSettings:
    """How the report computes and what it shows (config/study/report.yaml)."""

    n_resamples: int = 2000
    confidence: float = 0.95
    bootstrap_seed: int = 0
    swaps: Sequence[Mapping[str, Any]] = ()
    headline: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: {OPEN: [JUDGE, "f1_score", "exact_match_score"], CLOSED: [JUDGE, "accuracy"]}
    )
    # a subgroup with fewer questions is listed but does not decide the worst-group gap (docs/report.md#subgroups)
    subgroup_min_questions: int = 5

    def __post_init__(self) -> None:
        if not 0 < float(self.confidence) < 1:
            raise ConfigError(f"report confidence={self.confidence} must be between 0 and 1 (e.g. 0.95)")
        if int(self.n_resamples) < 100:
            raise ConfigError(f"report n_resamples={self.n_resamples} is too small; use at least 100 (e.g. 2000)")
        if int(self.subgroup_min_questions) < 1:
            raise ConfigError(f"report subgroup_min_questions={self.subgroup_min_questions} must be at least 1")
        for kind in self.headline:
            if kind not in ANSWER_KINDS:
                raise ConfigError(f"report headline.{kind} is not an answer kind; valid: open, closed")


def is_headline(settings: ReportSettings, kind: str, metric: str, source: str) -> bool:
    """Whether a metric is one of the answer kind's headline metrics (`judge` = every judge)."""
    wanted = settings.headline.get(kind, [])
    return metric in wanted or (JUDGE in wanted and source != TRADITIONAL)


def metric_label(metric: str, source: str) -> str:
    return f"{metric} judge" if source != TRADITIONAL else metric_registry.label(metric)


def metric_order(metric: str, source: str) -> tuple:
    if source != TRADITIONAL:
        return (0, metric)
    keys = [column.key for column in metric_registry.columns()]
    return (1, keys.index(metric) if metric in keys else len(keys), metric)


class ScoreReader:
    """Reads each run's metrics once; an unreadable file is recorded as a problem instead of stopping the report.

    A metrics file that scored other answers than its folder's test_results.json holds now is not used and is
    listed in `stale`; one that does not record which answers it scored is used and listed in `unverified`
    (docs/evaluation.md#which-answers-a-metrics-file-scored). With `stale_answers`, a run whose answers are to
    an older version of its split file is not used either (listed with its test_results.json)."""

    def __init__(self, stale_answers: Callable[[Run], str | None] | None = None) -> None:
        # stale_answers(run): why a run's answers are not of its split file as it is now (None: they are)
        self.stale_answers = stale_answers
        self.cache: dict[Path, RunScores] = {}
        self.problems: list[tuple[Path, str]] = []
        self.stale: list[tuple[Path, str]] = []
        self.unverified: list[tuple[Path, str]] = []
        self.images: dict[Path, dict[str, str]] = {}

    def image_of(self, run: Run | None) -> dict[str, str]:
        """qid -> the image it asks about (`img_name` of test_results.json): the report's unit of resampling
        (docs/method.md#statistics-of-the-report). A row without one is a cluster of its own."""
        if run is None:
            return {}
        if run.path not in self.images:
            try:
                rows = read_json(run.path / naming.TEST_RESULTS_FILE)
            except DataError:
                rows = []
            self.images[run.path] = {str(row["qid"]): str(row["img_name"]) for row in rows if isinstance(row, dict)
                                     and "qid" in row and row.get("img_name") not in (None, "")}
        return self.images[run.path]

    def __call__(self, run: Run | None) -> RunScores | None:
        if run is None:
            return None
        if run.path not in self.cache:
            answers_stale = self.stale_answers(run) if self.stale_answers is not None else None
            try:
                # every metric of a folder whose answers are to other questions is left out unread
                self.cache[run.path] = (read_run(run.path) if answers_stale is None else
                                        RunScores(stale={naming.TEST_RESULTS_FILE: answers_stale}))
            except DataError as err:
                self.problems.append((run.path, str(err)))
                self.cache[run.path] = RunScores()
            scores = self.cache[run.path]
            self.stale += [(run.path / name, reason) for name, reason in scores.stale.items()]
            self.unverified += [(run.path / name, reason) for name, reason in scores.unverified.items()]
        return self.cache[run.path]


def _seed_order(seed: int | None) -> tuple:
    return (seed is None, seed or 0)


def metrics_of(seed_runs: SeedRuns, read: ScoreReader) -> dict[tuple[str, str], str]:
    """(answer kind, metric) -> source, over every run of a variant."""
    found: dict[tuple[str, str], str] = {}
    for runs in seed_runs.values():
        for run in runs.values():
            scores = read(run)
            for key, value in (scores.metrics.items() if scores else ()):
                found.setdefault(key, value.source)
    return found


def _fmt_seeds(seeds: Sequence[int | None]) -> str:
    return ",".join("-" if s is None else str(s) for s in seeds)


def _variant_rows(shift: Shift, variant: Variant, seed_runs: SeedRuns, read: ScoreReader,
                  settings: ReportSettings) -> list[dict[str, Any]]:
    rows = []
    seeds = sorted(seed_runs, key=_seed_order)
    for (kind, metric), source in metrics_of(seed_runs, read).items():
        iid_means, ood_means, ratios = [], [], []
        iid_questions: list[dict[str, float]] = []
        ood_questions: list[dict[str, float]] = []
        images: dict[str, dict[str, str]] = {"iid": {}, "ood": {}}
        unscored = {"iid": 0, "ood": 0}
        versions: set[str] = set()
        for seed in seeds:
            per_split: dict[str, MetricScores | None] = {}
            for split in ("iid", "ood"):
                scores = read(seed_runs[seed].get(split))
                per_split[split] = scores.metrics.get((kind, metric)) if scores else None
                images[split].update(read.image_of(seed_runs[seed].get(split)))
                if per_split[split] is not None:
                    unscored[split] += per_split[split].unscored
                    if per_split[split].version:
                        versions.add(per_split[split].version)
            iid, ood = per_split["iid"], per_split["ood"]
            iid_means.append(iid.mean if iid else None)
            ood_means.append(ood.mean if ood else None)
            ratios.append(stats.relative_robustness(iid.mean if iid else None, ood.mean if ood else None))
            if iid is not None:
                iid_questions.append(iid.per_question)
            if ood is not None:
                ood_questions.append(ood.per_question)
        iid_summary, ood_summary, rr = (stats.summarise(v) for v in (iid_means, ood_means, ratios))
        iid_q = stats.clusters_of(stats.question_mean_scores(iid_questions), images["iid"])
        ood_q = stats.clusters_of(stats.question_mean_scores(ood_questions), images["ood"])
        interval = stats.cluster_bootstrap_difference(iid_q, ood_q, settings.bootstrap_seed, settings.n_resamples,
                                                      settings.confidence)
        is_judge = source != TRADITIONAL
        rows.append({
            "dataset": shift.dataset, "data_shift": shift.data_shift, "ood_value": shift.ood_value,
            "mod": shift.mod, "shift": shift.label, "role": variant.role, "label": variant.label,
            "method": variant.method, "kind": variant.kind, "train_images": variant.train_images,
            "condition": variant.condition, "swap": variant.swap, "baseline_kind": variant.baseline_kind,
            "answer_kind": kind, "metric": metric, "source": source, "metric_label": metric_label(metric, source),
            "seeds": _fmt_seeds(seeds),
            "iid_mean": iid_summary.mean, "iid_std": iid_summary.std, "iid_n": iid_summary.n,
            "ood_mean": ood_summary.mean, "ood_std": ood_summary.std, "ood_n": ood_summary.n,
            "rr_mean": rr.mean, "rr_std": rr.std, "rr_n": rr.n,
            "diff_mean": iid_summary.mean - ood_summary.mean,
            "diff_ci_low": interval.low, "diff_ci_high": interval.high,
            "iid_questions": int(iid_q.counts.sum()), "ood_questions": int(ood_q.counts.sum()),
            "iid_images": iid_q.n_clusters, "ood_images": ood_q.n_clusters,
            "mdd": stats.minimum_detectable_difference(iid_q, ood_q),
            "judge_failures_iid": unscored["iid"] if is_judge else math.nan,
            "judge_failures_ood": unscored["ood"] if is_judge else math.nan,
            "undefined_iid": math.nan if is_judge else unscored["iid"],
            "undefined_ood": math.nan if is_judge else unscored["ood"],
            "judge_version": "; ".join(sorted(versions)) if versions else None,
            "_order": (variant.sort_key(), ANSWER_KINDS.index(kind), metric_order(metric, source)),
        })
    return rows


SUMMARY_COLUMNS = [
    "dataset", "data_shift", "ood_value", "mod", "shift", "role", "label", "method", "kind", "train_images",
    "condition", "swap", "baseline_kind", "answer_kind", "metric", "source", "metric_label", "seeds",
    "iid_mean", "iid_std", "iid_n", "ood_mean", "ood_std", "ood_n", "rr_mean", "rr_std", "rr_n", "diff_mean",
    "diff_ci_low", "diff_ci_high", "iid_questions", "ood_questions", "iid_images", "ood_images", "mdd",
    "judge_failures_iid", "judge_failures_ood",
    "undefined_iid", "undefined_ood", "judge_version",
]


def summary_table(shifts: Mapping[Shift, ShiftRuns], read: ScoreReader, settings: ReportSettings) -> pd.DataFrame:
    """One row per shift × variant × answer kind × metric: iid, ood, RR (mean ± std over seeds), iid − ood with
    its bootstrap interval, question counts and judge failures."""
    rows = []
    for shift, found in shifts.items():
        shift_rows = []
        for variant, seed_runs in found.clean.items():
            shift_rows += _variant_rows(shift, variant, seed_runs, read, settings)
        rows += sorted(shift_rows, key=lambda r: r["_order"])
    frame = pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, "_order"])
    return frame.drop(columns="_order").reset_index(drop=True)


CORRUPTION_COLUMNS = [
    "dataset", "data_shift", "ood_value", "mod", "shift", "label", "method", "train_images", "strength",
    "order", "p_blur", "p_brightness", "p_noise", "blur", "brightness", "noise", "split", "answer_kind", "metric",
    "source", "metric_label", "mean", "std", "n_seeds", "seeds",
]


def _setting_rows(shift: Shift, variant: Variant, key: CorruptionSetting | None, seed_runs: SeedRuns,
                  read: ScoreReader) -> list[dict[str, Any]]:
    rows = []
    seeds = sorted(seed_runs, key=_seed_order)
    probabilities, strengths = ({}, {}) if key is None else key.as_maps()
    for (kind, metric), source in metrics_of(seed_runs, read).items():
        for split in ("iid", "ood"):
            values = []
            for seed in seeds:
                scores = read(seed_runs[seed].get(split))
                metric_scores = scores.metrics.get((kind, metric)) if scores else None
                values.append(metric_scores.mean if metric_scores else None)
            summary = stats.summarise(values)
            if summary.n == 0:
                continue
            rows.append({
                "dataset": shift.dataset, "data_shift": shift.data_shift, "ood_value": shift.ood_value,
                "mod": shift.mod, "shift": shift.label, "label": variant.label, "method": variant.method,
                "train_images": variant.train_images, "strength": "none" if key is None else key.label,
                "order": corruption_order(key)[0],
                **{f"p_{name}": probabilities.get(name, math.nan) for name in ("blur", "brightness", "noise")},
                **{name: strengths.get(name) for name in ("blur", "brightness", "noise")},
                "split": split, "answer_kind": kind, "metric": metric, "source": source,
                "metric_label": metric_label(metric, source), "mean": summary.mean, "std": summary.std,
                "n_seeds": summary.n, "seeds": _fmt_seeds(seeds),
                "_order": (variant.sort_key(), corruption_order(key), ANSWER_KINDS.index(kind),
                           metric_order(metric, source), split),
            })
    return rows


def corruption_table(shifts: Mapping[Shift, ShiftRuns], read: ScoreReader) -> pd.DataFrame:
    """Scores by corruption setting, with the clean run of the same model as strength `none`."""
    rows = []
    for shift, found in shifts.items():
        shift_rows = []
        variants = {variant for variant, _ in found.corrupted}
        for variant in variants:
            if variant in found.clean:
                shift_rows += _setting_rows(shift, variant, None, found.clean[variant], read)
        for (variant, key), seed_runs in found.corrupted.items():
            shift_rows += _setting_rows(shift, variant, key, seed_runs, read)
        rows += sorted(shift_rows, key=lambda r: r["_order"])
    frame = pd.DataFrame(rows, columns=[*CORRUPTION_COLUMNS, "_order"])
    return frame.drop(columns="_order").reset_index(drop=True)


MISSING_COLUMNS = ["dataset", "shift", "what", "seed", "split", "run", "path", "reason"]


STALE_METRICS, UNVERIFIED_METRICS = "stale metrics (not used)", "unverified metrics (used)"


def missing_table(missing: Sequence[Any], problems: Sequence[tuple[Path, str]],
                  unplaced: Sequence[tuple[Path, str]], stale: Sequence[tuple[Path, str]] = (),
                  unverified: Sequence[tuple[Path, str]] = ()) -> pd.DataFrame:
    """Missing or incomplete runs, unreadable metrics files, metrics files of other answers (stale) or of
    unrecorded ones (unverified), and folders that could not be placed."""
    rows = [m.row() for m in missing]
    rows += [{"dataset": None, "shift": None, "what": "unreadable metrics", "seed": None, "split": None,
              "run": path.name, "path": str(path), "reason": reason} for path, reason in problems]
    rows += [{"dataset": None, "shift": None, "what": what, "seed": None, "split": None,
              "run": path.parent.name, "path": str(path), "reason": reason}
             for what, found in ((STALE_METRICS, stale), (UNVERIFIED_METRICS, unverified)) for path, reason in found]
    rows += [{"dataset": None, "shift": None, "what": "not used", "seed": None, "split": None, "run": path.name,
              "path": str(path), "reason": reason} for path, reason in unplaced]
    frame = pd.DataFrame(rows, columns=MISSING_COLUMNS)
    frame["seed"] = frame["seed"].astype("Int64")
    return frame

