"""Which method is more robust, and is the difference real: paired comparisons of models on the same questions,
and the agreement of rankings across shifts (docs/report.md#comparisons-and-concordance; the statistics:
docs/method.md#statistics-of-the-report).

Paired: for each shift and headline metric, every pair of fine-tuned models, and each model against its own
no-image baselines and the zero-shot model, on the questions both answered (scores averaged over seeds first):
the difference in ood score and in RR = ood/iid, each with a paired cluster-bootstrap interval (images resampled)
and a p-value from swapping the two models' labels within images, Holm-corrected over the comparisons of the
shift. Concordance: per metric, Kendall's W of the methods ranked by RR within each shift (do the shifts agree on
the most robust method?) and of the shifts ranked within each method (do the methods agree on the hardest shift?).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sure_vqa.study.report import stats
from sure_vqa.study.report.grid import MODEL, SeedRuns, ShiftRuns, Variant
from sure_vqa.study.report.scan import FINETUNED, IMAGE, NO_IMAGE, PRETRAINED, Shift
from sure_vqa.study.report.tables import ReportSettings, ScoreReader, is_headline, metric_label, metrics_of

COMPARISON_COLUMNS = [
    "dataset", "shift", "answer_kind", "metric", "metric_label", "comparison", "model_a", "model_b",
    "ood_a", "ood_b", "ood_diff", "ood_ci_low", "ood_ci_high", "ood_p", "ood_p_holm",
    "rr_a", "rr_b", "rr_diff", "rr_ci_low", "rr_ci_high", "rr_p", "rr_p_holm", "questions_ood", "images_ood",
]
CONCORDANCE_COLUMNS = ["answer_kind", "metric_label", "question", "ranked", "across", "m", "n", "w", "chi_square",
                       "p_value", "mean_ranks"]
METHODS_WITHIN_SHIFTS = "do the shifts agree on which method is most robust?"
SHIFTS_WITHIN_METHODS = "do the methods agree on which shift is hardest?"


@dataclass(frozen=True)
class SplitScores:
    """One variant's seed-averaged question scores of one split, and the image of each question."""

    scores: dict[str, float]
    images: dict[str, str]


def split_scores(seed_runs: SeedRuns, split: str, key: tuple[str, str], read: ScoreReader) -> SplitScores:
    per_seed, images = [], {}
    for runs in seed_runs.values():
        run = runs.get(split)
        found = read(run)
        metric = found.metrics.get(key) if found else None
        if metric is not None:
            per_seed.append(metric.per_question)
            images.update(read.image_of(run))
    return SplitScores(stats.question_mean_scores(per_seed), images)


def headline_keys(seed_runs: SeedRuns, read: ScoreReader, settings: ReportSettings) -> list[tuple[str, str, str]]:
    """(answer kind, metric, source) of the headline metrics a variant has (`judge` = every judge)."""
    return sorted((kind, metric, source) for (kind, metric), source in metrics_of(seed_runs, read).items()
                  if is_headline(settings, kind, metric, source))


@dataclass(frozen=True)
class RatioDifference:
    difference: float
    low: float
    high: float
    p_value: float


