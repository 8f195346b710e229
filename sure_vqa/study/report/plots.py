"""The report's figures as PNG bytes (matplotlib, no pyplot state, so it runs headless and in threads).

- `bars_png`: for one shift and answer kind, iid and ood bars (mean ± std over seeds) per method, one panel per
  metric, with each baseline drawn as a line across the bars it compares to: a baseline of one method (its
  no-image, blank/shuffled-image or swap variant) over that method's bars, the zero-shot model and the most
  frequent answer over every method's. A line over an iid bar is the baseline's iid score, over an ood bar its
  ood score (for the swap, its score on this shift's iid or ood data).
- `corruption_png`: score against corruption strength (`none` = clean), one line per model and split.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sure_vqa.study.report.grid import MODEL
from sure_vqa.study.report.scan import FINETUNED

IID_COLOR, OOD_COLOR = "#4C72B0", "#DD8452"
BASELINE_COLORS = ["#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                   "#1f77b4", "#ff7f0e"]
BASELINE_STYLES = ["-", "--", "-.", ":"]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _value(value: float | None) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _std(value: float | None) -> float:
    """NaN (no error bar) for a single seed, whose std is undefined."""
    return math.nan if value is None else float(value)


def bars_png(rows: pd.DataFrame, metrics: Sequence[str], title: str) -> bytes:
    """iid/ood bars per method with baseline lines; `rows` are the summary rows of one shift and answer kind."""
    models = rows[rows["role"] == MODEL]
    if models.empty:  # only baselines were run: show them as bars
        models = rows
    labels = list(dict.fromkeys(models["label"]))
    baselines = rows[rows["role"] != MODEL]
    kinds = list(dict.fromkeys(baselines["baseline_kind"]))
    style = {kind: (BASELINE_COLORS[i % len(BASELINE_COLORS)], BASELINE_STYLES[(i // len(BASELINE_COLORS)) % 4])
             for i, kind in enumerate(kinds)}
    width = 0.38
    figure = Figure(figsize=(max(4.0, 1.1 * len(labels) + 2.5) * len(metrics), 4.2))
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        here = models[models["metric_label"] == metric].set_index("label")
        positions = range(len(labels))
        for offset, split, color in ((-width / 2, "iid", IID_COLOR), (width / 2, "ood", OOD_COLOR)):
            means = [_value(here[f"{split}_mean"].get(label)) for label in labels]
            stds = [_std(here[f"{split}_std"].get(label)) for label in labels]
            ax.bar([p + offset for p in positions], means, width, yerr=stds, color=color, capsize=3, label=split)
        for _, baseline in baselines[baselines["metric_label"] == metric].iterrows():
            color, linestyle = style[baseline["baseline_kind"]]
            for position, label in enumerate(labels):
                model_method = models.loc[models["label"] == label, "method"].iloc[0]
                if baseline["kind"] == FINETUNED and baseline["method"] != model_method:
                    continue
                for start, split in ((position - width, "iid"), (position, "ood")):
                    value = baseline[f"{split}_mean"]
                    if value is not None and not math.isnan(value):
                        ax.hlines(value, start, start + width, colors=color, linestyles=linestyle, linewidth=2.2)
        ax.set_xticks(list(positions))
        ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=IID_COLOR, label="iid"), Patch(color=OOD_COLOR, label="ood")]
    handles += [Line2D([], [], color=style[k][0], linestyle=style[k][1], linewidth=2.2, label=k) for k in kinds]
    figure.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(handles)),
                  fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=11, y=1.03)
    return _png(figure)


def corruption_png(rows: pd.DataFrame, metrics: Sequence[str], title: str) -> bytes:
    """Score against corruption strength: one line per model and split (iid solid, ood dashed), ± std."""
    strengths = list(dict.fromkeys(rows.sort_values(["order", "strength"])["strength"]))
    labels = list(dict.fromkeys(rows["label"]))
    figure = Figure(figsize=(max(4.5, 1.2 * len(strengths) + 2.5) * len(metrics), 4.0))
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        here = rows[rows["metric_label"] == metric]
        for index, label in enumerate(labels):
            color = BASELINE_COLORS[index % len(BASELINE_COLORS)]
            for split, linestyle, marker in (("iid", "-", "o"), ("ood", "--", "s")):
                line = here[(here["label"] == label) & (here["split"] == split)].set_index("strength")
                xs = [i for i, s in enumerate(strengths) if s in line.index]
                if not xs:
                    continue
                ys = [line.loc[strengths[i], "mean"] for i in xs]
                errors = [_std(line.loc[strengths[i], "std"]) for i in xs]
                ax.errorbar(xs, ys, yerr=errors, color=color, linestyle=linestyle, marker=marker, capsize=3,
                            label=f"{label} ({split})")
        ax.set_xticks(range(len(strengths)))
        ax.set_xticklabels(strengths, rotation=15, ha="right", fontsize=8)
        ax.set_xlabel("corruption strength")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
    handles, legend_labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, legend_labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8,
                  frameon=False)
    figure.suptitle(title, fontsize=11, y=1.03)
    return _png(figure)
