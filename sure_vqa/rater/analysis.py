"""How well each metric agrees with people (docs/method.md#human-rater-study): rank correlations, inter-rater agreement, plots.

- Kendall's tau-b and Spearman's rho with p-values (scipy) between every rater, the LLM judge and each
  traditional metric, over the questions both scored.
- "Human" vs a metric pools every rater's scores: one pair (rater's score, metric) per rated question and
  rater, as the original SURE-VQA analysis did. Human vs human is the mean over rater pairs.
- Krippendorff's alpha (ordinal, the `krippendorff` package) between raters.
- Bootstrap percentile intervals, resampling questions (all raters' scores of a question stay together).
- Heat maps and scatter plots as PNG, a Markdown table and a JSON file with every number.

Loading and the analysis are here; the statistics are in rater/statistics.py, the result and its files in
rater/results.py.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from sure_vqa import eval_folder, naming
from sure_vqa.config import ConfigError, DataError
from sure_vqa.eval_folder import read_judge_scores
from sure_vqa.evaluate.metrics import registry as metric_registry
from sure_vqa.rater.results import HUMAN, AnalysisResult, Comparison, value_domain, write_outputs
from sure_vqa.rater.statistics import (
    Correlation,
    Interval,
    bootstrap_interval,
    correlate,
    kendall_tau,
    krippendorff_alpha,
    mean_over_rater_pairs,
    pooled,
    spearman_rho,
)

log = logging.getLogger(__name__)



# --- loading -------------------------------------------------------------------------------------


def _read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not readable JSON: {err}") from None
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a JSON list of rows")
    return [row for row in rows if isinstance(row, dict) and "qid" in row]


def find_raters(eval_dir: Path, answer_kind: str) -> list[str]:
    """The raters with an export in the eval folder, from the file names `human_metrics_<kind>_<rater>.json`."""
    prefix, suffix = naming.human_metrics_file(answer_kind, "\0").split("\0")
    return sorted(p.name[len(prefix) : -len(suffix)] for p in eval_dir.glob(f"{prefix}*{suffix}"))


def load_human_scores(eval_dir: Path, answer_kind: str, raters: Sequence[str] | None = None) -> pd.DataFrame:
    """qid x rater table of human scores (NaN where a rater did not rate a question)."""
    raters = list(raters) if raters else find_raters(eval_dir, answer_kind)
    if not raters:
        raise ConfigError(
            f"no {naming.human_metrics_file(answer_kind, '<rater>')} in {eval_dir}; export the ratings first"
        )
    columns = {}
    for rater in raters:
        path = eval_dir / naming.human_metrics_file(answer_kind, rater)
        if not path.is_file():
            raise ConfigError(f"rater {rater!r}: {path} does not exist; raters found: {find_raters(eval_dir, answer_kind)}")
        scores = {}
        for row in _read_rows(path):
            if "human_score" not in row:
                raise DataError(f"{path}: the row of qid {row['qid']} has no human_score")
            if row["human_score"] is not None:
                scores[str(row["qid"])] = float(row["human_score"])
        columns[rater] = pd.Series(scores, dtype=float)
    table = pd.DataFrame(columns)
    table.index.name = "qid"
    return table.sort_index()


def _check_current(metrics_path: Path, eval_dir: Path) -> None:
    """Scores are joined to the raters' by qid: a file of other answers is refused, an unverified one named."""
    found = eval_folder.check_current(metrics_path, eval_dir)
    if found.status == eval_folder.UNVERIFIED:
        log.warning("%s %s", metrics_path, found.reason)


def load_automatic_scores(eval_dir: Path, answer_kind: str, judge: str | None) -> tuple[pd.DataFrame, str | None]:
    """qid x scorer table of the judge's and the traditional metrics' scores (NaN for judge failures).

    Returns the table and the judge's column name (None when no judge file is there). A missing file is
    skipped with a warning, so the analysis runs on what the evaluation wrote.
    """
    columns: dict[str, pd.Series] = {}
    judge_column = None
    if judge:
        judge_path = eval_dir / naming.judge_metrics_files(judge)[0 if answer_kind == "open" else 1]
        if judge_path.is_file():
            _check_current(judge_path, eval_dir)
            judge_column = f"LLM judge ({judge})"
            scores = read_judge_scores(judge_path, judge)
            columns[judge_column] = pd.Series({q: np.nan if s is None else s for q, s in scores.items()}, dtype=float)
        else:
            log.warning("%s does not exist: the judge is left out", judge_path)
    metrics_path = eval_dir / (naming.OPEN_METRICS_FILE if answer_kind == "open" else naming.CLOSED_METRICS_FILE)
    if answer_kind == "open":
        metric_columns = [column for metric in metric_registry.all_metrics() for column in metric.columns]
    else:
        metric_columns = list(metric_registry.CLOSED_COLUMNS)
    if metrics_path.is_file():
        _check_current(metrics_path, eval_dir)
        rows = _read_rows(metrics_path)
        for column in metric_columns:
            key = column.key
            if rows and all(key in row for row in rows):
                columns[column.label] = pd.Series(
                    {str(row["qid"]): np.nan if row[key] is None else float(row[key]) for row in rows}, dtype=float
                )
    else:
        log.warning("%s does not exist: the traditional metrics are left out", metrics_path)
    table = pd.DataFrame(columns)
    table.index.name = "qid"
    return table, judge_column