def paired_ratio_difference(a_iid: SplitScores, b_iid: SplitScores, a_ood: SplitScores, b_ood: SplitScores,
                            seed: int = 0, n_resamples: int = 2000, confidence: float = 0.95) -> RatioDifference:
    """RR_a − RR_b (RR = mean ood / mean iid over the questions both answered), paired: the interval resamples
    iid and ood images (the same picks for both models); the p-value swaps the two models' scores within
    randomly chosen images of both splits.

    Written here: the statistic is a ratio of sums over two splits with their own images, which
    scipy.stats.permutation_test (one set of paired observations) cannot express.
    """
    arrays = []
    for a, b in ((a_iid, b_iid), (a_ood, b_ood)):
        common = sorted(a.scores.keys() & b.scores.keys())
        if not common:
            return RatioDifference(math.nan, math.nan, math.nan, math.nan)
        _, image_index = np.unique([a.images.get(q, f"question {q}") for q in common], return_inverse=True)
        sums = np.stack([np.bincount(image_index, weights=[x.scores[q] for q in common]) for x in (a, b)])
        arrays.append((sums, np.bincount(image_index).astype(float)))
    (iid_sums, iid_counts), (ood_sums, ood_counts) = arrays
    if iid_counts.size < 2 or ood_counts.size < 2:
        return RatioDifference(math.nan, math.nan, math.nan, math.nan)

    def rr_difference(iid: np.ndarray, ood: np.ndarray, n_iid: np.ndarray, n_ood: np.ndarray) -> np.ndarray:
        # iid/ood: (..., 2) summed scores of a and b; n: (...) question counts
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample with an iid mean of 0: left out
            rr = (ood / n_ood[..., None]) / (iid / n_iid[..., None])
            return rr[..., 0] - rr[..., 1]

    observed = float(rr_difference(iid_sums.sum(axis=1), ood_sums.sum(axis=1), iid_counts.sum(), ood_counts.sum()))
    if not math.isfinite(observed):
        return RatioDifference(math.nan, math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    w_iid = stats.resample_weights(iid_counts.size, rng, n_resamples)
    w_ood = stats.resample_weights(ood_counts.size, rng, n_resamples)
    boot = rr_difference(w_iid @ iid_sums.T, w_ood @ ood_sums.T, w_iid @ iid_counts, w_ood @ ood_counts)
    boot = boot[np.isfinite(boot)]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (math.nan, math.nan)

    def swapped(sums: np.ndarray, flips: np.ndarray) -> np.ndarray:
        """Both models' totals when the images in `flips` (0/1 per resample and image) swap their scores."""
        moved = flips @ (sums[1] - sums[0])
        return np.stack([sums[0].sum() + moved, sums[1].sum() - moved], axis=1)

    flips_iid = rng.integers(0, 2, size=(n_resamples, iid_counts.size)).astype(float)
    flips_ood = rng.integers(0, 2, size=(n_resamples, ood_counts.size)).astype(float)
    null = rr_difference(swapped(iid_sums, flips_iid), swapped(ood_sums, flips_ood),
                         np.full(n_resamples, iid_counts.sum()), np.full(n_resamples, ood_counts.sum()))
    extreme = np.sum(np.abs(null[np.isfinite(null)]) >= abs(observed) - 1e-12)
    return RatioDifference(observed, float(low), float(high), float((extreme + 1) / (n_resamples + 1)))


def _pairs(found: ShiftRuns) -> list[tuple[str, Variant, Variant]]:
    """(kind of comparison, a, b): every pair of fine-tuned models, and each model against its own no-image
    baselines and every zero-shot model of the shift."""
    variants = [v for v in found.clean if not v.swap]
    models = sorted((v for v in variants if v.role == MODEL), key=lambda v: v.method)
    pairs = [("methods", a, b) for a, b in itertools.combinations(models, 2)]
    for model in models:
        for other in variants:
            if other.kind == FINETUNED and other.method == model.method and other != model and (
                    other.condition == NO_IMAGE or (not other.train_images and other.condition == IMAGE)):
                pairs.append(("vs no image", model, other))
            elif other.kind == PRETRAINED and other.condition == IMAGE:
                pairs.append(("vs zero-shot", model, other))
    return pairs


def comparison_table(shifts: Mapping[Shift, ShiftRuns], read: ScoreReader, settings: ReportSettings) -> pd.DataFrame:
    """Every paired comparison of every shift (columns COMPARISON_COLUMNS), Holm-corrected within each shift."""
    frames = []
    cache: dict[tuple, SplitScores] = {}

    def scores_of(found: ShiftRuns, variant: Variant, split: str, key: tuple[str, str]) -> SplitScores:
        """Each variant's scores are computed once, though it takes part in several comparisons."""
        cache_key = (found.shift, variant, split, key)
        if cache_key not in cache:
            cache[cache_key] = split_scores(found.clean[variant], split, key, read)
        return cache[cache_key]

    for shift, found in shifts.items():
        rows = []
        for comparison, a, b in _pairs(found):
            for kind, metric, source in headline_keys(found.clean[a], read, settings):
                key = (kind, metric)
                a_iid, a_ood = (scores_of(found, a, s, key) for s in ("iid", "ood"))
                b_iid, b_ood = (scores_of(found, b, s, key) for s in ("iid", "ood"))
                if not b_ood.scores:
                    continue
                ood = stats.paired_difference(a_ood.scores, b_ood.scores, a_ood.images, settings.bootstrap_seed,
                                              settings.n_resamples, settings.confidence)
                rr = paired_ratio_difference(a_iid, b_iid, a_ood, b_ood, settings.bootstrap_seed,
                                             settings.n_resamples, settings.confidence)
                common_iid = set(a_iid.scores) & set(b_iid.scores)
                common_ood = set(a_ood.scores) & set(b_ood.scores)
                means = {name: _mean(scores, common) for name, scores, common in (
                    ("ood_a", a_ood.scores, common_ood), ("ood_b", b_ood.scores, common_ood),
                    ("iid_a", a_iid.scores, common_iid), ("iid_b", b_iid.scores, common_iid))}
                rows.append({
                    "dataset": shift.dataset, "shift": shift.label, "answer_kind": kind, "metric": metric,
                    "metric_label": metric_label(metric, source), "comparison": comparison,
                    "model_a": a.label, "model_b": b.label, "ood_a": means["ood_a"], "ood_b": means["ood_b"],
                    "ood_diff": ood.difference, "ood_ci_low": ood.low, "ood_ci_high": ood.high, "ood_p": ood.p_value,
                    "rr_a": _ratio(means["ood_a"], means["iid_a"]), "rr_b": _ratio(means["ood_b"], means["iid_b"]),
                    "rr_diff": rr.difference, "rr_ci_low": rr.low, "rr_ci_high": rr.high, "rr_p": rr.p_value,
                    "questions_ood": ood.n_questions, "images_ood": ood.n_clusters,
                })
        frame = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if not c.endswith("_holm")])
        frame["ood_p_holm"] = stats.holm(frame["ood_p"].tolist()) if len(frame) else []
        frame["rr_p_holm"] = stats.holm(frame["rr_p"].tolist()) if len(frame) else []
        frames.append(frame[COMPARISON_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _mean(scores: Mapping[str, float], qids: set[str]) -> float:
    return float(np.mean([scores[q] for q in qids])) if qids else math.nan


def _ratio(ood: float, iid: float) -> float:
    return ood / iid if iid and math.isfinite(iid) and math.isfinite(ood) else math.nan


def concordance_table(summary: pd.DataFrame, settings: ReportSettings) -> pd.DataFrame:
    """Kendall's W per headline metric: methods ranked by RR within each shift (agreement across shifts), and
    shifts ranked by RR within each method (agreement across methods). Only methods found on every shift (and
    shifts with every method) enter, so the ranking table is complete."""
    models = summary[(summary["role"] == MODEL) & summary["rr_mean"].notna()]
    rows = []
    for (kind, label), group in models.groupby(["answer_kind", "metric_label"], sort=False):
        if not is_headline(settings, kind, group["metric"].iloc[0], group["source"].iloc[0]):
            continue
        table = group.pivot_table(index="shift", columns="method", values="rr_mean", aggfunc="first").dropna(axis=1)
        for question, ranked, across, scores in (
                (METHODS_WITHIN_SHIFTS, "methods", "shifts", table),
                (SHIFTS_WITHIN_METHODS, "shifts", "methods", table.T)):
            result = stats.kendalls_w(scores.to_numpy())
            # rank 1 = highest RR within a row (the most robust method; the easiest shift)
            ranks = scores.rank(axis=1, ascending=False).mean(axis=0).sort_values() if scores.size else pd.Series()
            rows.append({"answer_kind": kind, "metric_label": label, "question": question, "ranked": ranked,
                         "across": across, "m": result.m, "n": result.n, "w": result.w,
                         "chi_square": result.chi_square, "p_value": result.p_value,
                         "mean_ranks": "; ".join(f"{name}: {rank:.2f}" for name, rank in ranks.items())})
    return pd.DataFrame(rows, columns=CONCORDANCE_COLUMNS)


def comparison_display(rows: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """The compact form of one shift's comparisons: a − b in ood score and RR with interval and Holm's p."""
    from sure_vqa.study.report.render import fmt

    def cell(diff: float, low: float, high: float, p: float) -> str:
        star = " *" if isinstance(p, float) and p < 1 - confidence else ""
        return f"{fmt(diff)} [{fmt(low)}, {fmt(high)}] p={fmt(p, 3)}{star}"

    return pd.DataFrame({
        "metric": [f"{m} ({k})" for m, k in zip(rows["metric_label"], rows["answer_kind"], strict=True)],
        "a": rows["model_a"], "b": rows["model_b"],
        "ood a − b": [cell(*v) for v in zip(rows["ood_diff"], rows["ood_ci_low"], rows["ood_ci_high"],
                                            rows["ood_p_holm"], strict=True)],
        "RR a − b": [cell(*v) for v in zip(rows["rr_diff"], rows["rr_ci_low"], rows["rr_ci_high"],
                                           rows["rr_p_holm"], strict=True)],
        "questions / images (ood)": [f"{q} / {i}" for q, i in zip(rows["questions_ood"], rows["images_ood"],
                                                                 strict=True)],
    })


def concordance_display(rows: pd.DataFrame) -> pd.DataFrame:
    from sure_vqa.study.report.render import fmt

    return pd.DataFrame({
        "metric": rows["metric_label"], "question": rows["question"],
        "rankings (m) × items (n)": [f"{m} {a} × {n} {r}" for m, a, n, r in zip(rows["m"], rows["across"], rows["n"],
                                                                           rows["ranked"], strict=True)],
        "Kendall's W": [fmt(w, 2) for w in rows["w"]],
        "Friedman χ² (p)": [f"{fmt(c, 2)} ({fmt(p, 3)})" for c, p in zip(rows["chi_square"], rows["p_value"],
                                                                       strict=True)],
        "mean rank (1 = most robust / easiest)": rows["mean_ranks"],
    })


def not_answerable(summary: pd.DataFrame) -> list[str]:
    """Sentences for the questions this grid cannot answer yet (too few shifts, methods or seeds)."""
    notes = []
    models = summary[summary["role"] == MODEL]
    n_shifts = models["shift"].nunique()
    n_methods = models["method"].nunique()
    if n_shifts < 2 or n_methods < 3:
        notes.append(f"Whether the shifts agree on the most robust method needs at least 2 shifts and 3 methods "
                     f"with RR; this study has {n_shifts} shift(s) and {n_methods} method(s).")
    if n_methods < 2 or n_shifts < 3:
        notes.append(f"Whether the methods agree on the hardest shift needs at least 3 shifts and 2 methods; this "
                     f"study has {n_shifts} shift(s) and {n_methods} method(s).")
    return notes
