"""The most-frequent-answer baseline (docs/method.md#baselines-and-robustness) on hand-made train splits, with hand-computed answers."""

import json
import os
import subprocess

import pytest

from sure_vqa import naming
from sure_vqa.config import DataError
from sure_vqa.data.records import QARecord
from sure_vqa.study.baselines import MostFrequentAnswer, result_rows, run_most_frequent, write_results
from tests.conftest import PROJECT_ROOT, SURE_VQA
from tests.helpers.fixtures_data import write_slake
from tests.helpers.study_fixtures import SLAKE_SMALL


def record(qid, question, answer, answer_type="OPEN", content_type=None, question_type=None, categories=None):
    fields = {}
    if content_type:
        fields["content_type"] = content_type
    if question_type:
        fields["question_type"] = question_type
    return QARecord(qid=str(qid), image=f"imgs/{qid}.png", img_name=f"{qid}.png", question=question,
                    answer=answer, answer_type=answer_type, source="train", fields=fields, categories=categories)


TRAIN = [
    record(1, "What organ is shown?", "Liver", content_type="Organ"),
    record(2, "What organ is shown?", "liver", content_type="Organ"),  # same answer, other case
    record(3, "What  organ is SHOWN?", "Kidney", content_type="Organ"),  # same question, other spacing/case
    record(4, "Where is the lesion?", "left", content_type="Position"),
    record(5, "Where is the tumor?", "right", content_type="Position"),  # Position/OPEN: left 1, right 1 -> tie
    record(6, "Is there a lesion?", "yes", "CLOSED", content_type="Abnormality", categories=["yes", "no"]),
    record(7, "Is it healthy?", "no", "CLOSED", content_type="Abnormality", categories=["yes", "no"]),
    record(8, "Is the lung healthy?", "no", "CLOSED", content_type="Abnormality", categories=["yes", "no"]),
    record(9, "Which plane, axial or coronal?", "axial", "CLOSED", question_type="PLANE",
           categories=["axial", "coronal"]),
]


def test_question_level_merges_case_and_spacing():
    model = MostFrequentAnswer.fit(TRAIN)
    prediction = model.predict(record(100, "what organ is shown?", "Spleen", content_type="Organ"))
    # 'liver' twice (Liver, liver) against 'kidney' once; the first spelling seen is kept.
    assert (prediction.answer, prediction.level) == ("Liver", "question")


def test_question_type_level_and_alphabetical_tie():
    model = MostFrequentAnswer.fit(TRAIN)
    prediction = model.predict(record(101, "Where is the cyst?", "left", content_type="Position"))
    assert (prediction.answer, prediction.level) == ("left", "question_type")  # left 1 = right 1: alphabetical


def test_closed_question_type_level():
    model = MostFrequentAnswer.fit(TRAIN)
    prediction = model.predict(record(102, "Is the heart enlarged?", "yes", "CLOSED", content_type="Abnormality",
                                      categories=["yes", "no"]))
    assert (prediction.answer, prediction.level) == ("no", "question_type")  # no 2, yes 1


def test_answer_type_level_respects_the_options():
    model = MostFrequentAnswer.fit(TRAIN)
    # An unseen closed type: CLOSED answers are no 2, yes 1, axial 1; among the options only 'axial' occurs.
    prediction = model.predict(record(103, "Which view, axial or sagittal?", "sagittal", "CLOSED",
                                      content_type="Plane", categories=["axial", "sagittal"]))
    assert (prediction.answer, prediction.level) == ("axial", "answer_type")
    # No option was ever an answer: the alphabetically first option.
    prediction = model.predict(record(104, "Is it CT or MRI?", "MRI", "CLOSED", content_type="Modality",
                                      categories=["MRI", "CT"]))
    assert (prediction.answer, prediction.level) == ("CT", "options")
    # Open question of an unseen type: the most frequent OPEN answer (liver 2).
    prediction = model.predict(record(105, "What color is it?", "red", content_type="Color"))
    assert (prediction.answer, prediction.level) == ("Liver", "answer_type")