# --- the analysis --------------------------------------------------------------------------------


def analyse(
    human: pd.DataFrame,
    automatic: pd.DataFrame,
    answer_kind: str,
    judge_column: str | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AnalysisResult:
    """Every figure of the study from a qid x rater table and a qid x scorer table."""
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence={confidence} is not valid; it must lie between 0 and 1")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples={n_resamples} is not valid; it must be >= 1")
    human = human.dropna(how="all")
    qids = list(human.index)
    if len(qids) < 2:
        raise DataError(f"only {len(qids)} rated question(s); correlations need at least 2")
    raters = [str(r) for r in human.columns]
    auto = automatic.reindex(qids)
    scorers = list(auto.columns)
    H = human.to_numpy(dtype=float)
    A = {name: auto[name].to_numpy(dtype=float) for name in scorers}
    rng = np.random.default_rng(seed)
    n_intervals = (3 if len(raters) >= 2 else 0) + 2 * len(scorers)
    progress = tqdm(total=n_intervals, desc="bootstrap intervals", unit="statistic", disable=None)

    def interval(stat: Callable[[np.ndarray], float]) -> Interval:
        found = bootstrap_interval(stat, len(qids), n_resamples, confidence, rng)
        progress.update()
        return found

    versus: list[Comparison] = []
    pair_rows: list[dict[str, Any]] = []
    alpha, alpha_interval = math.nan, None
    if len(raters) >= 2:
        pairs = list(itertools.combinations(range(len(raters)), 2))
        for a, b in pairs:
            corr = correlate(H[:, a], H[:, b])
            pair_rows.append({"rater_a": raters[a], "rater_b": raters[b], **asdict(corr)})
        mean_tau = mean_over_rater_pairs(H, kendall_tau)
        mean_rho = mean_over_rater_pairs(H, spearman_rho)
        n_common = int(np.sum(np.sum(~np.isnan(H), axis=1) >= 2))
        versus.append(Comparison(
            scorer=HUMAN,
            correlation=Correlation(n_common, mean_tau, math.nan, mean_rho, math.nan),
            kendall_interval=interval(lambda idx: mean_over_rater_pairs(H[idx], kendall_tau)),
            spearman_interval=interval(lambda idx: mean_over_rater_pairs(H[idx], spearman_rho)),
            note=f"mean over {len(pairs)} rater pair(s); p-values per pair below",
        ))
        domain = value_domain(answer_kind)
        alpha = krippendorff_alpha(H, domain)
        alpha_interval = interval(lambda idx: krippendorff_alpha(H[idx], domain))
    for name in scorers:
        other = A[name]
        versus.append(Comparison(
            scorer=name,
            correlation=correlate(*pooled(H, other)),
            kendall_interval=interval(lambda idx, o=other: kendall_tau(*pooled(H[idx], o[idx]))),
            spearman_interval=interval(lambda idx, o=other: spearman_rho(*pooled(H[idx], o[idx]))),
            note=f"pooled over {len(raters)} rater(s)" if len(raters) > 1 else "",
        ))

    progress.close()
    matrix_scorers = raters + scorers
    columns = [H[:, i] for i in range(len(raters))] + [A[name] for name in scorers]
    size = len(columns)
    cells = [[correlate(columns[i], columns[j]) for j in range(size)] for i in range(size)]
    judge_failures = int(np.isnan(A[judge_column]).sum()) if judge_column else 0
    return AnalysisResult(
        answer_kind=answer_kind,
        raters=raters,
        n_questions=len(qids),
        judge=judge_column,
        judge_failures=judge_failures,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        versus_human=versus,
        rater_pairs=pair_rows,
        krippendorff_alpha=alpha,
        krippendorff_interval=alpha_interval,
        matrix_scorers=matrix_scorers,
        kendall_matrix=[[c.kendall_tau for c in row] for row in cells],
        kendall_p_matrix=[[c.kendall_p for c in row] for row in cells],
        spearman_matrix=[[c.spearman_rho for c in row] for row in cells],
        spearman_p_matrix=[[c.spearman_p for c in row] for row in cells],
        n_matrix=[[c.n for c in row] for row in cells],
    )


def run_analysis(
    eval_dir: str | Path,
    answer_kind: str = "open",
    judge: str | None = None,
    raters: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[AnalysisResult, list[Path]]:
    """Reads the exports and metrics of one eval folder, analyses them and writes every output file.

    `out_dir` defaults to `<eval_dir>/rater_study_<kind>/analysis`.
    """
    eval_dir = Path(eval_dir).expanduser()
    if answer_kind not in naming.ANSWER_KINDS:
        raise ConfigError(f"answer_kind={answer_kind!r} is not valid; valid values: {', '.join(naming.ANSWER_KINDS)}")
    if not eval_dir.is_dir():
        raise ConfigError(f"eval folder {eval_dir} does not exist")
    human = load_human_scores(eval_dir, answer_kind, raters)
    automatic, judge_column = load_automatic_scores(eval_dir, answer_kind, judge)
    result = analyse(human, automatic, answer_kind, judge_column, n_resamples, confidence, seed)
    out = Path(out_dir) if out_dir else naming.rater_study_dir(eval_dir, answer_kind) / naming.RATER_ANALYSIS_DIR
    return result, write_outputs(result, human, automatic, out)
