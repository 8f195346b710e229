"""SLAKE (and the demo dataset, in SLAKE's format): reading, categories and exact split membership.

Fixture rows (tests/helpers/fixtures_data.py), English only; images 1-5 train, 6-7 validate, 8-10 test:
    train    1 CT, 2 CT, 4 MRI, 5 MRI, 6 X-Ray, 7 X-Ray, 8 CT, 9 X-Ray, 11 CT, 12 CT, 13 MRI   (3, 10 Chinese)
    validate 20 CT, 21 X-Ray, 22 CT                                                         (23 Chinese)
    test     30 CT, 31 CT, 32 X-Ray, 33 X-Ray, 34 MRI, 36 X-Ray                             (35 Chinese)
Size questions: 7, 8 (train), 22 (validate), 33 (test).
"""

import json

import pytest
from PIL import Image

from sure_vqa import naming
from sure_vqa.data import registry
from sure_vqa.data.splits import record_image_path, split_records
from tests.helpers.fixtures_data import ids, write_slake


@pytest.fixture
def root(tmp_path):
    write_slake(tmp_path)
    return tmp_path


def test_reader_keeps_english_rows_with_string_answers(root):
    records = list(registry.get("SLAKE").read(root / "SLAKE"))
    assert ids(records) == [
        "1",
        "2",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "11",
        "12",
        "13",
        "20",
        "21",
        "22",
        "30",
        "31",
        "32",
        "33",
        "34",
        "36",
    ]
    by_id = {r.qid: r for r in records}
    assert by_id["4"].answer == "2" and by_id["31"].answer == "2"  # numbers in the JSON
    assert [by_id[q].source for q in ("1", "20", "30")] == ["train", "val", "test"]
    assert by_id["6"].image == "imgs/xmlab3/source.jpg" and by_id["6"].img_name == "xmlab3/source.jpg"
    assert by_id["6"].fields == {
        "location": "Chest_lung",
        "modality": "X-Ray",
        "content_type": "Abnormality",
        "base_type": "vqa",
    }


def test_closed_questions_get_categories(root):
    records = {r.qid: r.categories for r in registry.get("SLAKE").read(root / "SLAKE")}
    assert records == {
        "1": None,
        "2": ["yes", "no"],
        "4": None,
        "5": ["yes", "no"],
        "6": ["heart", "lung"],
        "7": None,
        "8": ["heart", "lung"],
        "9": None,
        "11": None,
        "12": ["Irregular", "Oval"],
        "13": None,
        "20": ["yes", "no"],
        "21": None,
        "22": None,
        "30": ["CT", "MRI"],
        "31": None,
        "32": ["yes", "no"],
        "33": None,
        "34": ["Irregular", "Oval"],
        "36": ["left", "right"],
    }


def test_modality_shift_adds_the_train_files_ood_records_to_the_ood_test_split(root):
    shift = ("modality", "X-Ray")
    assert ids(split_records(root, "SLAKE", "train", "iid", *shift)) == [
        "1",
        "2",
        "4",
        "5",
        "8",
        "11",
        "12",
        "13",
    ]
    assert ids(split_records(root, "SLAKE", "val", "iid", *shift)) == ["20", "22"]
    assert ids(split_records(root, "SLAKE", "test", "iid", *shift)) == ["30", "31", "34"]
    assert ids(split_records(root, "SLAKE", "test", "ood", *shift)) == ["32", "33", "36", "6", "7", "9"]


def test_content_type_shift_is_question_level_so_nothing_is_added(root):
    shift = ("content_type", "Size")
    assert ids(split_records(root, "SLAKE", "train", "iid", *shift)) == [
        "1",
        "2",
        "4",
        "5",
        "6",
        "9",
        "11",
        "12",
        "13",
    ]
    assert ids(split_records(root, "SLAKE", "val", "iid", *shift)) == ["20", "21"]
    assert ids(split_records(root, "SLAKE", "test", "iid", *shift)) == ["30", "31", "32", "34", "36"]
    assert ids(split_records(root, "SLAKE", "test", "ood", *shift)) == ["33"]


@pytest.mark.parametrize(
    ("shift", "test_ood"),
    [
        (("location", "Chest_lung"), ["32", "33", "36", "6", "7"]),  # image-level
        (("modality", ["CT", "MRI"]), ["30", "31", "34", "1", "2", "4", "5", "8", "11", "12", "13"]),
        (("answer_type", "CLOSED"), ["30", "32", "34", "36"]),  # question-level
        (("base_type", "kvqa"), []),  # question-level; the only kvqa question is in train
    ],
)
def test_other_shifts(root, shift, test_ood):
    assert ids(split_records(root, "SLAKE", "test", "ood", *shift)) == test_ood


def test_all_split_is_the_whole_english_file(root):
    assert ids(split_records(root, "SLAKE", "val", "all")) == ["20", "21", "22"]


def test_split_file_rows(root):
    split_records(root, "SLAKE", "test", "ood", "modality", "X-Ray")
    path = naming.split_file(root, "SLAKE", "SLAKE_test_ood_modality_X-Ray")
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert rows[0] == {
        "id": "32",
        "image": "imgs/xmlab9/source.jpg",
        "img_name": "xmlab9/source.jpg",
        "question": "Does the lung look abnormal?",
        "answer": "Yes",
        "answer_type": "CLOSED",
        "source": "test",
        "fields": {
            "location": "Chest_lung",
            "modality": "X-Ray",
            "content_type": "Abnormality",
            "base_type": "vqa",
        },
        "categories": ["yes", "no"],
        "location": "Chest_lung",
        "modality": "X-Ray",
        "content_type": "Abnormality",
        "base_type": "vqa",
    }


def test_record_image_path_points_at_a_readable_image(root):
    record = split_records(root, "SLAKE", "test", "all")[0]
    path = record_image_path(root, "SLAKE", record)
    assert path == root / "SLAKE" / "imgs" / "xmlab8" / "source.jpg"
    with Image.open(path) as image:
        assert image.size == (32, 32)


def test_demo_dataset_is_read_with_the_slake_reader(tmp_path):
    files = {
        "train.json": [
            {
                "qid": 1,
                "img_id": 1,
                "img_name": "ct_1.png",
                "question": "Is this a CT or an MRI?",
                "answer": "CT",
                "answer_type": "CLOSED",
                "modality": "CT",
                "location": "Abdomen",
                "content_type": "Modality",
            },
            {
                "qid": 2,
                "img_id": 2,
                "img_name": "mr_1.png",
                "question": "Is this a CT or an MRI?",
                "answer": "MRI",
                "answer_type": "CLOSED",
                "modality": "MRI",
                "location": "Brain",
                "content_type": "Modality",
            },
        ],
        "validate.json": [],
        "test.json": [
            {
                "qid": 3,
                "img_id": 3,
                "img_name": "xr_1.png",
                "question": "Which body part is shown?",
                "answer": "Chest",
                "answer_type": "OPEN",
                "modality": "X-Ray",
                "location": "Chest",
                "content_type": "Position",
            }
        ],
    }
    write_slake(tmp_path, name="demo", files=files, images=False)
    train = split_records(tmp_path, "demo", "train", "iid", "modality", "X-Ray")
    assert ids(train) == ["1", "2"] and train[0].categories == ["CT", "MRI"]
    assert ids(split_records(tmp_path, "demo", "test", "ood", "modality", "X-Ray")) == ["3"]
