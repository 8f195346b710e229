"""Writing the report: CSV tables, a Markdown summary and one self-contained HTML page (plots embedded as PNG).

The display tables are built once from the summary DataFrame and rendered twice (tabulate for Markdown, pandas
for HTML), so the two documents cannot disagree. Every file is written atomically.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd

from sure_vqa.atomic_io import write_text_atomic
from sure_vqa.eval_folder import CLOSED, OPEN, TRADITIONAL
from sure_vqa.study.report import dependence
from sure_vqa.study.report.grid import MODEL
from sure_vqa.study.report.tables import JUDGE, ReportSettings

# The report's files, in naming.report_dir(experiment root).
REPORT_SUMMARY_CSV = "robustness.csv"  # one row per dataset × shift × method × metric
REPORT_CORRUPTION_CSV = "corruptions.csv"  # one row per corrupted run setting × method × metric
REPORT_DEPENDENCE_CSV = "image_dependence.csv"  # one row per model × image control × split: answers changed
REPORT_MISSING_CSV = "missing_runs.csv"  # expected runs (or files) that were not found
REPORT_COMPARISONS_CSV = "comparisons.csv"  # one row per shift × pair of models × headline metric (paired)
REPORT_SUBGROUPS_CSV = "subgroups.csv"  # one row per shift × model × headline metric × field × value
REPORT_CONCORDANCE_CSV = "concordance.csv"  # Kendall's W per headline metric, across shifts and across methods
REPORT_MARKDOWN = "report.md"
REPORT_HTML = "report.html"
KIND_TITLES = {OPEN: "open questions", CLOSED: "closed questions"}


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_pm(mean: float, std: float, digits: int = 3) -> str:
    """`mean ± std`; the mean alone when there is one seed (std undefined)."""
    if mean is None or math.isnan(mean):
        return "–"
    return fmt(mean, digits) if std is None or math.isnan(std) else f"{fmt(mean, digits)} ± {fmt(std, digits)}"


def fmt_count(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(int(value))


def headline_metrics(rows: pd.DataFrame, kind: str, settings: ReportSettings) -> list[str]:
    """Metric labels to plot for one answer kind: the configured ones that exist (`judge` = every judge)."""
    present = rows[rows["answer_kind"] == kind]
    chosen: list[str] = []
    for wanted in settings.headline.get(kind, []):
        if wanted == JUDGE:
            chosen += list(dict.fromkeys(present.loc[present["source"] != TRADITIONAL, "metric_label"]))
        else:
            chosen += list(dict.fromkeys(present.loc[present["metric"] == wanted, "metric_label"]))
    chosen = list(dict.fromkeys(chosen))
    return chosen or list(dict.fromkeys(present["metric_label"]))[:3]


def metric_table(rows: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """The display table of one shift × answer kind × metric: one line per model or baseline."""
    is_judge = bool((rows["source"] != TRADITIONAL).any())
    table = pd.DataFrame({
        "model / baseline": rows["label"],
        "type": rows["role"],
        "iid": [fmt_pm(m, s) for m, s in zip(rows["iid_mean"], rows["iid_std"], strict=True)],
        "ood": [fmt_pm(m, s) for m, s in zip(rows["ood_mean"], rows["ood_std"], strict=True)],
        "RR (ood/iid)": [fmt_pm(m, s) for m, s in zip(rows["rr_mean"], rows["rr_std"], strict=True)],
        f"iid − ood [{confidence:.0%} CI]": [
            f"{fmt(d)} [{fmt(lo)}, {fmt(hi)}]"
            for d, lo, hi in zip(rows["diff_mean"], rows["diff_ci_low"], rows["diff_ci_high"], strict=True)
        ],
        "seeds": rows["seeds"],
        "questions (iid/ood)": [f"{i}/{o}" for i, o in zip(rows["iid_questions"], rows["ood_questions"],
                                                           strict=True)],
        "images (iid/ood)": [f"{i}/{o}" for i, o in zip(rows["iid_images"], rows["ood_images"], strict=True)],
    })
    if is_judge:
        table["judge failures (iid/ood)"] = [f"{fmt_count(i)}/{fmt_count(o)}" for i, o in
                                             zip(rows["judge_failures_iid"], rows["judge_failures_ood"], strict=True)]
    elif rows["metric"].eq("accuracy").any():
        table["undefined (iid/ood)"] = [f"{fmt_count(i)}/{fmt_count(o)}" for i, o in
                                        zip(rows["undefined_iid"], rows["undefined_ood"], strict=True)]
    return table.reset_index(drop=True)


def corruption_display(rows: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Strengths as columns, one line per model × split × metric (headline metrics only)."""
    rows = rows[rows["metric_label"].isin(metrics)]
    strengths = list(dict.fromkeys(rows.sort_values(["order", "strength"])["strength"]))
    lines = []
    for (label, split, metric), group in rows.groupby(["label", "split", "metric_label"], sort=False):
        by_strength = group.set_index("strength")
        line = {"model": label, "split": split, "metric": metric}
        for strength in strengths:
            line[strength] = (fmt_pm(by_strength.loc[strength, "mean"], by_strength.loc[strength, "std"])
                              if strength in by_strength.index else "–")
        lines.append(line)
    return pd.DataFrame(lines, columns=["model", "split", "metric", *strengths])


