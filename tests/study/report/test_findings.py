"""The findings name what a study whose truth is known shows: three methods × three shifts × three seeds, where
LoRA loses least, prompt tuning most, and the third shift is the hardest for every method."""

import json

import numpy as np
import pytest

from sure_vqa import naming
from sure_vqa.study.report import ReportSettings, build_report
from tests.helpers.report_fixtures import finetuned_dir, run_dir

SHIFTS = [("SLAKE", "modality", "X-Ray"), ("SLAKE", "content_type", "Size"), ("OVQA", "image_organ", "LEG")]
# (iid share correct, ood share correct on the easiest shift): prompt tuning is best iid and least robust
METHODS = {"lora": (0.80, 0.75), "ia3": (0.82, 0.6), "prompt": (0.84, 0.4)}
DIFFICULTY = (1.0, 0.9, 0.8)  # the third shift is the hardest for every method
QUESTIONS, PER_IMAGE = 100, 2
SETTINGS = ReportSettings(n_resamples=2000, headline={"open": ["f1_score"], "closed": []})


def _write(folder, correct: int, seed_shift: int) -> None:
    """QUESTIONS open questions, PER_IMAGE per image; the first `correct` (rotated by the seed by one question,
    so that seeds differ a little) score 1, the rest 0."""
    folder.mkdir(parents=True)
    qids = [f"q{i}" for i in range(QUESTIONS)]
    ones = {(i + seed_shift) % QUESTIONS for i in range(correct)}
    rows = [{"qid": q, "question": "q?", "gt": "a", "pred": "a", "answer_type": "OPEN",
             "img_name": f"img{i // PER_IMAGE}.png"} for i, q in enumerate(qids)]
    scored = [{**r, "f1_score": 1.0 if i in ones else 0.0} for i, r in enumerate(rows)]
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    mean = float(np.mean([r["f1_score"] for r in scored]))
    (folder / naming.OPEN_METRICS_FILE).write_text(json.dumps([{"avg_f1_score": mean}, *scored]))


@pytest.fixture(scope="module")
def stated(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    for (dataset, field, value), difficulty in zip(SHIFTS, DIFFICULTY, strict=True):
        for method, (iid, ood) in METHODS.items():
            for offset, seed in enumerate((123, 124, 125)):
                model = finetuned_dir(root, dataset, field, value, method, seed)
                _write(run_dir(model, dataset, field, value, "iid"), round(QUESTIONS * iid), offset)
                _write(run_dir(model, dataset, field, value, "ood"), round(QUESTIONS * ood * difficulty), offset)
    files = build_report(root, settings=SETTINGS, progress=False)
    text = files.markdown.read_text()
    return text[text.index("## Findings"):text.index("RR (relative robustness)")]


def test_the_findings_name_the_most_robust_method_on_every_shift(stated):
    for dataset, field, value in SHIFTS:
        assert f"{dataset} {field}={value}, open questions, F1: the best iid model is prompt_ntok80_lr3e-2" in stated
    lines = [line for line in stated.splitlines() if "the most robust is" in line]
    assert len(lines) == 3
    for line in lines:
        assert "the most robust is lora_rank16_lr3e-4" in line and "ahead of ia3_lr3e-2" in line
        assert "that lead is significant after Holm's correction" in line


def test_the_findings_state_the_agreement_of_the_rankings(stated):
    assert ("Kendall's W = 1.00 (strong agreement; Friedman p = 0.050; 3 shifts × 3 methods) on whether the shifts "
            "agree on which method is most robust; most robust on average: lora_rank16_lr3e-4.") in stated
    assert ("Kendall's W = 1.00 (strong agreement; Friedman p = 0.050; 3 methods × 3 shifts) on whether the methods "
            "agree on which shift is hardest; hardest on average: OVQA image_organ=LEG.") in stated
