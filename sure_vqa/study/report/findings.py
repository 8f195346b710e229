"""Findings: what the study's numbers support and what they do not, in sentences built from the computed values
(docs/report.md#findings). Nothing here is fixed text about a result: every sentence names the figure behind it,
and a question the grid can't answer yet (one seed, one shift, one method) is said to be open.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from sure_vqa.eval_folder import CLOSED, OPEN, TRADITIONAL
from sure_vqa.study.report.comparisons import METHODS_WITHIN_SHIFTS, SHIFTS_WITHIN_METHODS
from sure_vqa.study.report.grid import MODEL
from sure_vqa.study.report.tables import JUDGE, ReportSettings

KIND_WORDS = {OPEN: "open questions", CLOSED: "closed questions"}
# How Kendall's W is read in words (a convention, stated with the number): below 0.3 weak, 0.3-0.7 moderate.
W_WORDS = ((0.7, "strong"), (0.3, "moderate"), (0.0, "weak"))


def _f(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pm(mean: float, std: float) -> str:
    return _f(mean) if std is None or math.isnan(std) else f"{_f(mean)} ± {_f(std)}"


def primary_metric(rows: pd.DataFrame, kind: str, settings: ReportSettings) -> str | None:
    """The first headline metric of an answer kind that the models have (`judge` = a judge)."""
    present = rows[(rows["answer_kind"] == kind) & (rows["role"] == MODEL)]
    for wanted in settings.headline.get(kind, []):
        found = present[present["source"] != TRADITIONAL] if wanted == JUDGE else present[present["metric"] == wanted]
        if not found.empty:
            return str(found["metric_label"].iloc[0])
    return None


def _shift_findings(shift: str, rows: pd.DataFrame, comparisons: pd.DataFrame, settings: ReportSettings) -> list[str]:
    sentences = []
    alpha = 1 - settings.confidence
    for kind in (OPEN, CLOSED):
        metric = primary_metric(rows, kind, settings)
        if metric is None:
            continue
        models = rows[(rows["answer_kind"] == kind) & (rows["role"] == MODEL) & (rows["metric_label"] == metric)]
        where = f"{shift}, {KIND_WORDS[kind]}, {metric}"
        best_iid = models.loc[models["iid_mean"].idxmax()] if models["iid_mean"].notna().any() else None
        if best_iid is None:
            continue
        if len(models) < 2:
            sentences.append(f"{where}: only one fine-tuned model ({best_iid['label']}, iid "
                             f"{_pm(best_iid['iid_mean'], best_iid['iid_std'])}, RR "
                             f"{_pm(best_iid['rr_mean'], best_iid['rr_std'])}); which method is more robust can't be "
                             "answered on this shift.")
        else:
            by_rr = models.dropna(subset=["rr_mean"]).sort_values("rr_mean", ascending=False)
            sentence = (f"{where}: the best iid model is {best_iid['label']} "
                        f"({_pm(best_iid['iid_mean'], best_iid['iid_std'])})")
            if len(by_rr) >= 2:
                first, second = by_rr.iloc[0], by_rr.iloc[1]
                sentence += (f"; the most robust is {first['label']} (RR {_pm(first['rr_mean'], first['rr_std'])}), "
                             f"ahead of {second['label']} (RR {_pm(second['rr_mean'], second['rr_std'])})")
                pair = comparisons[(comparisons["shift"] == shift) & (comparisons["metric_label"] == metric)
                                   & (comparisons["answer_kind"] == kind)
                                   & (comparisons["comparison"] == "methods")
                                   & comparisons["model_a"].isin([first["label"], second["label"]])
                                   & comparisons["model_b"].isin([first["label"], second["label"]])]
                if not pair.empty and not math.isnan(pair["rr_p_holm"].iloc[0]):
                    p = float(pair["rr_p_holm"].iloc[0])
                    verdict = "significant" if p < alpha else "not significant"
                    tail = ")" if p < alpha else "): the data do not separate the two"
                    sentence += f"; that lead is {verdict} after Holm's correction on the same questions (p = {_f(p)}{tail}"
            sentences.append(sentence + ".")
        for _, line in models.iterrows():
            gap, mdd = line["diff_mean"], line.get("mdd", math.nan)
            if isinstance(mdd, float) and not math.isnan(mdd) and not math.isnan(gap) and abs(gap) < mdd:
                sentences.append(
                    f"{where}: {line['label']}'s iid − ood gap ({_f(gap)}) is below the smallest gap these splits can "
                    f"detect ({_f(mdd)} at 80% power, α = 0.05; {int(line['iid_images'])}/{int(line['ood_images'])} "
                    "iid/ood images): a gap of this size can't be told from chance on these splits.")
    judge_rows = rows[(rows["answer_kind"] == OPEN) & (rows["role"] == MODEL) & (rows["source"] != TRADITIONAL)]
    em_rows = rows[(rows["answer_kind"] == OPEN) & (rows["role"] == MODEL) & (rows["metric"] == "exact_match_score")]
    if judge_rows["ood_mean"].notna().sum() >= 2 and em_rows["ood_mean"].notna().sum() >= 2:
        judge_first = judge_rows.loc[judge_rows["ood_mean"].idxmax()]
        em_first = em_rows.loc[em_rows["ood_mean"].idxmax()]
        if judge_first["label"] != em_first["label"]:
            sentences.append(f"{shift}, open questions: the judge ({judge_first['metric_label']}) ranks "
                             f"{judge_first['label']} first on ood ({_f(judge_first['ood_mean'])}), exact match ranks "
                             f"{em_first['label']} first ({_f(em_first['ood_mean'])}): the token metric and the "
                             "judge disagree on the best model.")
        else:
            sentences.append(f"{shift}, open questions: the judge and exact match agree that {judge_first['label']} "
                             "is best on ood.")
    return sentences


def _w_words(w: float) -> str:
    return next(word for threshold, word in W_WORDS if w >= threshold)


def findings(summary: pd.DataFrame, comparisons: pd.DataFrame, concordance: pd.DataFrame,
             dependence_rows: pd.DataFrame | None, settings: ReportSettings,
             not_answerable: Sequence[str] = ()) -> list[str]:
    """The findings section: one sentence per finding, each with its numbers."""
    sentences: list[str] = []
    models = summary[summary["role"] == MODEL]
    if models.empty:
        return ["No fine-tuned model was found: the report shows baselines only, so no finding about methods can "
                "be stated."]
    seeds = models["rr_n"].max()
    if seeds is not None and not math.isnan(seeds) and seeds < 2:
        sentences.append("Each method has one seed: the spread between training runs is unknown, and every ± is "
                         "missing; the intervals cover the questions only.")
    for shift, rows in summary.groupby("shift", sort=False):
        sentences += _shift_findings(str(shift), rows, comparisons, settings)
    for _, line in concordance.iterrows():
        if math.isnan(line["w"]):
            continue
        what = ("the shifts agree on which method is most robust" if line["question"] == METHODS_WITHIN_SHIFTS
                else "the methods agree on which shift is hardest" if line["question"] == SHIFTS_WITHIN_METHODS
                else line["question"])
        ranked = [part.split(":")[0].strip() for part in str(line["mean_ranks"]).split(";") if part.strip()]
        named = (f"most robust on average: {ranked[0]}" if line["question"] == METHODS_WITHIN_SHIFTS
                 else f"hardest on average: {ranked[-1]}") if ranked else "no ranking"
        sentences.append(f"{line['metric_label']} ({KIND_WORDS.get(line['answer_kind'], line['answer_kind'])}): "
                         f"Kendall's W = {_f(line['w'], 2)} ({_w_words(line['w'])} agreement; Friedman p = "
                         f"{_f(line['p_value'])}; {line['m']} {line['across']} × {line['n']} {line['ranked']}) on "
                         f"whether {what}; {named}.")
    sentences += list(not_answerable)
    if dependence_rows is not None and not dependence_rows.empty:
        no_image = dependence_rows[dependence_rows["condition"] == "no image"]
        for (shift, model), group in no_image.groupby(["shift", "model"], sort=False):
            compared, changed = group["answers_compared"].sum(), group["answers_changed"].sum()
            if compared:
                sentences.append(f"{shift}: {model} changes {changed} of {compared} answers "
                                 f"({changed / compared:.0%}) when the image is removed (R3: how much it uses "
                                 "the image).")
    return sentences