@dataclass
class Section:
    """One shift's part of the report."""

    title: str
    anchor: str
    kinds: list[dict] = field(default_factory=list)  # {title, plot, tables: [(metric, frame, headline)]}
    corruption: list[dict] = field(default_factory=list)  # {title, plot, table}
    notes: list[str] = field(default_factory=list)
    dependence: pd.DataFrame | None = None  # answers changed without / with another image (dependence.display)
    comparisons: pd.DataFrame | None = None  # paired comparisons (comparisons.comparison_display)
    subgroups: pd.DataFrame | None = None  # worst and best group per field (subgroups.subgroup_display)


def build_sections(summary: pd.DataFrame, corruptions: pd.DataFrame, settings: ReportSettings,
                   plots: Mapping[tuple[str, str, str], bytes],
                   dependence_rows: pd.DataFrame | None = None,
                   comparison_rows: pd.DataFrame | None = None, subgroup_rows: pd.DataFrame | None = None,
                   have_fields: bool = True) -> list[Section]:
    from sure_vqa.study.report.comparisons import comparison_display
    from sure_vqa.study.report.subgroups import subgroup_display

    sections = []
    for index, (shift, rows) in enumerate(summary.groupby("shift", sort=False)):
        section = Section(shift, f"shift-{index}")
        if comparison_rows is not None and (comparison_rows["shift"] == shift).any():
            section.comparisons = comparison_display(comparison_rows[comparison_rows["shift"] == shift],
                                                     settings.confidence)
        if subgroup_rows is not None and (subgroup_rows["shift"] == shift).any():
            shown = subgroup_display(subgroup_rows[subgroup_rows["shift"] == shift])
            section.subgroups = shown if not shown.empty else None
        if not have_fields:
            section.notes.append("Subgroups need the split files: set dataset_root (DATASET_ROOT_DIR) for them.")
        if dependence_rows is not None and not dependence_rows.empty:
            shown = dependence.display(dependence_rows[dependence_rows["shift"] == shift])
            section.dependence = shown if not shown.empty else None
        if rows["swap"].any():
            section.notes.append("Swap rows: a model trained on this shift's ood data (the swapped shift), scored on "
                                 "this shift's iid and ood data; their iid/ood columns refer to this shift's splits.")
        mixed = rows[rows["judge_version"].fillna("").str.contains("; ")]
        for _, line in mixed.drop_duplicates(["label", "metric_label"]).iterrows():
            section.notes.append(f"{line['label']}, {line['metric_label']}: runs scored by different judges or "
                                 f"prompt versions are mixed ({line['judge_version']}); their means do not compare.")
        if not (rows["role"] == MODEL).any():
            section.notes.append("No fine-tuned model was found for this shift: only baselines.")
        for kind in (OPEN, CLOSED):
            kind_rows = rows[rows["answer_kind"] == kind]
            if kind_rows.empty:
                continue
            headline = headline_metrics(rows, kind, settings)
            tables = [(metric, metric_table(group, settings.confidence), metric in headline)
                      for metric, group in kind_rows.groupby("metric_label", sort=False)]
            tables.sort(key=lambda t: (not t[2],))
            section.kinds.append({"title": KIND_TITLES[kind], "plot": plots.get(("bars", shift, kind)),
                                  "tables": tables})
        shift_corruptions = corruptions[corruptions["shift"] == shift]
        for kind in (OPEN, CLOSED):
            kind_rows = shift_corruptions[shift_corruptions["answer_kind"] == kind]
            if kind_rows.empty:
                continue
            metrics = headline_metrics(rows, kind, settings)
            section.corruption.append({"title": KIND_TITLES[kind], "plot": plots.get(("corruption", shift, kind)),
                                       "table": corruption_display(kind_rows, metrics)})
        sections.append(section)
    return sections


