"""The evaluation stage (run_eval.py): scores an eval folder's test_results.json with traditional metrics and an
LLM judge, writing the files of docs/method.md#experiment-folders beside it.

The settings are checked once into `EvaluationSettings` (sure_vqa.evaluate.settings). The folder comes from the
same settings as inference or from `eval_dir=PATH` (any folder holding a test_results.json, those written by the
original SURE-VQA code included). Closed questions need their answer categories: a row's `answer_categories` (written by inference), else the dataset's split records looked up
by qid, else (`dataset=null`) yes/no taken from the ground truth itself. Every file is written atomically; the
judge's replies are cached (`naming.judge_cache_file`), so a rerun asks the judge nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sure_vqa import eval_folder, graceful_stop, naming, system_errors
from sure_vqa.atomic_io import file_sha256
from sure_vqa.config import ConfigError, DataError
from sure_vqa.evaluate.metrics.traditional import score_closed_rows, score_open_rows, yes_no_categories
from sure_vqa.evaluate.settings import CategorySplit, EvaluationSettings
from sure_vqa.run_lock import run_lock

if TYPE_CHECKING:
    from sure_vqa.evaluate.judge.registry import JudgeSettings

log = logging.getLogger(__name__)

# Where a closed row's categories came from (counted in closed_ended_metrics.json).
FROM_ROW, FROM_DATASET, FROM_GROUND_TRUTH = "test_results", "dataset", "ground_truth_yes_no"
LOCK_STAGE = "evaluation"


@dataclass
class EvaluationResult:
    """The files written and, when the judge ran, how many replies it was asked for (0 on a cached rerun)."""

    eval_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    judge_asked: int = 0
    judge_cached: int = 0
    judge_shortcut: int = 0


# --- categories of closed questions --------------------------------------------------------------


def closed_categories(
    source: CategorySplit | None, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[list[str] | None], dict[str, int]]:
    """Each closed row's categories, and how many came from each source."""
    lookup: dict[str, list[str] | None] | None = None
    categories: list[list[str] | None] = []
    sources: Counter[str] = Counter()
    for row in rows:
        if row.get("answer_categories"):
            categories.append([str(c) for c in row["answer_categories"]])
            sources[FROM_ROW] += 1
            continue
        if source is not None:
            if lookup is None:
                lookup = {record.qid: record.categories for record in source.records()}
            if row["qid"] not in lookup:
                raise DataError(
                    f"qid {row['qid']!r} of test_results.json is not in the test split "
                    f"{source.test_split_name}; set the split settings of that run, or dataset=null to take "
                    "yes/no categories from the ground truth"
                )
            if lookup[row["qid"]]:
                categories.append(list(lookup[row["qid"]] or []))
                sources[FROM_DATASET] += 1
                continue
        categories.append(yes_no_categories(row["gt"]))
        sources[FROM_GROUND_TRUTH] += 1
    return categories, dict(sources)


# --- the stage -----------------------------------------------------------------------------------


