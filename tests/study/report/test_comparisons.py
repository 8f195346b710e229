"""Paired comparisons and rank concordance in the report, against hand-computed values
(docs/method.md#statistics-of-the-report)."""

import pandas as pd
import pytest

from sure_vqa.study.report import ReportSettings, build_report
from sure_vqa.study.report.comparisons import (
    METHODS_WITHIN_SHIFTS,
    SHIFTS_WITHIN_METHODS,
    concordance_table,
)
from tests.helpers.report_fixtures import D, F, V, finetuned_dir, run_dir, write_run

# Four open questions, each about its own image; every method scores 1 on every iid question, so RR = ood mean.
OOD = {"ia3": [0.0, 0.0, 0.0, 0.0], "lora": [1.0, 1.0, 1.0, 0.0], "prompt": [1.0, 1.0, 1.0, 1.0]}
SETTINGS = ReportSettings(n_resamples=4000, headline={"open": ["f1_score"], "closed": []})


@pytest.fixture(scope="module")
def comparisons(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    for method, ood in OOD.items():
        model = finetuned_dir(root, D, F, V, method, 123)
        write_run(run_dir(model, D, F, V, "iid"), [1.0, 1.0, 1.0, 1.0])
        write_run(run_dir(model, D, F, V, "ood"), ood)
    files = build_report(root, settings=SETTINGS, progress=False)
    return files, pd.read_csv(files.comparisons_csv)


def test_every_pair_of_methods_on_the_same_questions_by_hand(comparisons):
    _, table = comparisons
    table = table[table["comparison"] == "methods"].set_index(["model_a", "model_b"])
    assert sorted(table.index) == [("ia3_lr3e-2", "lora_rank16_lr3e-4"), ("ia3_lr3e-2", "prompt_ntok80_lr3e-2"),
                                   ("lora_rank16_lr3e-4", "prompt_ntok80_lr3e-2")]
    # ia3 − lora per image: -1, -1, -1, 0. The 16 sign patterns reach |total| >= 3 in 4: p = 0.25.
    # ia3 − prompt: -1 on all four: only all-plus and all-minus reach |4|: p = 2/16.
    # lora − prompt: 0, 0, 0, -1: every pattern has |total| = 1: p = 1.
    expected = {("ia3_lr3e-2", "lora_rank16_lr3e-4"): (-0.75, 0.25),
                ("ia3_lr3e-2", "prompt_ntok80_lr3e-2"): (-1.0, 0.125),
                ("lora_rank16_lr3e-4", "prompt_ntok80_lr3e-2"): (-0.25, 1.0)}
    for pair, (difference, p_value) in expected.items():
        line = table.loc[pair]
        assert line["ood_diff"] == pytest.approx(difference) and line["ood_p"] == pytest.approx(p_value)
        assert line["questions_ood"] == 4 and line["images_ood"] == 4
        assert line["rr_diff"] == pytest.approx(difference)  # iid means are 1
    # Holm over the shift's three p-values: 0.125 x 3 = 0.375, 0.25 x 2 = 0.5, 1.0 x 1 = 1.0
    assert table.loc[("ia3_lr3e-2", "prompt_ntok80_lr3e-2"), "ood_p_holm"] == pytest.approx(0.375)
    assert table.loc[("ia3_lr3e-2", "lora_rank16_lr3e-4"), "ood_p_holm"] == pytest.approx(0.5)
    assert table.loc[("lora_rank16_lr3e-4", "prompt_ntok80_lr3e-2"), "ood_p_holm"] == pytest.approx(1.0)
    # RR's p-value swaps models within iid and ood images (Monte Carlo); iid scores are equal, so it is the
    # ood sign-flip p-value up to sampling error
    assert table.loc[("ia3_lr3e-2", "lora_rank16_lr3e-4"), "rr_p"] == pytest.approx(0.25, abs=0.03)


def test_the_report_shows_the_comparisons_and_says_what_it_cannot_answer(comparisons):
    files, _ = comparisons
    markdown = files.markdown.read_text()
    assert "### which model is better here? (paired comparisons)" in markdown
    assert "-0.750 [" in markdown and "p=0.500" in markdown  # Holm's p in the display
    # one shift: whether the shifts agree on the most robust method cannot be answered yet
    assert "needs at least 2 shifts and 3 methods with RR; this study has 1 shift(s) and 3 method(s)" in markdown


def test_kendalls_w_across_shifts_and_across_methods_by_hand():
    """RR of methods A-D on three shifts, ranked within each shift (1 = highest RR) as 1 2 3 4 / 2 1 3 4 /
    1 3 2 4: W = 7/9 (tests/study/report/test_stats.py works it out); mean ranks 4/3, 2, 8/3, 4."""
    rr = {"s1": [0.9, 0.8, 0.7, 0.6], "s2": [0.8, 0.9, 0.7, 0.6], "s3": [0.9, 0.7, 0.8, 0.6]}
    rows = [{"shift": shift, "method": method, "role": "model", "answer_kind": "open", "metric": "f1_score",
             "source": "traditional", "metric_label": "F1", "rr_mean": value}
            for shift, values in rr.items() for method, value in zip("ABCD", values, strict=True)]
    table = concordance_table(pd.DataFrame(rows), SETTINGS).set_index("question")
    across_shifts = table.loc[METHODS_WITHIN_SHIFTS]
    assert (across_shifts["m"], across_shifts["n"]) == (3, 4)
    assert across_shifts["w"] == pytest.approx(7 / 9) and across_shifts["chi_square"] == pytest.approx(7.0)
    assert across_shifts["mean_ranks"] == "A: 1.33; B: 2.00; C: 2.67; D: 4.00"
    # the shifts ranked within each method (4 rankings of 3 shifts, with ties: A ranks s1 and s3 together)
    # rank sums over A, B, C, D: s1 1.5+2+2.5+2 = 8, s2 3+1+2.5+2 = 8.5, s3 1.5+3+1+2 = 7.5;
    # chi2 = [12/(m n (n+1)) * sum R^2 - 3 m (n+1)] / (1 - sum(t^3 - t) / (m (n^3 - n)))
    #      = [0.25 * 192.5 - 48] / (1 - (6 + 6 + 24) / 96) = 0.125 / 0.625 = 0.2; W = 0.2 / (4 * 2) = 0.025
    across_methods = table.loc[SHIFTS_WITHIN_METHODS]
    assert (across_methods["m"], across_methods["n"]) == (4, 3)
    assert across_methods["chi_square"] == pytest.approx(0.2) and across_methods["w"] == pytest.approx(0.025)
    assert across_methods["mean_ranks"] == "s3: 1.88; s1: 2.00; s2: 2.12"


# --- subgroups ------------------------------------------------------------------------------------------------

# The open test questions of SLAKE_SMALL's modality=X-Ray shift (iid: test rows on CT/MRI images; ood: X-Ray test
# rows and the X-Ray train rows), with each one's image, modality, location, content type and the F1 given here.
SUBGROUP_QUESTIONS = {  # qid: (image, modality, location, content_type, f1)
    "30": ("xmlab8/source.jpg", "CT", "Abdomen", "Modality", 1.0),
    "32": ("xmlab10/source.jpg", "MRI", "Brain", "Size", 0.5),
    "33": ("xmlab9/source.jpg", "X-Ray", "Chest_lung", "Modality", 0.0),
    "34": ("xmlab9/source.jpg", "X-Ray", "Chest_lung", "Position", 0.25),
    "9": ("xmlab3/source.jpg", "X-Ray", "Chest_lung", "Modality", 0.5),
    "10": ("xmlab5/source.jpg", "X-Ray", "Chest_heart", "Position", 0.0),
}


def _write_model_run(folder, split: str, qids: list[str]) -> None:
    import json

    from sure_vqa import naming

    folder.mkdir(parents=True)
    rows = [{"qid": q, "question": "q?", "gt": "a", "pred": "b", "answer_type": "OPEN",
             "img_name": SUBGROUP_QUESTIONS[q][0]} for q in qids]
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    scored = [{**r, "f1_score": SUBGROUP_QUESTIONS[r["qid"]][4]} for r in rows]
    mean = sum(r["f1_score"] for r in scored) / len(scored)
    (folder / naming.OPEN_METRICS_FILE).write_text(json.dumps([{"avg_f1_score": mean}, *scored]))
    (folder / naming.INFERENCE_INFO_FILE).write_text(json.dumps({"split_selection": {
        "dataset": "SLAKE", "mod": "test", "split": split, "data_shift": "modality", "ood_value": "X-Ray",
        "max_samples": None}}))


def test_subgroups_join_fields_through_the_split_files_by_hand(tmp_path):
    from tests.helpers.fixtures_data import write_slake
    from tests.helpers.study_fixtures import SLAKE_SMALL

    write_slake(tmp_path / "data", files=SLAKE_SMALL)
    root = tmp_path / "experiments"
    model = finetuned_dir(root, D, F, V, "lora", 123)
    _write_model_run(run_dir(model, D, F, V, "iid"), "iid", ["30", "32"])
    _write_model_run(run_dir(model, D, F, V, "ood"), "ood", ["33", "34", "9", "10"])
    settings = ReportSettings(n_resamples=1000, headline={"open": ["f1_score"], "closed": []},
                              subgroup_min_questions=1)
    files = build_report(root, settings=settings, progress=False, dataset_root=tmp_path / "data")
    table = pd.read_csv(files.subgroups_csv)
    by = table.set_index(["field", "value"])
    # modality: CT {30: 1.0}; MRI {32: 0.5}; X-Ray {33: 0, 34: 0.25, 9: 0.5, 10: 0} = 0.1875 over 4 questions
    # on 3 images (xmlab9 twice); the gap is 1.0 - 0.1875
    assert by.loc[("modality", "CT"), "mean"] == pytest.approx(1.0)
    assert by.loc[("modality", "X-Ray"), "mean"] == pytest.approx(0.1875)
    assert (by.loc[("modality", "X-Ray"), "questions"], by.loc[("modality", "X-Ray"), "images"]) == (4, 3)
    assert by.loc[("modality", "X-Ray"), "is_worst"] and by.loc[("modality", "CT"), "is_best"]
    assert by.loc[("modality", "MRI"), "worst_gap"] == pytest.approx(0.8125)
    # location: Chest_lung {33, 34, 9} = 0.25 on 2 images; content type: Position {34, 10} = 0.125
    assert by.loc[("location", "Chest_lung"), "mean"] == pytest.approx(0.25)
    assert by.loc[("location", "Chest_lung"), "images"] == 2
    assert by.loc[("content_type", "Position"), "mean"] == pytest.approx(0.125)
    assert by.loc[("content_type", "Modality"), "mean"] == pytest.approx(0.5)
    low, high = by.loc[("modality", "X-Ray"), ["ci_low", "ci_high"]]
    assert low <= 0.1875 <= high
    assert ("answer_type", "OPEN") not in by.index  # one value only: not a subgroup
    markdown = files.markdown.read_text()
    assert "### who is served worst? (subgroups)" in markdown and "X-Ray: 0.188" in markdown
    # with the default minimum (5 questions) no group decides a gap
    default = build_report(root, settings=ReportSettings(n_resamples=200, headline=settings.headline),
                           progress=False, dataset_root=tmp_path / "data")
    assert pd.read_csv(default.subgroups_csv)["worst_gap"].isna().all()
