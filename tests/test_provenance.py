"""Never score old answers: every metrics file records the SHA-256 of the test_results.json it scored; the study
rescores a run whose answers changed and skips the rest; the report leaves out (and names) metrics of other
answers and names the unverified ones it uses; the rater study refuses scores of other answers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from sure_vqa import eval_folder, naming
from sure_vqa.config import DataError
from sure_vqa.rater import selection
from sure_vqa.study import run as study
from sure_vqa.study.report import render
from tests.helpers.fixtures_data import write_slake
from tests.helpers.rater_helpers import JUDGE, make_eval_folder
from tests.helpers.study_fixtures import SLAKE_SMALL

TRADITIONAL = "metric_type=[traditional_metrics]"


def cfg_root(cfg) -> Path:
    return Path(cfg.paths.experiment_root).parent


def _compose(tmp_path: Path, *overrides: str):
    return study.compose_study([f"paths.dataset_root={tmp_path / 'data'}",
                                f"paths.experiment_root={tmp_path / 'exp'}", *overrides])


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def _change_an_open_answer(folder: Path, new_pred: str) -> str:
    """Rewrites one open row's prediction in test_results.json (as a rerun with other settings would); returns
    its qid."""
    rows = _read(folder / naming.TEST_RESULTS_FILE)
    row = next(r for r in rows if r["answer_type"] == "OPEN")
    row["pred"] = new_pred
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows), encoding="utf-8")
    return str(row["qid"])


@pytest.fixture()
def most_frequent_study(tmp_path: Path):
    """The most-frequent baseline's cell run once (no model needed): its iid and ood eval folders, scored."""
    write_slake(tmp_path / "data", files=SLAKE_SMALL)
    cfg = _compose(tmp_path, "method=most_frequent", TRADITIONAL)
    assert [outcome for _, outcome in study.run_cell(cfg).steps] == ["done", "done", "done"]
    model_dir = naming.most_frequent_dir(tmp_path / "exp", "SLAKE_train_iid_modality_X-Ray")
    folders = {split: naming.eval_dir(model_dir, f"SLAKE_test_{split}_modality_X-Ray") for split in ("iid", "ood")}
    return cfg, folders


def test_every_metrics_file_records_the_answers_it_scored(most_frequent_study) -> None:
    _, folders = most_frequent_study
    for folder in folders.values():
        expected = hashlib.sha256((folder / naming.TEST_RESULTS_FILE).read_bytes()).hexdigest()
        for name in (naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE):
            summary = _read(folder / name)[0]
            assert summary[eval_folder.SOURCE_KEY] == expected
            assert eval_folder.provenance(folder / name, expected).status == eval_folder.CURRENT
        assert _read(folder / naming.OPEN_METRICS_FILE)[0]["scored_with"] == {"extra_metrics": []}


def test_the_study_rescores_a_run_whose_answers_changed_and_skips_the_rest(most_frequent_study) -> None:
    cfg, folders = most_frequent_study
    ood_files = {name: (folders["ood"] / name).read_bytes()
                 for name in (naming.OPEN_METRICS_FILE, naming.CLOSED_METRICS_FILE)}
    qid = _change_an_open_answer(folders["iid"], "a brand new answer")

    # evaluation only: the baseline itself would recompute its answers from the split files (and so restore them)
    again = study.run_cell(_compose(cfg_root(cfg), "method=most_frequent", TRADITIONAL, "steps=[evaluation]"))
    assert again.steps == [("most frequent answer", "skipped (test_results.json exist; inference not in steps)"),
                           ("evaluate most frequent iid", "rescored"),
                           ("evaluate most frequent ood", "skipped (metrics are current)")]
    rescored = _read(folders["iid"] / naming.OPEN_METRICS_FILE)
    assert next(r for r in rescored[1:] if str(r["qid"]) == qid)["pred"] == "a brand new answer"
    assert rescored[0][eval_folder.SOURCE_KEY] == hashlib.sha256(
        (folders["iid"] / naming.TEST_RESULTS_FILE).read_bytes()).hexdigest()
    assert {name: (folders["ood"] / name).read_bytes() for name in ood_files} == ood_files  # untouched
    # with inference in the steps, the answers that follow from the split files come back, and are scored again
    assert [outcome for _, outcome in study.run_cell(cfg).steps] == ["done", "rescored",
                                                                    "skipped (metrics are current)"]
    assert [outcome for _, outcome in study.run_cell(cfg).steps] == [
        "skipped (test_results.json are current)", "skipped (metrics are current)", "skipped (metrics are current)"]