def _prompt_versions(prompts: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The prompt versions recorded in the open and in the closed judge file (closed: its two rubrics)."""
    from sure_vqa.evaluate.judge import rubrics

    return prompts[rubrics.OPEN].id, [prompts[kind].id for kind in rubrics.CLOSED_RUBRICS]


def judge_files_to_replace(settings: JudgeSettings, folder: Path, judge_open: bool, judge_closed: bool,
                           overwrite: bool) -> list[Path]:
    """The judge files of `folder` that were scored with other judge settings (identity or prompt version).

    As inference treats a changed fingerprint: without `overwrite` such a file is an error that says what
    differs and the two ways on; with it, the files are returned to be kept as backups before they are replaced.
    """
    open_version, closed_versions = _prompt_versions(settings.prompts())
    open_file, closed_file = naming.judge_metrics_files(settings.name)
    wanted = []
    if judge_open:
        wanted.append((folder / open_file, open_version))
    if judge_closed:
        wanted.append((folder / closed_file, closed_versions))
    differing = []
    for path, prompt_version in wanted:
        if not path.is_file():
            continue
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))[0]
            before = (summary["judge_identity"], summary["prompt_version"])
        except (ValueError, LookupError, TypeError):
            before = None
        now = (settings.identity, prompt_version)
        if before == now:
            continue
        if not overwrite:
            was = (f"{before[0]!r} with prompt {before[1]}" if before else
                   "a judge whose identity it does not record (another program's file?)")
            raise ConfigError(
                f"{path} was scored by {was}; these settings give {now[0]!r} with prompt {now[1]}. To keep both, "
                f"set another judge.name (it names the files); to replace it, set overwrite_judge_files=true (the "
                "previous file is kept as a .bak beside it)"
            )
        differing.append(path)
    return differing


def run_evaluation(cfg: Mapping[str, Any]) -> EvaluationResult:
    """Scores one eval folder; every setting is checked before any file is read or any model loads."""
    return evaluate(EvaluationSettings.from_config(cfg))


def scored_with(settings: EvaluationSettings, file_kind: str) -> dict[str, Any]:
    """What decides a metrics file's scores besides the answers (recorded in it as `scored_with`): the extra
    open metrics for the open traditional file, the judge's identity, prompt, mode and agreement for a judge file."""
    if file_kind == "open":
        return {"extra_metrics": [metric.name for metric in settings.extras]}
    if file_kind == "closed":
        return {}
    judge = settings.judge
    assert judge is not None
    open_version, closed_versions = _prompt_versions(judge.prompts())
    return {"judge_identity": judge.identity, "prompt_version": open_version if file_kind == "judge_open" else
            closed_versions, "mode": judge.mode, "agreement": judge.agreement}


def _requested_files(settings: EvaluationSettings) -> dict[str, str]:
    """file kind -> file name of every metrics file these settings write."""
    files = {}
    if settings.traditional:
        files.update(open=naming.OPEN_METRICS_FILE, closed=naming.CLOSED_METRICS_FILE)
    open_file, closed_file = naming.judge_metrics_files(settings.judge_name)
    if settings.judge_open:
        files["judge_open"] = open_file
    if settings.judge_closed:
        files["judge_closed"] = closed_file
    return files


def outdated_files(settings: EvaluationSettings) -> dict[str, str]:
    """file name -> why it must be (re)computed, for every metrics file these settings write that is missing,
    scored other answers than the folder's test_results.json now holds, does not record which (unverified), or
    was scored with other settings. Empty: the folder's metrics are current and evaluation can be skipped."""
    current = eval_folder.results_sha256(settings.eval_dir)
    outdated = {}
    for kind, name in _requested_files(settings).items():
        path = settings.eval_dir / name
        if not path.is_file():
            outdated[name] = "missing"
            continue
        try:
            averages = eval_folder.load_metrics_file(path)[0]  # read once: its source and its settings
        except DataError as err:
            outdated[name] = str(err)
            continue
        recorded = averages.get(eval_folder.SOURCE_KEY)
        found = eval_folder.provenance_of(recorded if isinstance(recorded, str) else None, current)
        if found.status != eval_folder.CURRENT:
            outdated[name] = found.reason
        elif averages.get(eval_folder.SETTINGS_KEY) != scored_with(settings, kind):
            outdated[name] = "scored with other settings"
    return outdated


def evaluate(settings: EvaluationSettings) -> EvaluationResult:
    folder = settings.eval_dir
    results_file = folder / naming.TEST_RESULTS_FILE
    if not results_file.is_file():
        how = ("eval_dir" if settings.explicit_dir else
               "the eval folder of these settings (dataset, shift, split, model_type, seed, no_image, corruption)")
        raise ConfigError(f"{results_file} does not exist ({how}); run inference.py with the same settings first, "
                          "or point eval_dir=PATH at a folder that holds test_results.json")
    with system_errors.writing_to(folder), graceful_stop.stoppable(), \
            run_lock(folder, LOCK_STAGE, wait=settings.wait_for_lock):
        return _evaluate(settings, results_file)


def _evaluate(settings: EvaluationSettings, results_file: Path) -> EvaluationResult:
    folder, judge = settings.eval_dir, settings.judge
    source = file_sha256(results_file)  # recorded in every metrics file written below
    rows = eval_folder.read_test_results(results_file)
    if file_sha256(results_file) != source:
        raise DataError(f"{results_file} changed while it was being read (is inference still writing it?); "
                        "rerun when it is finished")
    replaced: list[Path] = []
    if judge is not None:  # before anything is written: a changed judge must not replace a file silently
        replaced = judge_files_to_replace(judge, folder, settings.judge_open, settings.judge_closed,
                                          settings.overwrite_judge_files)
    open_rows = [row for row in rows if row["answer_type"] == "OPEN"]
    closed_rows = [row for row in rows if row["answer_type"] == "CLOSED"]
    categories, sources = [], {}
    if settings.traditional or settings.judge_closed:
        categories, sources = closed_categories(settings.categories_from, closed_rows)
    result = EvaluationResult(eval_dir=folder)
    log.info("evaluating %s: %d open and %d closed questions", results_file, len(open_rows), len(closed_rows))

    if settings.traditional:
        open_results = score_open_rows(open_rows, [metric.name for metric in settings.extras])
        closed_results = score_closed_rows(closed_rows, categories)
        closed_results[0]["categories_source"] = sources
        result.files["open"] = eval_folder.write_metrics_file(
            folder / naming.OPEN_METRICS_FILE, {**open_results[0], eval_folder.SETTINGS_KEY: scored_with(settings, "open")},
            open_results[1:], source)
        result.files["closed"] = eval_folder.write_metrics_file(
            folder / naming.CLOSED_METRICS_FILE, {**closed_results[0], eval_folder.SETTINGS_KEY: scored_with(settings, "closed")},
            closed_results[1:], source)
        graceful_stop.check("the traditional metrics files are written; rerun the same command for the judge")

    if judge is not None:
        for path in replaced:
            backup = naming.backup_file(path, time.strftime("%Y%m%dT%H%M%S"))
            shutil.copy2(path, backup)
            log.warning("%s was scored with other judge settings; kept as %s", path.name, backup.name)
        _run_judge(judge, settings.judge_cache_root or folder, folder,
                   open_rows if settings.judge_open else None,
                   closed_rows if settings.judge_closed else None, categories, result,
                   {kind: {eval_folder.SETTINGS_KEY: scored_with(settings, kind)} for kind in ("judge_open", "judge_closed")},
                   source)
    for path in result.files.values():
        log.info("wrote %s", path)
    return result


def _run_judge(
    settings: JudgeSettings,
    cache_root: Path,
    folder: Path,
    open_rows: Sequence[dict[str, Any]] | None,
    closed_rows: Sequence[dict[str, Any]] | None,
    categories: Sequence[list[str] | None],
    result: EvaluationResult,
    recorded: Mapping[str, Mapping[str, Any]],
    source: str,
) -> None:
    from sure_vqa.evaluate.judge import rubrics
    from sure_vqa.evaluate.judge.agreement import agreement
    from sure_vqa.evaluate.judge.cache import JudgeCache
    from sure_vqa.evaluate.judge.registry import build_backend
    from sure_vqa.evaluate.judge.scoring import (
        SCORE,
        JudgeItem,
        JudgeRunStats,
        generate_mode_scores,
        score_items,
        summarize,
    )

    prompts = settings.prompts()
    identity = settings.identity
    stats = JudgeRunStats()
    backend: list[Any] = []  # built at most once, and only when some reply is not cached

    def backend_factory() -> Any:
        if not backend:
            backend.append(build_backend(settings))
        return backend[0]

    def items(rows: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> list[JudgeItem]:
        return [JudgeItem(r["qid"], r["question"], r["gt"], r["pred"], r["answer_type"], kind)
                for r, kind in zip(rows, kinds, strict=True)]

    def judge(judged: list[JudgeItem], cache: JudgeCache,
              prompt_version: str | list[str]) -> tuple[list[Any], dict, list[float | None] | None]:
        """Judgments, the file's summary, and generate mode's scores when score mode's agreement is measured."""
        generated = None
        judgments = score_items(judged, prompts, identity, cache, backend_factory, settings.batch_size, stats,
                                settings.mode)
        summary = summarize(judgments, settings.name, identity, prompt_version, settings.mode)
        if settings.mode == SCORE and settings.agreement != "off":
            generated = generate_mode_scores(judged, prompts, settings.generate_identity, cache,
                                             backend_factory if settings.agreement == "ask" else None,
                                             settings.batch_size, stats)
            scored = [None if j.shortcut else j.score for j in judgments]
            scale = sorted({v for item in judged for v in prompts[item.rubric].rubric.scale})
            summary["agreement"] = {"with": settings.generate_identity, "source": settings.agreement,
                                    **agreement(scored, generated, scale)}
            log.info("judge agreement with generate mode: %s", summary["agreement"])
        return judgments, summary, generated

    def file_rows(rows: Sequence[Mapping[str, Any]], judgments: Sequence[Any],
                  generated: Sequence[float | None] | None) -> list[dict[str, Any]]:
        out = [{**row, **j.to_json()} for row, j in zip(rows, judgments, strict=True)]
        for row, score in zip(out, generated or (), strict=False):  # beside each row: the report pools them
            row["generate_score"] = score
        return out

    open_file, closed_file = naming.judge_metrics_files(settings.name)
    cache_path = naming.judge_cache_file(cache_root)
    try:
        with JudgeCache(cache_path) as cache:
            if open_rows is not None:
                judgments, summary, generated = judge(items(open_rows, [rubrics.OPEN] * len(open_rows)), cache,
                                                      _prompt_versions(prompts)[0])
                result.files["judge_open"] = eval_folder.write_metrics_file(
                    folder / open_file, {**summary, **recorded["judge_open"]},
                    file_rows(open_rows, judgments, generated), source)
            if closed_rows is not None:
                kinds = [rubrics.route(r["answer_type"], c) for r, c in zip(closed_rows, categories, strict=True)]
                judgments, summary, generated = judge(items(closed_rows, kinds), cache, _prompt_versions(prompts)[1])
                summary["by_rubric"] = {
                    kind: summarize([j for j in judgments if j.rubric == kind], settings.name, identity,
                                    prompts[kind].id, settings.mode)
                    for kind in rubrics.CLOSED_RUBRICS
                }
                rows_out = file_rows(closed_rows, judgments, generated)
                for row, row_categories in zip(rows_out, categories, strict=True):
                    row["categories"] = row_categories
                result.files["judge_closed"] = eval_folder.write_metrics_file(
                    folder / closed_file, {**summary, **recorded["judge_closed"]}, rows_out, source)
    finally:
        if backend and hasattr(backend[0], "close"):
            backend[0].close()
    result.judge_asked, result.judge_cached, result.judge_shortcut = stats.asked, stats.cached, stats.shortcut
    log.info("judge %s: asked %d, from cache %d, shortcut %d (cache %s)", identity, stats.asked, stats.cached,
             stats.shortcut, cache_path)
