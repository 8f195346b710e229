"""The evaluation stage (run_eval.py): scores an eval folder's test_results.json with traditional metrics and an
LLM judge, writing the files of docs/method.md#experiment-folders beside it.

The folder comes from the same settings as inference (`runs.eval_dir`) or from `eval_dir=PATH` (any folder
holding a test_results.json, those written by the original SURE-VQA code included). Closed questions need their
answer categories: a row's `answer_categories` (written by inference), else the dataset's split records looked up
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

from sure_vqa import eval_folder, naming, runs
from sure_vqa.config import ConfigError, DataError, check_flag
from sure_vqa.evaluate.metrics.registry import check_extra_metrics
from sure_vqa.evaluate.metrics.traditional import score_closed_rows, score_open_rows, yes_no_categories
from sure_vqa.run_lock import run_lock

if TYPE_CHECKING:
    from sure_vqa.evaluate.judge.registry import JudgeSettings

log = logging.getLogger(__name__)

TRADITIONAL = "traditional_metrics"
CLOSED_SUFFIX = "_closed"
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


# --- settings ------------------------------------------------------------------------------------


def judge_name(cfg: Mapping[str, Any]) -> str:
    judge = cfg.get("judge") or {}
    return str(judge.get("name", "gemma"))


def check_metric_types(cfg: Mapping[str, Any]) -> list[str]:
    """metric_type ⊆ {traditional_metrics, <judge>, <judge>_closed}; a single string is accepted too."""
    raw = cfg.get("metric_type")
    requested = [raw] if isinstance(raw, str) else list(raw or [])
    name = judge_name(cfg)
    valid = (TRADITIONAL, name, name + CLOSED_SUFFIX)
    if not requested:
        raise ConfigError(f"metric_type is empty; choose from: {', '.join(valid)}")
    for metric in requested:
        if metric not in valid:
            raise ConfigError(
                f"metric_type contains {metric!r}; valid values: {', '.join(valid)} (the judge is "
                f"judge.name={name}; another judge is chosen with judge=<config name>, e.g. judge=smollm2)"
            )
    return list(dict.fromkeys(requested))


def judge_cache_root(cfg: Mapping[str, Any], folder: Path) -> Path:
    """The experiment root when one is configured, else the eval folder itself (eval_dir=PATH alone)."""
    root = (cfg.get("paths") or {}).get("experiment_root")
    if root not in (None, "", "null", "???"):
        return Path(str(root)).expanduser()
    return folder


# --- categories of closed questions --------------------------------------------------------------


def _dataset_categories(cfg: Mapping[str, Any]) -> dict[str, list[str] | None]:
    """qid -> categories of the configured test split (docs/method.md#datasets derives them for every dataset)."""
    from sure_vqa.data.splits import split_records

    hint = "or set dataset=null to take yes/no categories from the ground truth"
    try:
        dataset_root = runs.dataset_root(cfg)
    except ConfigError as err:
        raise ConfigError(f"{err}; the closed questions' categories come from the dataset's split ({hint})") from None
    split = cfg.get("split", "iid")
    data_shift, ood_value = runs.shift_of(cfg, split)
    records = split_records(dataset_root, str(cfg["dataset"]), cfg.get("mod", "test"), split, data_shift, ood_value)
    return {record.qid: record.categories for record in records}


def closed_categories(
    cfg: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
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
        if cfg.get("dataset") not in (None, "", "null"):
            if lookup is None:
                lookup = _dataset_categories(cfg)
            if row["qid"] not in lookup:
                raise DataError(
                    f"qid {row['qid']!r} of test_results.json is not in the test split "
                    f"{runs.test_split_name(cfg)}; set the split settings of that run, or dataset=null to take "
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
    metric_types = check_metric_types(cfg)
    name = judge_name(cfg)
    judge_open, judge_closed = name in metric_types, name + CLOSED_SUFFIX in metric_types
    overwrite, wait = check_flag(cfg, "overwrite_judge_files"), check_flag(cfg, "wait_for_lock")
    extras = check_extra_metrics(cfg.get("extra_metrics"))
    settings = None
    if judge_open or judge_closed:
        from sure_vqa.evaluate.judge.registry import check_judge_config

        settings = check_judge_config(cfg.get("judge"))

    if not cfg.get("eval_dir") and cfg.get("dataset") in (None, "", "null"):
        raise ConfigError("dataset is null, so the eval folder cannot be found from the settings; set dataset (and "
                          "the other inference settings) or eval_dir=PATH")
    folder = runs.eval_dir(cfg)
    results_file = folder / naming.TEST_RESULTS_FILE
    if not results_file.is_file():
        how = ("eval_dir" if cfg.get("eval_dir") else
               "the eval folder of these settings (dataset, shift, split, model_type, seed, no_image, corruption)")
        raise ConfigError(f"{results_file} does not exist ({how}); run inference.py with the same settings first, "
                          "or point eval_dir=PATH at a folder that holds test_results.json")
    with run_lock(folder, LOCK_STAGE, wait=wait):
        return _evaluate(cfg, folder, results_file, metric_types, settings, extras, overwrite)


def _evaluate(cfg: Mapping[str, Any], folder: Path, results_file: Path, metric_types: Sequence[str],
              settings: JudgeSettings | None, extras: Sequence[str], overwrite_judge_files: bool) -> EvaluationResult:
    name = judge_name(cfg)
    judge_open, judge_closed = name in metric_types, name + CLOSED_SUFFIX in metric_types
    rows = eval_folder.read_test_results(results_file)
    replaced: list[Path] = []
    if settings is not None:  # before anything is written: a changed judge must not replace a file silently
        replaced = judge_files_to_replace(settings, folder, judge_open, judge_closed, overwrite_judge_files)
    open_rows = [row for row in rows if row["answer_type"] == "OPEN"]
    closed_rows = [row for row in rows if row["answer_type"] == "CLOSED"]
    categories, sources = [], {}
    if TRADITIONAL in metric_types or judge_closed:
        categories, sources = closed_categories(cfg, closed_rows)
    result = EvaluationResult(eval_dir=folder)
    log.info("evaluating %s: %d open and %d closed questions", results_file, len(open_rows), len(closed_rows))

    if TRADITIONAL in metric_types:
        open_results = score_open_rows(open_rows, [metric.name for metric in extras])
        closed_results = score_closed_rows(closed_rows, categories)
        closed_results[0]["categories_source"] = sources
        result.files["open"] = eval_folder.write_metrics_file(folder / naming.OPEN_METRICS_FILE, open_results[0],
                                                              open_results[1:])
        result.files["closed"] = eval_folder.write_metrics_file(folder / naming.CLOSED_METRICS_FILE,
                                                                closed_results[0], closed_results[1:])

    if settings is not None:
        for path in replaced:
            backup = naming.backup_file(path, time.strftime("%Y%m%dT%H%M%S"))
            shutil.copy2(path, backup)
            log.warning("%s was scored with other judge settings; kept as %s", path.name, backup.name)
        _run_judge(settings, cfg, folder, open_rows if judge_open else None,
                   closed_rows if judge_closed else None, categories, result)
    for path in result.files.values():
        log.info("wrote %s", path)
    return result


def _run_judge(
    settings: JudgeSettings,
    cfg: Mapping[str, Any],
    folder: Path,
    open_rows: Sequence[dict[str, Any]] | None,
    closed_rows: Sequence[dict[str, Any]] | None,
    categories: Sequence[list[str] | None],
    result: EvaluationResult,
) -> None:
    from sure_vqa.evaluate.judge import rubrics
    from sure_vqa.evaluate.judge.cache import JudgeCache
    from sure_vqa.evaluate.judge.registry import build_backend
    from sure_vqa.evaluate.judge.scoring import JudgeItem, JudgeRunStats, score_items, summarize

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

    def file_rows(rows: Sequence[Mapping[str, Any]], judgments: Sequence[Any]) -> list[dict[str, Any]]:
        return [{**row, **j.to_json()} for row, j in zip(rows, judgments, strict=True)]

    open_file, closed_file = naming.judge_metrics_files(settings.name)
    cache_path = naming.judge_cache_file(judge_cache_root(cfg, folder))
    try:
        with JudgeCache(cache_path) as cache:
            if open_rows is not None:
                judgments = score_items(items(open_rows, [rubrics.OPEN] * len(open_rows)), prompts, identity, cache,
                                        backend_factory, settings.batch_size, stats)
                summary = summarize(judgments, settings.name, identity, _prompt_versions(prompts)[0])
                result.files["judge_open"] = eval_folder.write_metrics_file(folder / open_file, summary,
                                                                            file_rows(open_rows, judgments))
            if closed_rows is not None:
                kinds = [rubrics.route(r["answer_type"], c) for r, c in zip(closed_rows, categories, strict=True)]
                judgments = score_items(items(closed_rows, kinds), prompts, identity, cache, backend_factory,
                                        settings.batch_size, stats)
                summary = summarize(judgments, settings.name, identity, _prompt_versions(prompts)[1])
                summary["by_rubric"] = {
                    kind: summarize([j for j in judgments if j.rubric == kind], settings.name, identity,
                                    prompts[kind].id)
                    for kind in rubrics.CLOSED_RUBRICS
                }
                rows_out = file_rows(closed_rows, judgments)
                for row, row_categories in zip(rows_out, categories, strict=True):
                    row["categories"] = row_categories
                result.files["judge_closed"] = eval_folder.write_metrics_file(folder / closed_file, summary, rows_out)
    finally:
        if backend and hasattr(backend[0], "close"):
            backend[0].close()
    result.judge_asked, result.judge_cached, result.judge_shortcut = stats.asked, stats.cached, stats.shortcut
    log.info("judge %s: asked %d, from cache %d, shortcut %d (cache %s)", identity, stats.asked, stats.cached,
             stats.shortcut, cache_path)