def method_note(settings: ReportSettings) -> str:
    return (f"RR (relative robustness) = ood/iid = 1 − (iid − ood)/iid, computed per seed. Figures are mean ± std "
            f"(ddof=1) over seeds; a single seed shows the value alone. iid − ood comes with a {settings.confidence:.0%} "
            f"percentile bootstrap interval that resamples images, the unit of sampling: all questions about one "
            f"image move together ({settings.n_resamples} resamples, seed {settings.bootstrap_seed}; each "
            f"question's score averaged over seeds, iid and ood images resampled independently). Judge failures are answers the judge gave that could not be read as a score: they are "
            f"left out of the mean, not counted as zero. Undefined rows are closed questions whose ground truth "
            f"matches no or several answer options.")


def to_markdown(sections: Sequence[Section], missing: pd.DataFrame, header: Mapping[str, str],
                settings: ReportSettings, concordance: pd.DataFrame | None = None,
                concordance_notes: Sequence[str] = (), findings: Sequence[str] = ()) -> str:
    lines = ["# SURE-VQA robustness report", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    if findings:
        lines += ["", f"## {FINDINGS_TITLE}", "", FINDINGS_NOTE, ""] + [f"- {sentence}" for sentence in findings]
    lines += ["", method_note(settings), ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [f"> {note}" for note in section.notes]
        for kind in section.kinds:
            lines += [f"### {kind['title']}", ""]
            for metric, table, _ in kind["tables"]:
                lines += [f"#### {metric}", "", table.to_markdown(index=False), ""]
        for corruption in section.corruption:
            lines += [f"### corrupted images: {corruption['title']}", "",
                      corruption["table"].to_markdown(index=False), ""]
        if section.dependence is not None:
            lines += [f"### {DEPENDENCE_TITLE}", "", DEPENDENCE_NOTE, "", section.dependence.to_markdown(index=False),
                      ""]
        if section.comparisons is not None:
            lines += [f"### {COMPARISONS_TITLE}", "", comparisons_note(settings), "",
                      section.comparisons.to_markdown(index=False), ""]
        if section.subgroups is not None:
            lines += [f"### {SUBGROUPS_TITLE}", "", subgroups_note(settings), "",
                      section.subgroups.to_markdown(index=False), ""]
    if concordance is not None:
        lines += [f"## {CONCORDANCE_TITLE}", "", CONCORDANCE_NOTE, ""]
        lines += [f"> {note}" for note in concordance_notes] + ([""] if concordance_notes else [])
        if not concordance.empty:
            lines += [concordance.to_markdown(index=False), ""]
    lines += [f"## Missing or incomplete runs ({len(missing)})", ""]
    if missing.empty:
        lines += ["Every expected run is complete.", ""]
    else:
        shown = missing.drop(columns=["path"]).astype(object).where(missing.drop(columns=["path"]).notna(), "")
        lines += [shown.to_markdown(index=False), ""]
    return "\n".join(lines)


FINDINGS_TITLE = "Findings"
FINDINGS_NOTE = ("What the numbers below support and what they do not; each sentence is computed from them "
                 "(significance after Holm's correction at the report's confidence level).")
COMPARISONS_TITLE = "which model is better here? (paired comparisons)"
SUBGROUPS_TITLE = "who is served worst? (subgroups)"


def subgroups_note(settings: ReportSettings) -> str:
    return (f"Each model's score per value of every field of its test questions (iid and ood pooled), with a "
            f"{settings.confidence:.0%} interval that resamples images; the gap is the best minus the worst group "
            f"among groups of at least {settings.subgroup_min_questions} questions. subgroups.csv holds every "
            f"group.")
CONCORDANCE_TITLE = "do the rankings agree? (Kendall's W)"
CONCORDANCE_NOTE = ("Each method's RR (mean over seeds) ranks the methods within each shift and the shifts within "
                    "each method; W is 1 when every ranking is the same and near 0 when they share nothing. "
                    "The p-value is Friedman's test of 'no agreement'. concordance.csv holds the numbers.")


def comparisons_note(settings: ReportSettings) -> str:
    return (f"a − b on the questions both answered (each question's score averaged over seeds), with a "
            f"{settings.confidence:.0%} interval that resamples images and a p-value from swapping the two models' "
            f"answers within images, Holm-corrected over this shift's comparisons; * marks p below "
            f"{1 - settings.confidence:.2f}. comparisons.csv holds every figure.")


DEPENDENCE_TITLE = "does the model look at the image? (R3)"
DEPENDENCE_NOTE = ("Answers changed: of the questions a model answered both with its image and without it (no "
                   "image), with a blank image or with another question's image (shuffled), how many got a "
                   "different answer (after normalisation), seeds pooled. A model that ignores its image changes "
                   "none.")


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SURE-VQA robustness report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
img.plot { max-width: 100%; display: block; margin: 0.5rem 0; }
.note { color: #555; font-size: 0.9rem; }
.missing td { background: #fff4f0; }
nav a { margin-right: 1rem; }
h4 { margin-bottom: 0.2rem; }
</style></head><body>
<h1>SURE-VQA robustness report</h1>
<ul>{% for key, value in header.items() %}<li>{{ key }}: {{ value }}</li>{% endfor %}</ul>
{% if findings %}<section id="findings"><h2>{{ findings_title }}</h2><p class="note">{{ findings_note }}</p>
<ul>{% for sentence in findings %}<li>{{ sentence }}</li>{% endfor %}</ul></section>{% endif %}
<p class="note">{{ note }}</p>
<nav>{% for section in sections %}<a href="#{{ section.anchor }}">{{ section.title }}</a>{% endfor %}
<a href="#missing">missing runs ({{ missing_count }})</a></nav>
{% for section in sections %}
<section id="{{ section.anchor }}"><h2>{{ section.title }}</h2>
{% for note in section.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% for kind in section.kinds %}<h3>{{ kind.title }}</h3>
{% if kind.plot %}<img class="plot" alt="iid and ood scores, {{ section.title }}, {{ kind.title }}" src="data:image/png;base64,{{ kind.plot }}">{% endif %}
{% for metric, table, headline in kind.tables %}
{% if headline %}<h4>{{ metric }}</h4>{{ table | safe }}{% else %}<details><summary>{{ metric }}</summary>{{ table | safe }}</details>{% endif %}
{% endfor %}{% endfor %}
{% for corruption in section.corruption %}<h3>corrupted images: {{ corruption.title }}</h3>
{% if corruption.plot %}<img class="plot" alt="scores against corruption strength, {{ section.title }}, {{ corruption.title }}" src="data:image/png;base64,{{ corruption.plot }}">{% endif %}
{{ corruption.table | safe }}{% endfor %}
{% if section.dependence %}<h3>{{ dependence_title }}</h3><p class="note">{{ dependence_note }}</p>
{{ section.dependence | safe }}{% endif %}
{% if section.comparisons %}<h3>{{ comparisons_title }}</h3><p class="note">{{ comparisons_note }}</p>
{{ section.comparisons | safe }}{% endif %}
{% if section.subgroups %}<h3>{{ subgroups_title }}</h3><p class="note">{{ subgroups_note }}</p>
{{ section.subgroups | safe }}{% endif %}
</section>{% endfor %}
{% if concordance is not none %}<section id="concordance"><h2>{{ concordance_title }}</h2>
<p class="note">{{ concordance_note }}</p>{% for note in concordance_notes %}<p class="note">{{ note }}</p>{% endfor %}
{{ concordance | safe }}</section>{% endif %}
<section id="missing"><h2>Missing or incomplete runs ({{ missing_count }})</h2>
{% if missing_count %}{{ missing | safe }}{% else %}<p>Every expected run is complete.</p>{% endif %}</section>
</body></html>
"""


def _html_table(frame: pd.DataFrame, css_class: str = "") -> str:
    return frame.to_html(index=False, escape=True, na_rep="", classes=css_class or None, border=0)


def to_html(sections: Sequence[Section], missing: pd.DataFrame, header: Mapping[str, str],
            settings: ReportSettings, concordance: pd.DataFrame | None = None,
            concordance_notes: Sequence[str] = (), findings: Sequence[str] = ()) -> str:
    """One self-contained page: tables as HTML, plots as base64 PNGs, no external resources."""
    environment = jinja2.Environment(autoescape=True)
    page_sections = []
    for section in sections:
        page_sections.append({
            "title": section.title, "anchor": section.anchor, "notes": section.notes,
            "kinds": [{"title": k["title"], "plot": _b64(k["plot"]),
                       "tables": [(m, _html_table(t), h) for m, t, h in k["tables"]]} for k in section.kinds],
            "corruption": [{"title": c["title"], "plot": _b64(c["plot"]), "table": _html_table(c["table"])}
                           for c in section.corruption],
            "dependence": None if section.dependence is None else _html_table(section.dependence),
            "comparisons": None if section.comparisons is None else _html_table(section.comparisons),
            "subgroups": None if section.subgroups is None else _html_table(section.subgroups),
        })
    return environment.from_string(HTML_TEMPLATE).render(
        header=header, note=method_note(settings), sections=page_sections, missing_count=len(missing),
        dependence_title=DEPENDENCE_TITLE, dependence_note=DEPENDENCE_NOTE,
        comparisons_title=COMPARISONS_TITLE, comparisons_note=comparisons_note(settings),
        subgroups_title=SUBGROUPS_TITLE, subgroups_note=subgroups_note(settings),
        findings=list(findings), findings_title=FINDINGS_TITLE, findings_note=FINDINGS_NOTE,
        concordance_title=CONCORDANCE_TITLE, concordance_note=CONCORDANCE_NOTE, concordance_notes=concordance_notes,
        concordance=None if concordance is None else (_html_table(concordance) if not concordance.empty else ""),
        missing=_html_table(missing, "missing"),
    )


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data else None


@dataclass(frozen=True)
class ReportFiles:
    out_dir: Path
    summary_csv: Path
    corruption_csv: Path
    missing_csv: Path
    markdown: Path
    html: Path
    dependence_csv: Path | None = None
    comparisons_csv: Path | None = None
    concordance_csv: Path | None = None
    subgroups_csv: Path | None = None


def write_report(out_dir: Path, summary: pd.DataFrame, corruptions: pd.DataFrame, missing: pd.DataFrame,
                 markdown: str, html: str, dependence_rows: pd.DataFrame | None = None,
                 comparisons: pd.DataFrame | None = None, concordance: pd.DataFrame | None = None,
                 subgroups: pd.DataFrame | None = None) -> ReportFiles:
    files = ReportFiles(out_dir, out_dir / REPORT_SUMMARY_CSV, out_dir / REPORT_CORRUPTION_CSV,
                        out_dir / REPORT_MISSING_CSV, out_dir / REPORT_MARKDOWN,
                        out_dir / REPORT_HTML, out_dir / REPORT_DEPENDENCE_CSV,
                        out_dir / REPORT_COMPARISONS_CSV, out_dir / REPORT_CONCORDANCE_CSV,
                        out_dir / REPORT_SUBGROUPS_CSV)
    for path, frame in ((files.comparisons_csv, comparisons), (files.concordance_csv, concordance),
                        (files.subgroups_csv, subgroups)):
        if frame is not None:
            write_text_atomic(path, frame.to_csv(index=False))
    frame = dependence_rows if dependence_rows is not None else pd.DataFrame(columns=dependence.COLUMNS)
    write_text_atomic(files.dependence_csv, frame.to_csv(index=False))
    write_text_atomic(files.summary_csv, summary.to_csv(index=False))
    write_text_atomic(files.corruption_csv, corruptions.to_csv(index=False))
    write_text_atomic(files.missing_csv, missing.to_csv(index=False))
    write_text_atomic(files.markdown, markdown)
    write_text_atomic(files.html, html)
    return files