def test_the_report_leaves_out_metrics_of_other_answers_and_names_them(most_frequent_study) -> None:
    cfg, folders = most_frequent_study
    _change_an_open_answer(folders["ood"], "changed after scoring")  # and run_eval is not run again
    html = study.run_report(cfg)
    missing = pd.read_csv(html.parent / render.REPORT_MISSING_CSV)
    stale = missing[missing["what"] == "stale metrics (not used)"]
    assert sorted(Path(p).name for p in stale["path"]) == [naming.CLOSED_METRICS_FILE, naming.OPEN_METRICS_FILE]
    assert all("scored other answers" in reason for reason in stale["reason"])
    summary = pd.read_csv(html.parent / render.REPORT_SUMMARY_CSV)
    assert summary["ood_mean"].isna().all() and summary["iid_mean"].notna().all()  # the ood scores are not used
    assert "- metrics files of other answers (stale, not used): 2\n" in (html.parent / render.REPORT_MARKDOWN).read_text()


def test_metrics_without_a_record_are_used_and_named_unverified(most_frequent_study) -> None:
    """Files written before the record existed (or by the original code) are read as before, and flagged."""
    cfg, folders = most_frequent_study
    path = folders["iid"] / naming.OPEN_METRICS_FILE
    content = _read(path)
    del content[0][eval_folder.SOURCE_KEY]
    path.write_text(json.dumps(content), encoding="utf-8")
    html = study.run_report(cfg)
    missing = pd.read_csv(html.parent / render.REPORT_MISSING_CSV)
    unverified = missing[missing["what"] == "unverified metrics (used)"]
    assert [Path(p).name for p in unverified["path"]] == [naming.OPEN_METRICS_FILE]
    summary = pd.read_csv(html.parent / render.REPORT_SUMMARY_CSV)
    assert summary[summary["answer_kind"] == "open"]["iid_mean"].notna().all()
    # ... and the study does not take an unverified file as done: it scores it again, which records the source
    steps = dict(study.run_cell(cfg).steps)
    assert steps["evaluate most frequent iid"] == "rescored"
    assert eval_folder.SOURCE_KEY in _read(path)[0]


def test_a_missing_test_results_file_makes_its_metrics_stale(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    metrics = eval_folder.write_metrics_file(folder / naming.OPEN_METRICS_FILE, {"avg_f1_score": 1.0},
                                             [{"qid": "1", "f1_score": 1.0}], source_sha256="ab" * 32)
    assert eval_folder.provenance(metrics, None).status == eval_folder.STALE
    assert eval_folder.provenance(metrics, "ab" * 32).status == eval_folder.CURRENT
    scores = eval_folder.read_run(folder)
    assert scores.metrics == {} and "no longer there" in scores.stale[naming.OPEN_METRICS_FILE]


def _stamp(path: Path, results: Path) -> None:
    """Records `results`' hash in a metrics file, as run_eval.py writes it."""
    content = _read(path)
    content[0][eval_folder.SOURCE_KEY] = hashlib.sha256(results.read_bytes()).hexdigest()
    path.write_text(json.dumps(content), encoding="utf-8")


def test_the_rater_selection_refuses_judge_scores_of_other_answers(tmp_path: Path) -> None:
    eval_dir, image_root = make_eval_folder(tmp_path)
    judge_file = eval_dir / naming.judge_metrics_files(JUDGE)[0]
    results = eval_dir / naming.TEST_RESULTS_FILE
    _stamp(judge_file, results)
    settings = selection.SelectionSettings(answer_kind="open", num_questions=5, seed=1, judge=JUDGE)

    def resolve(row: dict) -> Path:
        return image_root / row["img_name"]

    rows = _read(results)
    rows[0]["pred"] = "another answer"  # judged before this change: its score belongs to the old answer
    results.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"gemma_metrics.json scored other answers"):
        selection.create_study(eval_dir, settings, resolve, study_dir=tmp_path / "study")
    assert not (tmp_path / "study").exists()

    _stamp(judge_file, results)  # scored again: accepted
    study_dir = selection.create_study(eval_dir, settings, resolve, study_dir=tmp_path / "study")
    assert (study_dir / "study.json").is_file()


