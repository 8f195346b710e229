"""OVQA: the cleaning step with its backups, reading, categories and exact split membership.

Fixture rows (tests/helpers/fixtures_data.py) after cleaning (104, 107, 205, 305 dropped):
    train    101 CHEST, 102 CHEST (Organ System), 103 LEG, 105 HEAD, 106 HEAD, 108 HAND (Organ System), 109 LEG
    validate 201 CHEST, 202 LEG, 203 CHEST (Organ System), 204 HEAD
    test     301 LEG, 302 LEG (Organ System), 303 HAND, 304 CHEST, 306 HEAD
"""

import json
import subprocess
import sys

import pytest

from sure_vqa.config import DataError
from sure_vqa.data import registry
from sure_vqa.data.readers import ovqa
from sure_vqa.data.splits import split_records
from tests.conftest import PROJECT_ROOT
from tests.helpers.fixtures_data import OVQA_DROPPED_BY_CLEANING, OVQA_RAW_FILES, ids, write_ovqa


def test_cleaning_keeps_backups_and_drops_closed_questions_that_are_not_yes_no(tmp_path):
    folder = write_ovqa(tmp_path, images=False)
    originals = {name: (folder / name).read_bytes() for name in OVQA_RAW_FILES}
    counts = ovqa.clean(folder)
    assert counts == {
        "train.json": {"entries": 9, "kept": 7, "dropped": 2},
        "validate.json": {"entries": 5, "kept": 4, "dropped": 1},
        "test.json": {"entries": 6, "kept": 5, "dropped": 1},
    }
    for name, original in originals.items():
        assert (folder / name.replace(".json", "_old.json")).read_bytes() == original
        kept = {str(row["qid"]) for row in json.loads((folder / name).read_text())}
        raw = {str(row["qid"]) for row in OVQA_RAW_FILES[name]}
        assert kept == raw - OVQA_DROPPED_BY_CLEANING
    # "yes." and "YES" stay (case and a trailing period ignored), as do the three modality questions
    train = {row["qid"] for row in json.loads((folder / "train.json").read_text())}
    assert {103, 105, 109} <= train


def test_cleaning_twice_changes_nothing(tmp_path):
    folder = write_ovqa(tmp_path, cleaned=True, images=False)
    before = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    assert ovqa.clean(folder)["train.json"] == {"entries": 7, "kept": 7, "dropped": 0}
    assert {p.name: p.read_bytes() for p in folder.glob("*.json")} == before


def test_cleaning_never_overwrites_a_different_backup(tmp_path):
    folder = write_ovqa(tmp_path, images=False)
    (folder / "train_old.json").write_text("[]")
    before = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    with pytest.raises(DataError, match="train_old.json already exists with other content"):
        ovqa.clean(folder)
    assert {p.name: p.read_bytes() for p in folder.glob("*.json")} == before


def test_reader_refuses_files_that_are_not_cleaned(tmp_path):
    write_ovqa(tmp_path, images=False)
    with pytest.raises(DataError, match=r"train.json is not cleaned: 2 closed questions .*sure-vqa prepare ovqa"):
        split_records(tmp_path, "OVQA", "train", "all")


def test_reader_and_categories(tmp_path):
    write_ovqa(tmp_path, cleaned=True, images=False)
    records = {r.qid: r for r in registry.get("OVQA").read(tmp_path / "OVQA")}
    assert records["103"].image == "img/img0002.jpg" and records["103"].fields == {
        "image_organ": "LEG",
        "question_type": "Modality",
    }
    assert {q: r.categories for q, r in records.items() if r.answer_type == "CLOSED"} == {
        "101": ["yes", "no"],
        "103": ["CT", "X-Ray"],
        "105": ["yes", "no"],
        "109": ["yes", "no"],
        "201": ["MRI", "CT"],
        "204": ["yes", "no"],
        "301": ["MRI", "CT"],
        "303": ["yes", "no"],
        "306": ["CT", "X-Ray"],
    }


def test_image_organ_shift_adds_the_train_files_ood_records(tmp_path):
    write_ovqa(tmp_path, cleaned=True, images=False)
    shift = ("image_organ", "LEG")
    assert ids(split_records(tmp_path, "OVQA", "train", "iid", *shift)) == ["101", "102", "105", "106", "108"]
    assert ids(split_records(tmp_path, "OVQA", "val", "iid", *shift)) == ["201", "203", "204"]
    assert ids(split_records(tmp_path, "OVQA", "test", "iid", *shift)) == ["303", "304", "306"]
    assert ids(split_records(tmp_path, "OVQA", "test", "ood", *shift)) == ["301", "302", "103", "109"]
    two = ("image_organ", ["LEG", "HAND"])
    assert ids(split_records(tmp_path, "OVQA", "test", "ood", *two)) == [
        "301",
        "302",
        "303",
        "103",
        "108",
        "109",
    ]


def test_question_type_shift_is_question_level(tmp_path):
    write_ovqa(tmp_path, cleaned=True, images=False)
    shift = ("question_type", "Organ System")
    assert ids(split_records(tmp_path, "OVQA", "train", "iid", *shift)) == ["101", "103", "105", "106", "109"]
    assert ids(split_records(tmp_path, "OVQA", "test", "ood", *shift)) == ["302"]
    # the split name drops the space, so the value may be written without it too: the same file
    assert ids(split_records(tmp_path, "OVQA", "test", "ood", "question_type", "OrganSystem")) == ["302"]
    split_dir = tmp_path / "OVQA" / "split_files"
    assert sorted(p.name for p in split_dir.glob("*.json")) == [
        "OVQA_test_ood_question_type_OrganSystem.json",
        "OVQA_train_iid_question_type_OrganSystem.json",
    ]


def test_prepare_script_cleans_and_exits_2_on_a_missing_folder(tmp_path):
    folder = write_ovqa(tmp_path, images=False)
    script = str(PROJECT_ROOT / "data" / "prepare_ovqa.py")
    done = subprocess.run(
        [sys.executable, script, f"root={folder}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "train.json: 9 questions, kept 7, dropped 2" in done.stdout
    assert (folder / "train_old.json").exists()
    missing = subprocess.run(
        [sys.executable, script, f"root={tmp_path / 'nowhere'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "nowhere does not exist" in missing.stderr
