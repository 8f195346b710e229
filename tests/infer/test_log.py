"""The prediction log that makes inference resumable: what survives a kill, what is refused, what is kept aside."""

from __future__ import annotations

import json

import pytest

from sure_vqa import naming
from sure_vqa.config import DataError
from sure_vqa.infer.generation.prediction_log import (
    HEADER_KEY,
    PredictionLog,
    completed_rows,
    fingerprint,
    folder_signature,
    read_header,
    read_rows,
    remove_logs,
    set_aside_stale_logs,
)

FP = "a" * 64
OTHER = "b" * 64


def row(qid: str, pred: str = "yes") -> dict:
    return {"qid": qid, "question": f"q{qid}", "gt": "yes", "pred": pred, "answer_type": "CLOSED", "img_name": "x"}


def test_rows_are_appended_and_read_back_in_order(tmp_path):
    path = tmp_path / naming.PREDICTION_LOG_FILE
    with PredictionLog(path, FP, {"seed": 1}) as log:
        log.append(row("1"))
        log.append(row("2"))
        assert path.read_text().count("\n") == 3  # flushed at once: header + 2 rows
    assert read_header(path) == {"fingerprint": FP, "settings": {"seed": 1}}
    with PredictionLog(path, FP, {"seed": 1}) as log:  # continuing the same run appends
        log.append(row("3"))
    assert [r["qid"] for r in read_rows(path)] == ["1", "2", "3"]


def test_an_unfinished_last_line_is_ignored_then_cut_off(tmp_path):
    path = tmp_path / naming.PREDICTION_LOG_FILE
    with PredictionLog(path, FP, {}) as log:
        log.append(row("1"))
    with path.open("a") as handle:
        handle.write('{"qid": "2", "pred": "ha')  # a kill in the middle of a write
    assert [r["qid"] for r in read_rows(path)] == ["1"]
    with PredictionLog(path, FP, {}) as log:
        log.append(row("2", "no"))
    assert read_rows(path) == [row("1"), row("2", "no")]


def test_a_broken_line_in_the_middle_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / naming.PREDICTION_LOG_FILE
    path.write_text(json.dumps({HEADER_KEY: {"fingerprint": FP}}) + "\n" + "not json\n" + json.dumps(row("1")) + "\n")
    with pytest.raises(DataError, match=rf"{naming.PREDICTION_LOG_FILE} line 2 is not valid JSON"):
        read_rows(path)
    path.write_text(json.dumps(row("1")) + "\n")
    with pytest.raises(DataError, match="line 1 is not a prediction-log header"):
        read_header(path)


def test_completed_rows_read_every_rank_with_the_same_fingerprint(tmp_path):
    with PredictionLog(tmp_path / naming.prediction_log_name(0), FP, {}) as log:
        log.append(row("1"))
    with PredictionLog(tmp_path / naming.prediction_log_name(1), FP, {}) as log:
        log.append(row("2"))
        log.append(row("1", "a later duplicate"))
    with PredictionLog(tmp_path / naming.prediction_log_name(2), OTHER, {}) as log:
        log.append(row("3"))
    done = completed_rows(tmp_path, FP)
    assert sorted(done) == ["1", "2"] and done["1"]["pred"] == "yes"


def test_logs_of_other_settings_are_renamed_not_deleted(tmp_path):
    for rank, fp in ((0, OTHER), (1, FP), (2, OTHER)):
        with PredictionLog(tmp_path / naming.prediction_log_name(rank), fp, {}) as log:
            log.append(row(str(rank)))
    (tmp_path / naming.prediction_log_name(3)).write_text('{"log_hea')  # killed while starting: nothing to keep
    moved = set_aside_stale_logs(tmp_path, FP)
    assert [(old.name, new.name) for old, new in moved] == [
        (naming.prediction_log_name(0), naming.stale_prediction_log_name(OTHER)),
        (naming.prediction_log_name(2), naming.stale_prediction_log_name(OTHER, 1)),
    ]
    assert read_rows(tmp_path / naming.stale_prediction_log_name(OTHER, 1)) == [row("2")]
    assert [p.name for p in sorted(tmp_path.glob(naming.PREDICTION_LOG_GLOB))] == [naming.prediction_log_name(1)]
    remove_logs(tmp_path, FP)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([naming.stale_prediction_log_name(OTHER),
                                                                 naming.stale_prediction_log_name(OTHER, 1)])


def test_a_log_with_another_fingerprint_is_never_continued(tmp_path):
    path = tmp_path / naming.PREDICTION_LOG_FILE
    with PredictionLog(path, OTHER, {}) as log:
        log.append(row("1"))
    with pytest.raises(DataError, match="written with other settings"), PredictionLog(path, FP, {}):
        pass
    assert read_rows(path) == [row("1")]


def test_fingerprints_and_folder_signatures(tmp_path):
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    (tmp_path / "adapter.bin").write_bytes(b"\x00" * 10)
    (tmp_path / "shard.bin").write_bytes(b"\x01" * 100)
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "ignored.json").write_text("{}")
    signature = folder_signature(tmp_path, content_limit=50)
    assert signature == {
        "adapter.bin": "01d448afd928065458cf670b60f5a594d735af0172c8d67f22a81680132681ca",  # sha256 of 10 zero bytes
        "shard.bin": "size:100",
    }
    (tmp_path / "adapter.bin").write_bytes(b"\x00" * 9 + b"\x01")
    assert folder_signature(tmp_path, content_limit=50)["adapter.bin"] != signature["adapter.bin"]