def test_rater_analysis_refuses_metrics_of_other_answers(tmp_path: Path) -> None:
    from sure_vqa.rater.analysis import load_automatic_scores

    eval_dir, _ = make_eval_folder(tmp_path)
    metrics = eval_dir / naming.OPEN_METRICS_FILE
    _stamp(metrics, eval_dir / naming.TEST_RESULTS_FILE)
    table, _ = load_automatic_scores(eval_dir, "open", None)
    assert len(table) == 30
    _change_an_open_answer(eval_dir, "something else")
    with pytest.raises(DataError, match="open_ended_metrics.json scored other answers"):
        load_automatic_scores(eval_dir, "open", None)


def test_qids_that_differ_only_in_surrounding_spaces_are_one_question(tmp_path: Path) -> None:
    rows = [{"qid": q, "question": "q", "gt": "a", "pred": "a", "answer_type": "OPEN"} for q in ("620", "620 ", "7")]
    path = tmp_path / naming.TEST_RESULTS_FILE
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"1 qids occur more than once \('620' / '620 ' \(2 times\)\)"):
        eval_folder.read_test_results(path)
    assert eval_folder.repeated_qids(["1", " 1", "1 ", "2"]) == [(["1", " 1", "1 "], 3)]


def test_the_report_leaves_out_answers_to_an_older_split_file(tmp_path: Path) -> None:
    """split file -> test_results.json: inference records a digest of the questions it was asked; when the split
    file has changed since, the run's scores are not used and the report says why."""
    from sure_vqa.data.records import records_digest
    from sure_vqa.data.splits import split_records
    from sure_vqa.study.report import build_report
    from tests.helpers.report_fixtures import D, F, V, finetuned_dir, run_dir

    write_slake(tmp_path / "data", files=SLAKE_SMALL)
    root = tmp_path / "exp"
    model = finetuned_dir(root, D, F, V, "lora", 123)
    for split in ("iid", "ood"):
        records = split_records(tmp_path / "data", "SLAKE", "test", split, "modality", "X-Ray")
        folder = run_dir(model, D, F, V, split)
        folder.mkdir(parents=True)
        rows = [{"qid": r.qid, "question": r.question, "gt": r.answer, "pred": r.answer, "answer_type": r.answer_type,
                 "img_name": r.img_name} for r in records]
        (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows))
        (folder / naming.INFERENCE_INFO_FILE).write_text(json.dumps({
            "settings": {"split_digest": records_digest(records), "num_questions": len(records)},
            "split_selection": {"dataset": "SLAKE", "mod": "test", "split": split, "data_shift": "modality",
                                "ood_value": "X-Ray", "max_samples": None}}))
        study._evaluate(_compose(tmp_path, TRADITIONAL), {"dataset": "null"}, folder, study.CellReport("c"), "e")

    def report_of() -> tuple[pd.DataFrame, pd.DataFrame]:
        files = build_report(root, progress=False, dataset_root=tmp_path / "data")
        return pd.read_csv(files.missing_csv), pd.read_csv(files.summary_csv)

    missing, summary = report_of()
    open_rows = summary[summary["answer_kind"] == "open"]  # the ood split has open questions only
    assert "stale metrics (not used)" not in set(missing["what"]) and open_rows["ood_mean"].notna().all()

    test_file = tmp_path / "data" / "SLAKE" / "test.json"
    entries = json.loads(test_file.read_text())
    entries[3]["question"] = "Which modality was used for this image?"  # qid 33, an ood question, reworded
    test_file.write_text(json.dumps(entries))
    missing, summary = report_of()
    stale = missing[missing["what"] == "stale metrics (not used)"]
    assert [Path(p).name for p in stale["path"]] == [naming.TEST_RESULTS_FILE]
    assert stale["run"].tolist() == ["SLAKE_test_ood_modality_X-Ray"]
    assert "answers the split file as it was at inference (4 questions)" in stale["reason"].iloc[0]
    assert summary["ood_mean"].isna().all() and summary[summary["answer_kind"] == "open"]["iid_mean"].notna().all()
