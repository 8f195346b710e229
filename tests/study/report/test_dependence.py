"""The report's R3 table (answers changed without / with another image) and its pooled judge agreement, on
real eval folders, against counts made by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sure_vqa import naming
from sure_vqa.study.report import build_report
from tests.helpers.report_fixtures import JUDGE, D, F, V, finetuned_dir, run_dir, write_run


def set_preds(eval_dir: Path, preds: list[str]) -> None:
    path = eval_dir / naming.TEST_RESULTS_FILE
    rows = json.loads(path.read_text(encoding="utf-8"))
    for row, pred in zip(rows, preds, strict=False):
        row["pred"] = pred
    path.write_text(json.dumps(rows), encoding="utf-8")


def add_generate_scores(eval_dir: Path, pairs: list[tuple[float, float]]) -> None:
    """Score mode's judge file: each row's score and generate mode's score beside it."""
    path = eval_dir / naming.judge_metrics_files(JUDGE)[0]
    summary, *rows = json.loads(path.read_text(encoding="utf-8"))
    for row, (score, generated) in zip(rows, pairs, strict=True):
        row["score"], row["generate_score"] = score, generated
    path.write_text(json.dumps([summary, *rows]), encoding="utf-8")


def test_answers_changed_without_the_image_pooled_over_seeds(tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    image_preds = ["liver", "lung", "CT", "yes"]  # 4 open rows (write_run's defaults), preds replaced
    no_image = {123: ["liver", "liver", "MRI", "yes"],  # 2 changed
                124: ["Liver.", "lung", "CT", "no"]}  # "Liver." normalises to "liver": 1 changed
    for seed in (123, 124):
        model = finetuned_dir(root, D, F, V, "lora", seed)
        for split in ("iid", "ood"):
            set_preds(write_run(run_dir(model, D, F, V, split)), image_preds)
            set_preds(write_run(run_dir(model, D, F, V, split, no_image=True)), no_image[seed])
            set_preds(write_run(run_dir(model, D, F, V, split, image_control="blank")), image_preds)
        if seed == 123:
            add_generate_scores(run_dir(model, D, F, V, "iid"), [(4, 4), (2, 2), (1, 1), (4, 5)])
    files = build_report(root, progress=False)
    table = pd.read_csv(files.dependence_csv)
    no = table[(table["condition"] == "no image") & (table["split"] == "iid")].iloc[0]
    assert (no["answers_compared"], no["answers_changed"]) == (16, 3)  # 8 open + 8 closed rows; closed all "yes"
    blank = table[(table["condition"] == "blank image") & (table["split"] == "ood")].iloc[0]
    assert (blank["answers_compared"], blank["answers_changed"]) == (16, 0)
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "does the model look at the image? (R3)" in markdown and "3/16 (19%)" in markdown
    assert "does the model look at the image? (R3)" in files.html.read_text(encoding="utf-8")
    # pairs (score, generate) (4,4) (2,2) (1,1) (4,5): 3 of 4 equal, quadratic kappa 1 - 1/17 (by hand in
    # tests/evaluate/judge/test_score_mode.py)
    assert f"{JUDGE} open: 4 answers, 75% the same score, quadratic κ 0.94" in markdown
