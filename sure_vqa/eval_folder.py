"""The eval folder's files, read and written in one place (docs/method.md#experiment-folders).

An eval folder (`{model}/eval/{run}/`) holds `test_results.json` (one row per question, written by inference or
a baseline) and the metrics files: `open_ended_metrics.json`, `closed_ended_metrics.json` and each judge's
`<judge>_metrics.json` / `<judge>_metrics_closed.json`. Every metrics file is a JSON list: element 0 the
averages (`avg_X` for a metric `X`, counts, and `format_version`), then one row per question carrying `X`.

The readers also take the files the original SURE-VQA code wrote: no `format_version`, numbers where strings
are expected, a null ground truth, the judge's unparseable reply stored as its score, other judge-score keys.
Every stage (inference, evaluation, the report, the rater study) reads and writes through this module, so a
null ground truth or a judge score key means the same everywhere.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.atomic_io import file_sha256, write_json_atomic
from sure_vqa.config import ConfigError, DataError

# Bump when the layout of a metrics file changes; element 0 of every metrics file written here records it.
FORMAT_VERSION = 1
FORMAT_KEY = "format_version"
RESULT_KEYS = ("qid", "question", "gt", "pred", "answer_type")
ANSWER_TYPES = ("OPEN", "CLOSED")
OPEN, CLOSED = "open", "closed"
TRADITIONAL = "traditional"
# The `metric_type` entries of run_eval.py: the traditional metrics, `<judge>` and `<judge>_closed`.
TRADITIONAL_METRICS = "traditional_metrics"
JUDGE_CLOSED_SUFFIX = "_closed"
# Element 0 of every metrics file written here records the SHA-256 of the test_results.json it scored, so that
# a file is used only with the answers it scored (docs/evaluation.md#which-answers-a-metrics-file-scored).
SOURCE_KEY = "test_results_sha256"
SETTINGS_KEY = "scored_with"  # what besides the answers decided the scores (sure_vqa.evaluate.run.scored_with)
CURRENT, STALE, UNVERIFIED = "current", "stale", "unverified"
# Element-0 keys that count a judge's unparseable answers, whatever the evaluation version called them.
FAILURE_KEYS = ("n_failures", "failures", "judge_failures", "n_judge_failures", "failure_count", "n_failed")


def judge_score_keys(judge: str) -> tuple[str, ...]:
    """Where a judge file keeps its score, in the order looked for: this project writes `score`; the original
    code and other versions wrote `<judge>_score`, the judge's name or `judge_score`."""
    return (f"{judge}_score", judge, "score", "judge_score")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not readable JSON: {err}") from None


# --- test_results.json ----------------------------------------------------------------------------------


def read_test_results(path: Path, required: Sequence[str] = RESULT_KEYS) -> list[dict[str, Any]]:
    """The rows, checked: the `required` keys, answer_type OPEN/CLOSED, a string prediction, unique qids.

    qid, question, gt and pred become strings (SLAKE has numeric answers); a null ground truth, which the
    original code wrote for some questions, becomes "".
    """
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a JSON list of rows with keys {', '.join(required)}, "
                        f"found {type(rows).__name__}")
    if not rows:
        raise DataError(f"{path} holds no rows; an empty result file is not scored (rerun inference.py with the "
                        "same settings to complete the run)")
    checked = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {index} is not an object")
        missing = [key for key in required if key not in row]
        if missing:
            raise DataError(f"{path}: row {index} (qid {row.get('qid')!r}) lacks {', '.join(missing)}; every row "
                            f"needs {', '.join(required)}")
        answer_type = str(row["answer_type"]).upper()
        if answer_type not in ANSWER_TYPES:
            raise DataError(f"{path}: row {index} (qid {row['qid']!r}) has answer_type={row['answer_type']!r}; "
                            "valid: OPEN, CLOSED")
        if row["pred"] is None:
            raise DataError(f"{path}: row {index} (qid {row['qid']!r}) has pred=null; every prediction must be a "
                            'string (an empty answer is ""): rerun inference for this folder')
        checked.append({
            **row,
            "qid": str(row["qid"]),
            "question": str(row["question"]),
            "gt": "" if row["gt"] is None else str(row["gt"]),
            "pred": str(row["pred"]),
            "answer_type": answer_type,
        })
    repeated = repeated_qids(row["qid"] for row in checked)
    if repeated:
        listed = ", ".join(f"{' / '.join(map(repr, spellings))} ({n} times)" for spellings, n in repeated[:10])
        raise DataError(f"{path}: {len(repeated)} qids occur more than once ({listed}); each question must have one "
                        "row, or it would be counted twice (ids that differ only in surrounding spaces are the same)")
    return checked


