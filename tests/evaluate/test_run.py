"""The evaluation stage end to end on real files: run_eval's config, eval folders (ours and the original code's),
closed-question categories from each source, the four metrics files, the judge cache, and the exit-code-2 contract.
The judge is the real `openai` backend talking to a stand-in server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sure_vqa import eval_folder, naming, runs
from sure_vqa.config import ConfigError, DataError, compose
from sure_vqa.evaluate.run import run_evaluation
from tests.conftest import PROJECT_ROOT
from tests.helpers.judge_helpers import Behaviour, StandInServer, results_row, row_input, rubric_reply

# As the original SURE-VQA code wrote them: integer qids, numeric answers, no answer_categories.
ORIGINAL_ROWS = [
    {"qid": 11, "question": "How many kidneys are shown?", "gt": 2, "pred": "two", "answer_type": "OPEN",
     "img_name": "xmlab8/source.jpg"},
    {"qid": 12, "question": "Which organ is abnormal?", "gt": "left lung", "pred": "the left lung and the left lung",
     "answer_type": "OPEN", "img_name": "xmlab9/source.jpg"},
    {"qid": 13, "question": "Is the lung healthy?", "gt": "No", "pred": "No.", "answer_type": "CLOSED",
     "img_name": "xmlab9/source.jpg"},
    {"qid": 14, "question": "Is there a nodule?", "gt": "yes", "pred": "yes or no", "answer_type": "CLOSED",
     "img_name": "xmlab9/source.jpg"},
    {"qid": 15, "question": "Which modality, CT or MRI?", "gt": "CT", "pred": "MRI", "answer_type": "CLOSED",
     "img_name": "xmlab8/source.jpg"},
]


def eval_config(*overrides: str) -> Any:
    return compose(config_name="eval/metrics_eval_defaults", overrides=list(overrides))


def stand_in_judge(server: StandInServer) -> list[str]:
    return ["judge.backend=openai", f"judge.base_url={server.base_url}", "judge.max_retries=0"]


def write_results(folder: Path, rows: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows), encoding="utf-8")
    return folder


def read(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_original_folder_with_eval_dir(server: StandInServer, tmp_path: Path) -> None:
    folder = write_results(tmp_path / "eval_run", ORIGINAL_ROWS)
    cfg = eval_config(f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null", *stand_in_judge(server))
    result = run_evaluation(cfg)

    assert sorted(p.name for p in folder.iterdir()) == sorted([
        naming.TEST_RESULTS_FILE, naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE, "gemma_metrics.json",
        "gemma_metrics_closed.json", naming.JUDGE_CACHE_FILE,
        naming.run_lock_name("evaluation")])  # no temp files left, cache in the eval folder; the run's lock file

    open_metrics = read(folder / naming.OPEN_METRICS_FILE)
    # qid 11: "2" vs "two" -> all 1 (BLEU-1 1); qid 12: EM 2/5, F1 8/9, P 4/5, R 1, BLEU-1 2/5 (tests/evaluate/metrics/test_traditional.py)
    assert open_metrics[0]["format_version"] == eval_folder.FORMAT_VERSION == 1  # every metrics file is stamped
    assert open_metrics[0]["avg_exact_match_score"] == pytest.approx((1 + 2 / 5) / 2)
    assert open_metrics[0]["avg_f1_score"] == pytest.approx((1 + 8 / 9) / 2)
    assert open_metrics[0]["avg_precision"] == pytest.approx((1 + 4 / 5) / 2)
    assert open_metrics[0]["avg_recall"] == pytest.approx(1.0)
    assert open_metrics[0]["avg_bleu_score_1"] == pytest.approx((1 + 2 / 5) / 2)
    assert {"avg_bleu_score_2", "avg_bleu_score_3"} <= set(open_metrics[0])
    assert [row["qid"] for row in open_metrics[1:]] == ["11", "12"]
    assert open_metrics[1]["gt"] == "2" and open_metrics[1]["img_name"] == "xmlab8/source.jpg"

    closed = read(folder / naming.CLOSED_METRICS_FILE)
    source = hashlib.sha256((folder / naming.TEST_RESULTS_FILE).read_bytes()).hexdigest()
    # 13: correct; 14: prediction names both -> 0; 15: no categories from a non-yes/no ground truth -> undefined
    assert closed[0] == {"avg_accuracy": 0.5, "n_rows": 3, "n_scored": 2, "n_undefined": 1,
                         "categories_source": {"ground_truth_yes_no": 3}, "scored_with": {}, "format_version": 1,
                         "test_results_sha256": source}
    assert [row["accuracy"] for row in closed[1:]] == [1.0, 0.0, None]
    assert closed[3]["categories"] is None

    judge_open = read(folder / "gemma_metrics.json")
    identity = "gemma-2-9b-it (openai, greedy, max_new_tokens=64)"
    assert judge_open[0] == {
        "avg_score": 4.0, "n_rows": 2, "n_scored": 2, "n_failures": 0, "n_shortcut": 0, "judge": "gemma",
        "judge_identity": identity, "prompt_version": "open.v1", "format_version": 1,
        "scored_with": {"judge_identity": identity, "prompt_version": "open.v1", "mode": "generate",
                        "agreement": "cached"},
        "test_results_sha256": source}
    judge_closed = read(folder / "gemma_metrics_closed.json")
    # 13 "No" vs "No." is the shortcut (1); 14 and 15 are asked (the stand-in gives 1 on the closed rubric)
    assert judge_closed[0]["avg_score"] == 1.0 and judge_closed[0]["n_shortcut"] == 1
    assert judge_closed[0]["prompt_version"] == ["closed.v1", "two_option.v1"]
    assert judge_closed[0]["by_rubric"]["closed"]["n_rows"] == 3
    assert judge_closed[0]["by_rubric"]["two_option"]["avg_score"] is None
    assert [row["shortcut"] for row in judge_closed[1:]] == [True, False, False]
    assert server.requests == 4 and result.judge_asked == 4


def test_rerun_asks_the_judge_nothing_and_writes_the_same_files(server: StandInServer, tmp_path: Path) -> None:
    folder = write_results(tmp_path / "eval_run", ORIGINAL_ROWS)
    cfg = eval_config(f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null", *stand_in_judge(server))
    run_evaluation(cfg)
    first = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    asked = server.requests
    result = run_evaluation(cfg)
    assert server.requests == asked and result.judge_asked == 0 and result.judge_cached == 4
    assert {p.name: p.read_bytes() for p in folder.glob("*.json")} == first


def test_judge_failures_are_reported_next_to_the_mean(server: StandInServer, tmp_path: Path) -> None:
    def reply(messages: list[dict[str, str]]) -> str:
        return "Five stars!" if row_input(messages)["pred"] == "two" else rubric_reply(messages)

    server.behaviour = Behaviour(reply=reply)
    folder = write_results(tmp_path / "eval_run", ORIGINAL_ROWS)
    run_evaluation(eval_config(f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null",
                               "metric_type=[gemma]", *stand_in_judge(server)))
    judge_open = read(folder / "gemma_metrics.json")
    assert (judge_open[0]["avg_score"], judge_open[0]["n_scored"], judge_open[0]["n_failures"]) == (4.0, 1, 1)
    assert judge_open[1]["score"] is None and judge_open[1]["failure"] == "no score field"
    assert judge_open[1]["judge_reply"] == "Five stars!"
    assert not (folder / naming.OPEN_METRICS_FILE).exists()  # only the metric asked for


def test_settings_find_the_eval_folder_and_share_the_cache_at_the_root(server: StandInServer, tmp_path: Path) -> None:
    root = tmp_path / "experiments"
    overrides = [f"paths.experiment_root={root}", "judge=smollm2", *stand_in_judge(server)]
    cfg = eval_config(*overrides)
    folder = runs.eval_dir(cfg)  # where inference writes for these settings
    assert folder.is_relative_to(root) and folder.name == "SLAKE_test_ood_modality_X-Ray"
    rows = [results_row("1", "Is this a CT?", "yes", "yes", "CLOSED", answer_categories=["yes", "no"]),
            results_row("2", "Left or right lung, both or none?", "left lung", "both", "CLOSED",
                        answer_categories=["left lung", "right lung", "both", "none"]),
            results_row("3", "What organ?", "liver", "spleen", "OPEN", answer_categories=None)]
    write_results(folder, rows)
    result = run_evaluation(cfg)
    assert result.eval_dir == folder
    assert set(result.files) == {"open", "closed", "judge_open", "judge_closed"}
    assert (folder / "smollm2_metrics.json").is_file() and (folder / "smollm2_metrics_closed.json").is_file()
    assert naming.judge_cache_file(root).is_file() and not (folder / naming.JUDGE_CACHE_FILE).exists()
    closed = read(folder / naming.CLOSED_METRICS_FILE)
    assert closed[0]["categories_source"] == {"test_results": 2}
    assert [row["accuracy"] for row in closed[1:]] == [1.0, 0.0]
    judge_closed = read(folder / "smollm2_metrics_closed.json")
    assert [row["rubric"] for row in judge_closed[1:]] == ["closed", "two_option"]
    assert judge_closed[0]["by_rubric"]["two_option"]["prompt_version"] == "two_option.v1"
    assert judge_closed[0]["by_rubric"]["two_option"]["avg_score"] == 0.5  # the stand-in's two-option reply
    assert judge_closed[0]["avg_score"] == pytest.approx((1.0 + 0.5) / 2)

    # another run under the same root reuses the root's cache
    other = write_results(tmp_path / "elsewhere", rows)
    asked = server.requests
    again = run_evaluation(eval_config(*overrides, f"eval_dir={other}"))
    assert server.requests == asked and again.judge_cached == 2


def test_categories_from_the_dataset_split(tmp_path: Path) -> None:
    from sure_vqa.data.splits import split_records
    from tests.helpers.fixtures_data import write_slake

    write_slake(tmp_path / "datasets")
    cfg = eval_config(f"paths.dataset_root={tmp_path / 'datasets'}", f"paths.experiment_root={tmp_path / 'exp'}",
                      "metric_type=[traditional_metrics]")
    records = split_records(tmp_path / "datasets", "SLAKE", "test", "ood", "modality", "X-Ray")
    closed_records = [r for r in records if r.answer_type == "CLOSED"]
    assert closed_records, "the fixture's X-Ray ood test split has closed questions"
    rows = [results_row(r.qid, r.question, r.answer, r.answer, r.answer_type) for r in records]
    folder = write_results(runs.eval_dir(cfg), rows)
    run_evaluation(cfg)
    closed = read(folder / naming.CLOSED_METRICS_FILE)
    assert closed[0]["categories_source"] == {"dataset": len(closed_records)}
    assert [row["categories"] for row in closed[1:]] == [r.categories for r in closed_records]
    assert closed[0]["n_undefined"] == 0 and closed[0]["avg_accuracy"] == 1.0  # every prediction is the answer

    write_results(folder, [*rows, results_row("9999", "?", "yes", "yes", "CLOSED")])
    with pytest.raises(DataError, match="qid '9999' of test_results.json is not in the test split "
                                        "SLAKE_test_ood_modality_X-Ray.*dataset=null"):
        run_evaluation(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["metric_type=[bleu]"], r"metric_type contains 'bleu'; valid values: traditional_metrics, gemma, gemma_closed"),
        (["judge=smollm2", "metric_type=[gemma]"],
         r"metric_type contains 'gemma'; valid values: traditional_metrics, smollm2, smollm2_closed"),
        (["metric_type=[]"], r"metric_type is empty"),
        (["extra_metrics=[bleurt]"], r"extra_metrics contains 'bleurt'"),
        (["metric_type=[gemma]", "judge.backend=openai"], r"judge.base_url is not set"),
    ],
)
def test_bad_settings_stop_before_any_work(tmp_path: Path, overrides: list[str], message: str) -> None:
    folder = write_results(tmp_path / "eval_run", ORIGINAL_ROWS)
    with pytest.raises(ConfigError, match=message):
        run_evaluation(eval_config(f"eval_dir={folder}", "dataset=null", *overrides))
    assert sorted(p.name for p in folder.iterdir()) == [naming.TEST_RESULTS_FILE]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"qid": 1, "question": "q", "gt": "a", "answer_type": "OPEN"}], r"row 0 \(qid 1\) lacks pred"),
        ([{"qid": 1, "question": "q", "gt": "a", "pred": "a", "answer_type": "MAYBE"}],
         r"answer_type='MAYBE'; valid: OPEN, CLOSED"),
        ({"qid": 1}, r"must hold a JSON list of rows"),
    ],
)
def test_bad_test_results_name_the_file(tmp_path: Path, rows: Any, message: str) -> None:
    folder = write_results(tmp_path / "eval_run", rows)
    with pytest.raises(DataError, match=message):
        run_evaluation(eval_config(f"eval_dir={folder}", "dataset=null", "metric_type=[traditional_metrics]"))


def test_missing_test_results_names_the_folder(tmp_path: Path) -> None:
    cfg = eval_config(f"paths.experiment_root={tmp_path}", "metric_type=traditional_metrics")
    with pytest.raises(ConfigError, match=r"test_results.json does not exist \(the eval folder of these settings"):
        run_evaluation(cfg)


def test_settings_without_dataset_or_eval_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset is null.*eval_dir=PATH"):
        run_evaluation(eval_config(f"paths.experiment_root={tmp_path}", "dataset=null", "metric_type=traditional_metrics"))


def run_eval(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "run_eval.py"), *overrides], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def test_run_eval_entry_point(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "eval_run", ORIGINAL_ROWS)
    done = run_eval(tmp_path, f"eval_dir={folder}", "dataset=null", "metric_type=traditional_metrics")
    assert done.returncode == 0, done.stderr
    assert read(folder / naming.CLOSED_METRICS_FILE)[0]["avg_accuracy"] == 0.5

    bad = run_eval(tmp_path, f"eval_dir={tmp_path / 'nothing'}", "dataset=null", "metric_type=traditional_metrics")
    assert bad.returncode == 2
    assert "error:" in bad.stderr and "test_results.json does not exist" in bad.stderr