def test_ovqa_question_type_field_is_used():
    model = MostFrequentAnswer.fit(TRAIN)
    prediction = model.predict(record(106, "Which plane is this, axial or coronal?", "coronal", "CLOSED",
                                      question_type="PLANE", categories=["axial", "coronal"]))
    assert (prediction.answer, prediction.level) == ("axial", "question_type")


def test_empty_train_split_is_an_error():
    with pytest.raises(DataError, match="train split has no records"):
        MostFrequentAnswer.fit([])


def test_rows_and_idempotent_write(tmp_path):
    model = MostFrequentAnswer.fit(TRAIN)
    rows = result_rows(model, [record(100, "What organ is shown?", "Spleen", content_type="Organ")])
    assert rows == [{"qid": "100", "question": "What organ is shown?", "gt": "Spleen", "pred": "Liver",
                     "answer_type": "OPEN", "img_name": "100.png", "baseline_level": "question"}]
    assert write_results(rows, tmp_path) is True
    written = tmp_path / naming.TEST_RESULTS_FILE
    mtime = written.stat().st_mtime_ns
    assert write_results(rows, tmp_path) is False and written.stat().st_mtime_ns == mtime
    assert json.loads(written.read_text()) == rows


EXPECTED = {
    "iid": {"30": ("CT", "question"), "31": ("Yes", "question_type"), "32": ("Large", "question_type")},
    "ood": {"33": ("CT", "question"), "34": ("CT", "answer_type"), "9": ("CT", "question"),
            "10": ("CT", "answer_type")},
}


def test_run_most_frequent_on_split_files(tmp_path):
    write_slake(tmp_path / "data", files=SLAKE_SMALL)
    cfg = {"dataset": "SLAKE", "data_shift": "modality", "ood_value": "X-Ray", "train_split": "iid", "mod": "test",
           "split": ["iid", "ood"], "seed": 123,
           "paths": {"dataset_root": str(tmp_path / "data"), "experiment_root": str(tmp_path / "exp")}}
    written = run_most_frequent(cfg)
    model_dir = naming.most_frequent_dir(tmp_path / "exp", "SLAKE_train_iid_modality_X-Ray")
    assert written == [model_dir / "eval" / "SLAKE_test_iid_modality_X-Ray",
                       model_dir / "eval" / "SLAKE_test_ood_modality_X-Ray"]
    for split, out_dir in zip(("iid", "ood"), written, strict=True):
        rows = json.loads((out_dir / naming.TEST_RESULTS_FILE).read_text())
        assert {r["qid"]: (r["pred"], r["baseline_level"]) for r in rows} == EXPECTED[split]
        assert all(set(r) >= {"qid", "question", "gt", "pred", "answer_type", "img_name"} for r in rows)


def test_cli_writes_and_exits_2_on_bad_settings(tmp_path):
    write_slake(tmp_path / "data", files=SLAKE_SMALL)
    env = {**os.environ, "DATASET_ROOT_DIR": str(tmp_path / "data"), "EXPERIMENT_ROOT_DIR": str(tmp_path / "exp"),
           "PYTHONPATH": str(PROJECT_ROOT)}
    command = [*SURE_VQA, "baselines", "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray"]
    done = subprocess.run([*command, "split=ood"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "exp" / "most_frequent-SLAKE_train_iid_modality_X-Ray" / "eval" / "SLAKE_test_ood_modality_X-Ray"
    assert done.stdout.strip() == str(out / naming.TEST_RESULTS_FILE)
    assert len(json.loads((out / naming.TEST_RESULTS_FILE).read_text())) == 4
    bad = subprocess.run([*command, "split=odd"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "split='odd' is not valid" in bad.stderr
    unknown = subprocess.run([*SURE_VQA, "baselines", "baseline=least_frequent"], cwd=PROJECT_ROOT,
                             env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "Could not override 'baseline'" in unknown.stderr
