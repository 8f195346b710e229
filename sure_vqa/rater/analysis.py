"""How well each metric agrees with people (docs/method.md#human-rater-study): rank correlations, inter-rater agreement, plots.

- Kendall's tau-b and Spearman's rho with p-values (scipy) between every rater, the LLM judge and each
  traditional metric, over the questions both scored.
- "Human" vs a metric pools every rater's scores: one pair (rater's score, metric) per rated question and
  rater, as the original SURE-VQA analysis did. Human vs human is the mean over rater pairs.
- Krippendorff's alpha (ordinal, the `krippendorff` package) between raters.
- Bootstrap percentile intervals, resampling questions (all raters' scores of a question stay together).
- Heat maps and scatter plots as PNG, a Markdown table and a JSON file with every number.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from sure_vqa import naming
from sure_vqa.atomic_io import write_json_atomic, write_text_atomic
from sure_vqa.config import ConfigError, DataError
from sure_vqa.eval_folder import read_judge_scores
from sure_vqa.evaluate.metrics import registry as metric_registry
from sure_vqa.rater.rubric import SCALES

log = logging.getLogger(__name__)

HUMAN = "Human"


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


# --- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correlation:
    """Kendall's tau-b and Spearman's rho with their two-sided p-values, over n pairs."""

    n: int
    kendall_tau: float
    kendall_p: float
    spearman_rho: float
    spearman_p: float


def _pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def _constant(values: np.ndarray) -> bool:
    return values.size == 0 or bool(np.all(values == values[0]))


def correlate(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> Correlation:
    """Both rank correlations over the pairs where neither value is missing; NaN where undefined
    (fewer than 2 pairs, or one side constant)."""
    x, y = _pairs(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    if len(x) < 2 or _constant(x) or _constant(y):
        return Correlation(len(x), math.nan, math.nan, math.nan, math.nan)
    kendall = stats.kendalltau(x, y)  # tau-b, exact p-value for small samples without ties
    spearman = stats.spearmanr(x, y)
    return Correlation(len(x), float(kendall.statistic), float(kendall.pvalue), float(spearman.statistic),
                       float(spearman.pvalue))


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    x, y = _pairs(x, y)
    if len(x) < 2 or _constant(x) or _constant(y):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    x, y = _pairs(x, y)
    if len(x) < 2 or _constant(x) or _constant(y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def pooled(human: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(question x rater) human scores and one score per question -> pairs (each rater's score, the other)."""
    return human.T.reshape(-1), np.tile(other, human.shape[1])


def mean_over_rater_pairs(human: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], float]) -> float:
    """The mean of a statistic over all pairs of rater columns (pairs where it is undefined are skipped)."""
    values = [statistic(human[:, a], human[:, b]) for a, b in itertools.combinations(range(human.shape[1]), 2)]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def krippendorff_alpha(human: np.ndarray, value_domain: Sequence[float]) -> float:
    """Ordinal alpha between raters (rows of reliability data = raters); NaN when it is undefined."""
    import krippendorff

    data = human.T
    observed = data[~np.isnan(data)]
    pairable = int(np.sum(np.sum(~np.isnan(data), axis=0) >= 2))
    if data.shape[0] < 2 or pairable == 0 or _constant(observed):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                        value_domain=list(value_domain)))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    n_resamples: int
    n_undefined: int  # resamples where the statistic was undefined (e.g. all scores equal), left out


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float], n_items: int, n_resamples: int, confidence: float,
    rng: np.random.Generator,
) -> Interval:
    """Percentile interval of `statistic(indices)` over resamples of the questions.

    Written out rather than scipy.stats.bootstrap because a resample where a rank correlation is undefined
    (one side constant) makes scipy's whole interval NaN; here such resamples are dropped and counted.
    """
    values = np.array([statistic(rng.integers(0, n_items, n_items)) for _ in range(n_resamples)])
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        return Interval(math.nan, math.nan, n_resamples, n_resamples)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(low), float(high), n_resamples, int(values.size - defined.size))