def repeated_qids(qids: Iterable[str]) -> list[tuple[list[str], int]]:
    """qids that occur more than once, with every spelling seen and the count. Surrounding spaces do not make
    another question ("620" and "620 " are one), or the question would be counted twice."""
    spellings: dict[str, list[str]] = {}
    counts: Counter[str] = Counter()
    for qid in qids:
        key = str(qid).strip()
        counts[key] += 1
        if str(qid) not in spellings.setdefault(key, []):
            spellings[key].append(str(qid))
    return [(spellings[key], n) for key, n in counts.items() if n > 1]


def write_test_results(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Atomically: a finished run is marked by this file, so it never exists half-written."""
    return write_json_atomic(path, list(rows))


# --- metrics files ----------------------------------------------------------------------------------------


def write_metrics_file(path: Path, averages: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                       source_sha256: str) -> Path:
    """Element 0 the averages with this module's `format_version` and the SHA-256 of the test_results.json that
    was scored, then the rows; atomically."""
    return write_json_atomic(path, [{**averages, FORMAT_KEY: FORMAT_VERSION, SOURCE_KEY: source_sha256}, *rows])


def recorded_source(path: Path) -> str | None:
    """The test_results.json SHA-256 a metrics file records; None for a file written without it (by an older
    version or the original code) or one that can't be read."""
    try:
        summary = json.loads(Path(path).read_text(encoding="utf-8"))[0]
    except (OSError, ValueError, LookupError, TypeError):
        return None
    value = summary.get(SOURCE_KEY) if isinstance(summary, dict) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Provenance:
    """Whether a metrics file scored the answers its folder holds now: `current`, `stale` (it scored other
    answers, or its test_results.json is gone) or `unverified` (it records no source: read as before, flagged)."""

    status: str
    reason: str


def results_sha256(eval_dir: Path) -> str | None:
    path = Path(eval_dir) / naming.TEST_RESULTS_FILE
    return file_sha256(path) if path.is_file() else None


def provenance(metrics_path: Path, current_sha256: str | None) -> Provenance:
    """Compares what `metrics_path` records with the SHA-256 of the folder's test_results.json (None: absent)."""
    return provenance_of(recorded_source(metrics_path), current_sha256)


def provenance_of(recorded: str | None, current_sha256: str | None) -> Provenance:
    """Compares a recorded test_results.json SHA-256 (None: none recorded) with the current one (None: absent)."""
    if recorded is None:
        return Provenance(UNVERIFIED, f"does not record which {naming.TEST_RESULTS_FILE} it scored (written before "
                                      "this was recorded); rerun run_eval.py on this folder to verify it")
    if current_sha256 is None:
        return Provenance(STALE, f"scored a {naming.TEST_RESULTS_FILE} that is no longer there")
    if recorded != current_sha256:
        return Provenance(STALE, f"scored other answers ({naming.TEST_RESULTS_FILE} sha256 {recorded[:12]}, "
                                 f"now {current_sha256[:12]}): rerun run_eval.py on this folder")
    return Provenance(CURRENT, "")


def check_current(metrics_path: Path, eval_dir: Path) -> Provenance:
    """Raises DataError when `metrics_path` scored other answers than the folder's test_results.json; returns
    the provenance otherwise (`unverified` is allowed: the caller says so)."""
    found = provenance(metrics_path, results_sha256(eval_dir))
    if found.status == STALE:
        raise DataError(f"{metrics_path} {found.reason}; its scores would be joined to other answers by qid")
    return found


@dataclass(frozen=True)
class MetricScores:
    """One metric of one run: the file's mean, each scored question's value, and the rows left unscored."""

    mean: float | None
    per_question: dict[str, float]
    unscored: int
    source: str  # traditional | <judge name>
    version: str | None = None  # a judge's identity and prompt version, as recorded beside its mean
    # score mode: (score, generate mode's score) of each row both modes scored (docs/evaluation.md#score-mode)
    agreement_pairs: tuple[tuple[float, float], ...] = ()

    @property
    def n_scored(self) -> int:
        return len(self.per_question)


@dataclass
class RunScores:
    """Every metric found in one eval folder, keyed by (answer kind, metric name). A metrics file that scored
    other answers than the folder's test_results.json is left out and listed in `stale` (file -> reason); one
    that does not record what it scored is used and listed in `unverified`."""

    metrics: dict[tuple[str, str], MetricScores] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)
    unverified: dict[str, str] = field(default_factory=dict)

    def usable(self, path: Path, averages: Mapping[str, Any], current_sha256: str | None) -> bool:
        """Records the provenance of the metrics file `path` (element 0: `averages`); False when its scores must
        not be used."""
        recorded = averages.get(SOURCE_KEY)
        found = provenance_of(recorded if isinstance(recorded, str) else None, current_sha256)
        if found.status == STALE:
            self.stale[path.name] = found.reason
            return False
        if found.status == UNVERIFIED:
            self.unverified[path.name] = found.reason
        return True


