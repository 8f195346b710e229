"""The rater analysis's result and what it writes: the Markdown table, heat maps and scatter plots (PNG), and the
JSON file with every number."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sure_vqa import naming
from sure_vqa.atomic_io import write_json_atomic, write_text_atomic
from sure_vqa.rater.rubric import SCALES
from sure_vqa.rater.statistics import Correlation, Interval, pairs, pooled

HUMAN = "Human"
CORRELATIONS_FILE = "correlations.json"  # in the study's analysis folder
TABLE_FILE = "correlations.md"


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

    x, y = pairs(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
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
    written.append(write_text_atomic(out_dir / TABLE_FILE, markdown_table(result)))
    result.files = [p.name for p in written] + [CORRELATIONS_FILE]
    written.append(write_json_atomic(out_dir / CORRELATIONS_FILE, result.to_json()))
    return written