# --- the analysis --------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Human scores against one scorer (or against each other), with intervals."""

    scorer: str
    correlation: Correlation
    kendall_interval: Interval
    spearman_interval: Interval
    note: str = ""


@dataclass
class AnalysisResult:
    answer_kind: str
    raters: list[str]
    n_questions: int
    judge: str | None
    judge_failures: int
    confidence: float
    n_resamples: int
    seed: int
    versus_human: list[Comparison]
    rater_pairs: list[dict[str, Any]]
    krippendorff_alpha: float
    krippendorff_interval: Interval | None
    matrix_scorers: list[str]
    kendall_matrix: list[list[float]]
    kendall_p_matrix: list[list[float]]
    spearman_matrix: list[list[float]]
    spearman_p_matrix: list[list[float]]
    n_matrix: list[list[int]]
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return clean(asdict(self))


def value_domain(answer_kind: str) -> list[float]:
    """The ordered values a human score can take (for alpha's ordinal metric)."""
    if answer_kind == "open":
        return list(SCALES["open"].values)
    return sorted(set(SCALES["closed"].values) | set(SCALES["two_option"].values))


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
        mean_tau = mean_over_rater_pairs(H, _tau)
        mean_rho = mean_over_rater_pairs(H, _rho)
        n_common = int(np.sum(np.sum(~np.isnan(H), axis=1) >= 2))
        versus.append(Comparison(
            scorer=HUMAN,
            correlation=Correlation(n_common, mean_tau, math.nan, mean_rho, math.nan),
            kendall_interval=interval(lambda idx: mean_over_rater_pairs(H[idx], _tau)),
            spearman_interval=interval(lambda idx: mean_over_rater_pairs(H[idx], _rho)),
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
            kendall_interval=interval(lambda idx, o=other: _tau(*pooled(H[idx], o[idx]))),
            spearman_interval=interval(lambda idx, o=other: _rho(*pooled(H[idx], o[idx]))),
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


# --- output --------------------------------------------------------------------------------------


def _num(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.1e}" if value < 0.001 else f"{value:.3f}"


def _ci(interval: Interval | None) -> str:
    if interval is None or math.isnan(interval.low):
        return "n/a"
    return f"[{interval.low:.2f}, {interval.high:.2f}]"


def markdown_table(result: AnalysisResult) -> str:
    """The study's summary as Markdown: human vs each scorer, rater pairs, and alpha."""
    pct = f"{result.confidence:.0%}"
    lines = [
        f"# Human rater study: {result.answer_kind} questions",
        "",
        f"{len(result.raters)} rater(s) ({', '.join(result.raters)}), {result.n_questions} questions."
        + (f" {result.judge}: {result.judge_failures} judge failure(s) among these questions, left out of its "
           "correlations." if result.judge else ""),
        f"Intervals: {pct} bootstrap percentile intervals, {result.n_resamples} resamples of the questions "
        f"(seed {result.seed}).",
        "",
        f"| Human vs | n | Kendall τ | {pct} CI | p | Spearman ρ | {pct} CI | p | note |",
        "|---|---:|---:|---|---:|---:|---|---:|---|",
    ]
    for comp in result.versus_human:
        c = comp.correlation
        lines.append(
            f"| {comp.scorer} | {c.n} | {_num(c.kendall_tau)} | {_ci(comp.kendall_interval)} | {_p(c.kendall_p)} "
            f"| {_num(c.spearman_rho)} | {_ci(comp.spearman_interval)} | {_p(c.spearman_p)} | {comp.note} |"
        )
    if result.rater_pairs:
        lines += [
            "",
            f"Krippendorff's α (ordinal) between raters: {_num(result.krippendorff_alpha)} "
            f"{_ci(result.krippendorff_interval)}",
            "",
            "## Rater pairs",
            "",
            "| Rater | Rater | n | Kendall τ | p | Spearman ρ | p |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in result.rater_pairs:
            lines.append(
                f"| {row['rater_a']} | {row['rater_b']} | {row['n']} | {_num(row['kendall_tau'])} "
                f"| {_p(row['kendall_p'])} | {_num(row['spearman_rho'])} | {_p(row['spearman_p'])} |"
            )
    return "\n".join(lines) + "\n"


def heatmap(matrix: list[list[float]], p_matrix: list[list[float]], labels: list[str], title: str,
            path: Path) -> Path:
    """A correlation matrix with each cell's value and p-value written in it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    values = np.array(matrix, dtype=float)
    size = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 * size + 2.5, 0.85 * size + 2))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(size), labels, rotation=35, ha="right")
    ax.set_yticks(range(size), labels)
    for i, j in itertools.product(range(size), range(size)):
        text = _num(values[i, j]) if i == j else f"{_num(values[i, j])}\n({_p(p_matrix[i][j])})"
        shade = "white" if not math.isnan(values[i, j]) and abs(values[i, j]) > 0.6 else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color=shade)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def scatter(x: np.ndarray, y: np.ndarray, x_label: str, y_label: str, title: str, path: Path,
            x_ticks: Sequence[float] | None = None, y_ticks: Sequence[float] | None = None) -> Path:
    """Score pairs as bubbles whose area (and label) counts how often the pair occurs: scores repeat on short
    scales, so plain points would hide most of the data."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x, y = _pairs(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    counts = pd.DataFrame({"x": x, "y": y}).value_counts().reset_index(name="count")
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(counts["x"], counts["y"], s=counts["count"] * 60, alpha=0.6, edgecolors="white", linewidths=0.5)
    for _, row in counts.iterrows():
        ax.annotate(str(int(row["count"])), (row["x"], row["y"]), ha="center", va="center", fontsize=7)
    if x_ticks is not None:
        ax.set_xticks(list(x_ticks))
    if y_ticks is not None:
        ax.set_yticks(list(y_ticks))
    ax.margins(0.15)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    """PNG written to a temporary name in the same folder, then renamed (atomic)."""
    import io

    from matplotlib import pyplot as plt

    from sure_vqa.atomic_io import write_bytes_atomic

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130)
    plt.close(fig)
    return write_bytes_atomic(path, buffer.getvalue())


def write_outputs(result: AnalysisResult, human: pd.DataFrame, automatic: pd.DataFrame, out_dir: Path) -> list[Path]:
    """correlations.json, correlations.md, the two heat maps and the scatter plots into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        heatmap(result.kendall_matrix, result.kendall_p_matrix, result.matrix_scorers, "Kendall τ (p-value)",
                out_dir / naming.rater_heatmap_file("kendall")),
        heatmap(result.spearman_matrix, result.spearman_p_matrix, result.matrix_scorers, "Spearman ρ (p-value)",
                out_dir / naming.rater_heatmap_file("spearman")),
    ]
    human = human.dropna(how="all")
    H = human.to_numpy(dtype=float)
    auto = automatic.reindex(human.index)
    ticks = value_domain(result.answer_kind)
    for name in auto.columns:
        x, y = pooled(H, auto[name].to_numpy(dtype=float))
        written.append(scatter(x, y, f"{HUMAN} score (all raters)", name, f"{HUMAN} vs {name}",
                               out_dir / naming.rater_scatter_file(HUMAN, name), x_ticks=ticks,
                               y_ticks=ticks if name == result.judge else None))
    for a, b in itertools.combinations(human.columns, 2):
        written.append(scatter(human[a].to_numpy(), human[b].to_numpy(), str(a), str(b), f"{a} vs {b}",
                               out_dir / naming.rater_scatter_file(str(a), str(b)), x_ticks=ticks, y_ticks=ticks))
    written.append(write_text_atomic(out_dir / naming.RATER_TABLE_FILE, markdown_table(result)))
    result.files = [p.name for p in written] + [naming.RATER_CORRELATIONS_FILE]
    written.append(write_json_atomic(out_dir / naming.RATER_CORRELATIONS_FILE, result.to_json()))
    return written


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
