"""The eval folder's one reader and writer (sure_vqa.eval_folder): what every stage sees of the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sure_vqa import eval_folder, naming
from sure_vqa.config import ConfigError, DataError
from sure_vqa.rater import selection

# A row as the original SURE-VQA code wrote it: a null ground truth and a numeric answer.
ORIGINAL_ROWS = [
    {"qid": 7, "question": "How many?", "gt": None, "pred": 2, "answer_type": "open", "img_name": "a.jpg"},
    {"qid": 8, "question": "Is it CT?", "gt": "Yes", "pred": "yes", "answer_type": "CLOSED", "img_name": "b.jpg"},
]


def test_a_null_ground_truth_is_the_same_for_evaluation_and_the_rater_study(tmp_path: Path) -> None:
    path = tmp_path / naming.TEST_RESULTS_FILE
    path.write_text(json.dumps(ORIGINAL_ROWS))
    for rows in (eval_folder.read_test_results(path), selection.load_test_results(path)):
        assert [(r["qid"], r["gt"], r["pred"], r["answer_type"]) for r in rows] == [
            ("7", "", "2", "OPEN"), ("8", "Yes", "yes", "CLOSED")]


def test_metrics_files_carry_the_format_version_and_read_back(tmp_path: Path) -> None:
    path = eval_folder.write_metrics_file(tmp_path / naming.OPEN_METRICS_FILE, {"avg_f1_score": 0.5, "n_rows": 2},
                                          [{"qid": "1", "f1_score": 1.0}, {"qid": "2", "f1_score": 0.0}],
                                          source_sha256="0f" * 32)
    content = json.loads(path.read_text())
    assert content[0] == {"avg_f1_score": 0.5, "n_rows": 2, "format_version": 1, "test_results_sha256": "0f" * 32}
    scores = eval_folder.read_metrics_file(path, eval_folder.TRADITIONAL)["f1_score"]
    assert (scores.mean, scores.per_question, scores.unscored) == (0.5, {"1": 1.0, "2": 0.0}, 0)


def test_judge_files_of_the_original_code_are_read_like_ours(tmp_path: Path) -> None:
    # The original wrote `<judge>_score` and kept an unparseable reply as the score; this project writes `score`.
    original = tmp_path / "original" / "gemma_metrics.json"
    original.parent.mkdir()
    original.write_text(json.dumps([{"avg_gemma_score": 4.0}, {"qid": 1, "gemma_score": 4},
                                    {"qid": 2, "gemma_score": "The answer is partly right"}]))
    ours = tmp_path / "ours" / "gemma_metrics.json"
    ours.parent.mkdir()
    (ours.parent / naming.TEST_RESULTS_FILE).write_text("[]")
    eval_folder.write_metrics_file(ours, {"avg_score": 4.0, "n_failures": 1},
                                   [{"qid": "1", "score": 4}, {"qid": "2", "score": None}],
                                   source_sha256=eval_folder.results_sha256(ours.parent))
    for path in (original, ours):
        assert eval_folder.read_judge_scores(path, "gemma") == {"1": 4.0, "2": None}
        run = eval_folder.read_run(path.parent)
        judge = run.metrics[("open", "gemma")]
        assert (judge.mean, judge.per_question, judge.unscored) == (4.0, {"1": 4.0}, 1)


def test_metric_files_of_each_metric_type() -> None:
    assert eval_folder.metric_files(["traditional_metrics", "gemma", "gemma_closed"], "gemma") == [
        naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE, "gemma_metrics.json", "gemma_metrics_closed.json"]
    with pytest.raises(ConfigError, match="metric_type contains 'smollm2'; valid values: traditional_metrics, gemma, gemma_closed"):
        eval_folder.metric_files(["smollm2"], "gemma")


@pytest.mark.parametrize(("content", "message"), [
    ("[]", "holds no rows"),
    ('{"qid": 1}', "must hold a JSON list"),
    ('[{"qid": 1, "question": "q", "gt": "a", "pred": null, "answer_type": "OPEN"}]', "pred=null"),
    ('[{"qid": 1, "question": "q", "gt": "a", "pred": "b", "answer_type": "maybe"}]', "answer_type='maybe'"),
])
def test_bad_test_results_are_refused_with_the_file_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / naming.TEST_RESULTS_FILE
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        eval_folder.read_test_results(path)
    assert str(path) in str(caught.value)