def as_score(value: Any) -> float | None:
    """A finite number, or None for what a missing or failed score looks like (null, "", a reply that is not a
    number: the original judge code stored an unparseable reply as the score)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
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
    """Every `avg_X` metric of one metrics file, with its per-question values from the rows.

    A row whose value is missing or not a number is not scored: for a judge that is a judge failure (never a
    zero), for closed accuracy an undefined row; both are counted.
    """
    return _metric_scores(load_metrics_file(path), source)


def load_metrics_file(path: Path) -> list[dict[str, Any]]:
    """A metrics file's content, checked: element 0 the averages, then the rows."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable JSON metrics file ({err})") from None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        raise DataError(f"{path}: a metrics file must be a JSON list whose element 0 holds the averages")
    return content


def _metric_scores(content: list[dict[str, Any]], source: str) -> dict[str, MetricScores]:
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
            value = as_score(row.get(metric))
            if value is None:
                unscored += 1
            else:
                per_question[str(row.get("qid", index))] = value
        if rows and not per_question and all(metric not in row for row in rows):
            unscored = 0  # an average without per-row values (e.g. the original's avg_bleu_score); mean only
        if source != TRADITIONAL and declared_failures is not None:
            unscored = max(unscored, declared_failures)
        pairs: list[tuple[float, float]] = []
        if source != TRADITIONAL and metric == "score":
            for row in rows:
                both = as_score(row.get("score")), as_score(row.get("generate_score"))
                if both[0] is not None and both[1] is not None:
                    pairs.append(both)  # type: ignore[arg-type]
        found[metric] = MetricScores(as_score(mean), per_question, unscored, source, version, tuple(pairs))
    return found


def _judge_metric(scores: dict[str, MetricScores], judge: str) -> MetricScores | None:
    """A judge file's score: the first of `judge_score_keys`, else the first metric with per-question values."""
    for name in judge_score_keys(judge):
        if name in scores:
            return scores[name]
    with_rows = [s for s in scores.values() if s.per_question]
    return with_rows[0] if with_rows else next(iter(scores.values()), None)


def read_run(eval_dir: Path) -> RunScores:
    """All metrics of one eval folder. Judge metrics are named after the judge (`gemma`)."""
    result = RunScores()
    current = results_sha256(eval_dir)
    for name, kind in ((naming.OPEN_METRICS_FILE, OPEN), (naming.CLOSED_METRICS_FILE, CLOSED)):
        path = eval_dir / name
        if path.is_file():
            result.files.append(name)
            content = load_metrics_file(path)  # parsed once: its provenance, then its scores
            if not result.usable(path, content[0], current):
                continue
            for metric, scores in _metric_scores(content, TRADITIONAL).items():
                result.metrics[(kind, metric)] = scores
    for path in sorted(eval_dir.glob("*_metrics*.json")):
        parsed = naming.parse_judge_metrics_file(path.name)
        if parsed is None:
            continue
        judge, kind = parsed
        result.files.append(path.name)
        content = load_metrics_file(path)
        if not result.usable(path, content[0], current):
            continue
        scores = _judge_metric(_metric_scores(content, judge), judge)
        if scores is not None:
            result.metrics[(kind, judge)] = scores
    return result


def read_judge_scores(path: Path, judge: str) -> dict[str, float | None]:
    """qid -> the judge's score (None for a judge failure) from a judge file.

    Accepts the metrics-file layout (element 0 the averages, then one row per question) and a plain list of
    {qid, score}; rows without a qid (the averages) are skipped.
    """
    rows = read_json(path)
    if isinstance(rows, dict) and isinstance(rows.get("rows"), list):
        rows = rows["rows"]
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a JSON list of per-question rows with qid and a score")
    keys = judge_score_keys(judge)
    scores: dict[str, float | None] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or "qid" not in row:
            continue
        key = next((k for k in keys if k in row), None)
        if key is None:
            raise DataError(f"{path}: row {index} (qid {row['qid']}) has none of the score keys {', '.join(keys)}")
        scores[str(row["qid"])] = as_score(row[key])
    return scores


def metric_type_files(judge: str) -> dict[str, list[str]]:
    """Each valid `metric_type` entry with the files it writes: `traditional_metrics` the two traditional files,
    `<judge>` and `<judge>_closed` the judge's open and closed files."""
    open_file, closed_file = naming.judge_metrics_files(judge)
    return {TRADITIONAL_METRICS: [naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE], judge: [open_file],
            judge + JUDGE_CLOSED_SUFFIX: [closed_file]}


def metric_files(metric_types: Sequence[str], judge: str) -> list[str]:
    """The files an evaluation with these `metric_type` entries writes."""
    by_type = metric_type_files(judge)
    for kind in metric_types:
        if kind not in by_type:
            raise ConfigError(f"metric_type contains {kind!r}; valid values: {', '.join(by_type)}")
    return [name for kind in metric_types for name in by_type[kind]]
