"""`make demo`, reduced (`sure-vqa demo demo_size=quick`): the whole study end to end on the demo dataset and the demo VLM, in a real
subprocess, then every expected file and the ranges of the numbers; a rerun skips what is done."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from sure_vqa import naming
from sure_vqa.images import corruptions
from sure_vqa.study.report import render
from tests.conftest import PROJECT_ROOT, SURE_VQA

pytestmark = pytest.mark.slow

SHIFT = ("demo", "modality", "X-Ray")
CORRUPTION = corruptions.uniform_settings("medium", 0.5)
QUICK_QUESTIONS = 6  # config/demo_size/quick.yaml: stages.inference.max_samples


def _test_split(split: str) -> str:
    return naming.split_name(*SHIFT[:1], "test", split, *SHIFT[1:])


def _expected_runs() -> dict[Path, list[str]]:
    """Model folder (relative to the experiment root) -> the eval runs the demo study must write."""
    train = naming.split_name(SHIFT[0], "train", "iid", *SHIFT[1:])
    train_no_image = naming.split_name(SHIFT[0], "train", "iid", *SHIFT[1:], no_image=True)
    clean = [naming.eval_run_name(_test_split(s)) for s in ("iid", "ood")]
    no_image = [naming.eval_run_name(_test_split(s), no_image=True) for s in ("iid", "ood")]
    corrupted = [naming.eval_run_name(_test_split(s), corruption=CORRUPTION) for s in ("iid", "ood")]
    tags = {
        "lora": naming.finetune_tag("lora", 3e-4, 123, ["rank16"]),
        "ia3": naming.finetune_tag("ia3", 3e-2, 123),
        "prompt": naming.finetune_tag("prompt", 3e-2, 123, ["ntok80"]),
    }
    expected = {Path(naming.experiment_name(train, tag)): clean + no_image + corrupted for tag in tags.values()}
    expected[Path(naming.experiment_name(train_no_image, tags["lora"]))] = clean + no_image
    expected[naming.most_frequent_dir(Path(), train)] = clean
    # the second shift (the iid/ood swap) has no controls (grid.control_shifts): clean runs only
    swap = ("demo", "modality", ["CT", "MRI", "Ultrasound", "Fundus", "Microscopy"])
    swap_train = naming.split_name(swap[0], "train", "iid", *swap[1:])
    swap_clean = [naming.eval_run_name(naming.split_name(swap[0], "test", s, *swap[1:])) for s in ("iid", "ood")]
    for tag in tags.values():
        expected[Path(naming.experiment_name(swap_train, tag))] = swap_clean
    expected[naming.most_frequent_dir(Path(), swap_train)] = swap_clean
    return expected


def _run_demo(out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*SURE_VQA, "demo", "demo_size=quick", f"out={out}"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=1800)


def _check_average(content: list[dict], metric: str, low: float, high: float) -> list[float]:
    """The file's `avg_<metric>` is the mean of its rows' numeric values, inside [low, high]; None only when no
    row has a value (a judge that failed every reply). Returns the values."""
    averages, rows = content[0], content[1:]
    values = [row[metric] for row in rows if isinstance(row.get(metric), int | float)]
    if values:
        assert all(low <= value <= high for value in values), (metric, values)
        assert averages[f"avg_{metric}"] == pytest.approx(sum(values) / len(values), rel=1e-12)
    else:
        assert averages[f"avg_{metric}"] is None, (metric, averages)
    return values


def test_demo_study_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo_run"
    first = _run_demo(out)
    assert first.returncode == 0, first.stderr[-4000:]
    root = out / "experiments"
    html = naming.report_dir(root) / render.REPORT_HTML
    assert f"Report: {html}" in first.stdout

    results_mtimes = {}
    for model_dir, run_names in _expected_runs().items():
        if not model_dir.name.startswith(naming.MOST_FREQUENT_PREFIX):
            assert (root / model_dir / naming.TRAINER_STATE_FILE).is_file(), model_dir
            assert (root / model_dir / naming.ADAPTER_CONFIG_FILE).is_file(), model_dir
        for run_name in run_names:
            folder = naming.eval_dir(root / model_dir, run_name)
            rows = json.loads((folder / naming.TEST_RESULTS_FILE).read_text())
            assert len(rows) == QUICK_QUESTIONS and len({r["qid"] for r in rows}) == QUICK_QUESTIONS, folder
            assert all({"qid", "question", "gt", "pred", "answer_type", "img_name"} <= set(r) for r in rows)
            if "corruption" in run_name:
                assert all(r["corruption"]["applied"] for r in rows), folder  # every image was corrupted
            results_mtimes[folder] = (folder / naming.TEST_RESULTS_FILE).stat().st_mtime_ns

            n_open = sum(row["answer_type"] == "OPEN" for row in rows)
            open_metrics = json.loads((folder / naming.OPEN_METRICS_FILE).read_text())
            assert len(open_metrics) == 1 + n_open, folder
            for key in ("exact_match_score", "f1_score", "precision", "recall",
                        "bleu_score_1", "bleu_score_2", "bleu_score_3"):
                assert len(_check_average(open_metrics, key, 0.0, 1.0)) == n_open, (folder, key)  # every row scored
            _check_average(json.loads((folder / naming.CLOSED_METRICS_FILE).read_text()), "accuracy", 0.0, 1.0)
            judge_open, judge_closed = (json.loads((folder / name).read_text())
                                        for name in naming.judge_metrics_files("smollm2"))
            for judge_file, (low, high) in ((judge_open, (1.0, 5.0)), (judge_closed, (0.0, 1.0))):
                scores = _check_average(judge_file, "score", low, high)
                # A reply without a score is a counted failure, never a zero: the counts are those of the rows.
                failed = [row for row in judge_file[1:] if row["score"] is None]
                assert (judge_file[0]["n_scored"], judge_file[0]["n_failures"]) == (len(scores), len(failed))
                assert all(row["judge_reply"] is not None and row["failure"] for row in failed), folder

    report = naming.report_dir(root)
    for name in (render.REPORT_SUMMARY_CSV, render.REPORT_CORRUPTION_CSV, render.REPORT_MISSING_CSV,
                 render.REPORT_MARKDOWN, render.REPORT_HTML):
        assert (report / name).is_file(), name
    with (report / render.REPORT_SUMMARY_CSV).open() as handle:
        summary_rows = list(csv.DictReader(handle))
    methods = {row["method"].split("_")[0] for row in summary_rows if row["role"] == "model"}
    assert {"lora", "ia3", "prompt"} <= methods
    for row in summary_rows:
        if row["metric"] == "exact_match_score" and row["iid_mean"] and row["ood_mean"]:
            assert 0.0 <= float(row["iid_mean"]) <= 1.0 and 0.0 <= float(row["ood_mean"]) <= 1.0
            if row["rr_mean"]:
                assert math.isfinite(float(row["rr_mean"])) and float(row["rr_mean"]) >= 0.0

    # two shifts with the same three methods: the report says whether they rank the methods alike
    with (report / render.REPORT_CONCORDANCE_CSV).open() as handle:
        concordance = list(csv.DictReader(handle))
    across_shifts = [row for row in concordance if row["ranked"] == "methods"]
    # every ranking is over the two shifts; a metric whose RR is undefined for a method (iid score 0) ranks fewer
    assert across_shifts and all(row["m"] == "2" and int(row["n"]) <= 3 for row in across_shifts), concordance
    # open questions' judge scores are 1-5, so every method has an RR there: three methods ranked on two shifts
    judged = [row for row in across_shifts if (row["metric_label"], row["answer_kind"]) == ("smollm2 judge", "open")]
    assert len(judged) == 1 and judged[0]["n"] == "3", concordance
    assert all(0.0 <= float(row["w"]) <= 1.0 for row in across_shifts if row["w"]), concordance
    # no run but the expected ones; missing: only the zero-shot model and the swap's controls (one row)
    for model_dir, run_names in _expected_runs().items():
        if "CT" in model_dir.name:  # the swap: exactly its clean runs (the first shift's image controls exist too)
            assert sorted(p.name for p in (root / model_dir / naming.EVAL_DIR).iterdir()) == sorted(run_names)
    with (report / render.REPORT_MISSING_CSV).open() as handle:  # the demo runs no zero-shot model
        assert {row["what"] for row in csv.DictReader(handle)} == {"zero-shot (pretrained)", "controls (R3)"}

    # Rerun with one run's answers changed: every step is skipped but the scoring of that run (traditional
    # metrics and judge); no answer is generated again. (A rerun with nothing changed is the same check without
    # the changed run: tests/study/test_run.py.)
    changed = next(folder for folder in results_mtimes if "lora" in folder.parent.parent.name
                   and "no_image" not in folder.parent.parent.name and folder.name == _test_split("iid"))
    rows = json.loads((changed / naming.TEST_RESULTS_FILE).read_text())
    open_row = next(row for row in rows if row["answer_type"] == "OPEN")
    open_row["pred"] = "a changed answer"
    (changed / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
    results_mtimes[changed] = (changed / naming.TEST_RESULTS_FILE).stat().st_mtime_ns
    metric_files = {p: p.stat().st_mtime_ns for p in root.rglob("*_metrics*.json")}
    again = _run_demo(out)
    assert again.returncode == 0, again.stderr[-4000:]
    for folder, mtime in results_mtimes.items():
        assert (folder / naming.TEST_RESULTS_FILE).stat().st_mtime_ns == mtime, folder
    rewritten = {p for p, mtime in metric_files.items() if p.stat().st_mtime_ns != mtime}
    assert rewritten == {changed / name for name in (naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE,
                                                     *naming.judge_metrics_files("smollm2"))}
    for name in (naming.OPEN_METRICS_FILE, naming.judge_metrics_files("smollm2")[0]):
        scored = {row["qid"]: row for row in json.loads((changed / name).read_text())[1:]}
        assert scored[open_row["qid"]]["pred"] == "a changed answer", name
