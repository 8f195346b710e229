"""The report from an experiment root: scan → group → tables → plots → CSV, Markdown and HTML."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sure_vqa import naming
from sure_vqa.config import ConfigError, is_unset
from sure_vqa.eval_folder import CLOSED, OPEN
from sure_vqa.study.report import plots, render
from sure_vqa.study.report.comparisons import (
    comparison_table,
    concordance_display,
    concordance_table,
    not_answerable,
)
from sure_vqa.study.report.dependence import image_dependence
from sure_vqa.study.report.findings import findings
from sure_vqa.study.report.grid import group
from sure_vqa.study.report.missing import missing_runs
from sure_vqa.study.report.scan import scan
from sure_vqa.study.report.subgroups import SplitRecords, subgroup_table
from sure_vqa.study.report.tables import (
    ReportSettings,
    ScoreReader,
    corruption_table,
    missing_table,
    summary_table,
)

log = logging.getLogger(__name__)
SETTING_KEYS = ("n_resamples", "confidence", "bootstrap_seed", "swaps", "headline", "subgroup_min_questions")


def settings_from_config(cfg: Mapping[str, Any]) -> ReportSettings:
    """ReportSettings from a config node such as config/study/report.yaml (plain containers)."""
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return ReportSettings(**{key: plain[key] for key in SETTING_KEYS if key in plain and plain[key] is not None})


def judge_agreement(runs: Sequence[Any], read: ScoreReader) -> str:
    """Score mode's agreement with generate mode, pooled over every run's rows that both modes scored, per judge
    and answer kind (docs/evaluation.md#score-mode); empty when no judge file records generate mode's scores."""
    from sure_vqa.evaluate.judge.agreement import agreement
    from sure_vqa.evaluate.judge.rubrics import CLOSED_RUBRICS, RUBRICS
    from sure_vqa.evaluate.judge.rubrics import OPEN as OPEN_RUBRIC

    scales = {OPEN: RUBRICS[OPEN_RUBRIC].scale,
              CLOSED: tuple(sorted({v for kind in CLOSED_RUBRICS for v in RUBRICS[kind].scale}))}
    pooled: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in runs:
        scores = read(run)
        for (kind, metric), found in (scores.metrics.items() if scores else ()):
            if found.agreement_pairs:
                pooled.setdefault((metric, kind), []).extend(found.agreement_pairs)
    parts = []
    for (judge, kind), pairs in sorted(pooled.items()):
        measured = agreement([p[0] for p in pairs], [p[1] for p in pairs], scales[kind])
        kappa = measured["kappa_quadratic"]
        parts.append(f"{judge} {kind}: {measured['n_compared']} answers, {measured['share_equal']:.0%} the same score, "
                     f"quadratic κ {'undefined' if kappa is None else f'{kappa:.2f}'}")
    return "; ".join(parts)


def build_report(experiment_root: str | Path, out: str | Path | None = None,
                 settings: ReportSettings | None = None, progress: bool = True,
                 dataset_root: str | Path | None = None) -> render.ReportFiles:
    """Scans `experiment_root` and writes the report to `out` (default `naming.report_dir(root)`); with
    `dataset_root`, the split files give each question its fields for the subgroups."""
    root = Path(experiment_root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"experiment_root={root} is not a folder; set it to the root that holds the model "
                          "folders (EXPERIMENT_ROOT_DIR)")
    settings = settings or ReportSettings()
    out_dir = Path(out).expanduser() if out else naming.report_dir(root)
    found = scan(root, None if is_unset(dataset_root) else dataset_root)
    if not found.runs and not found.models:
        raise ConfigError(f"experiment_root={root} holds no model folders (llava-*, most_frequent-*, "
                          "<dataset>/pretrained): nothing to report")
    shifts = group(found, settings.swaps)
    splits = SplitRecords(Path(dataset_root).expanduser() if not is_unset(dataset_root) else None)
    read = ScoreReader(stale_answers=splits.stale_answers)
    for run in tqdm(found.runs, desc="report: reading runs", unit="run", disable=not progress):
        read(run)
    agreement = judge_agreement(found.runs, read)
    summary = summary_table(shifts, read, settings)
    corruptions = corruption_table(shifts, read)
    missing = missing_table(missing_runs(found, shifts, settings.swaps), read.problems, found.unplaced, read.stale,
                            read.unverified)
    figures: dict[tuple[str, str, str], bytes] = {}
    for shift, rows in summary.groupby("shift", sort=False):
        for kind in (OPEN, CLOSED):
            if (rows["answer_kind"] == kind).any():
                metrics = render.headline_metrics(rows, kind, settings)
                figures[("bars", shift, kind)] = plots.bars_png(
                    rows[rows["answer_kind"] == kind], metrics, f"{shift}: {render.KIND_TITLES[kind]}")
                corrupted = corruptions[(corruptions["shift"] == shift) & (corruptions["answer_kind"] == kind)]
                if not corrupted.empty:
                    figures[("corruption", shift, kind)] = plots.corruption_png(
                        corrupted, metrics, f"{shift}: {render.KIND_TITLES[kind]}, corrupted images")
    dependence_rows = image_dependence(found.runs)
    comparisons = comparison_table(shifts, read, settings)
    subgroups = subgroup_table(shifts, read, settings, splits)
    concordance = concordance_table(summary, settings)
    sections = render.build_sections(summary, corruptions, settings, figures, dependence_rows, comparisons,
                                     subgroups, splits.dataset_root is not None)
    notes = not_answerable(summary)
    shown = concordance_display(concordance)
    stated = findings(summary, comparisons, concordance, dependence_rows, settings, notes)
    header = {
        "experiment root": str(root),
        "model folders": str(len(found.models)),
        "eval runs": str(len(found.runs)),
        "missing or incomplete": str(len(missing)),
        "metrics files of other answers (stale, not used)": str(len(read.stale)),
        "metrics files that do not record their answers (unverified, used)": str(len(read.unverified)),
        "judges": "; ".join(sorted({v for text in summary["judge_version"].dropna() for v in text.split("; ")}))
        or "none found",
        **({"judge agreement, score vs generate mode": agreement} if agreement else {}),
        "generated": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    files = render.write_report(out_dir, summary, corruptions, missing,
                                render.to_markdown(sections, missing, header, settings, shown, notes, stated),
                                render.to_html(sections, missing, header, settings, shown, notes, stated),
                                dependence_rows, comparisons, concordance, subgroups)
    log.info("report: %s (%d rows, %d missing)", files.html, len(summary), len(missing))
    return files


def report_command(cfg: Mapping[str, Any]) -> None:
    """`sure-vqa report` (config/study/report.yaml): writes the report and prints its HTML page."""
    if is_unset(cfg.get("experiment_root")):
        raise ConfigError("experiment_root is not set; pass experiment_root=PATH or set EXPERIMENT_ROOT_DIR")
    files = build_report(cfg["experiment_root"], cfg.get("out"), settings_from_config(cfg),
                         dataset_root=cfg.get("dataset_root"))
    print(files.html)
