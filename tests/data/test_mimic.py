"""MIMIC-CXR-VQA: preparation (answers, demographics), reading, categories and exact split membership.

Fixture patients (tests/helpers/fixtures_data.py), with the groups computed by hand:
    s1 F 35 WHITE             young  white         s6 M 39 HISPANIC/LATINO           young  non-white
    s2 M 72 BLACK             old    non-white     s7 F 40 WHITE (PORTUGUESE, WHITE - RUSSIAN)  -  white
    s3 F 45 WHITE + BLACK -> UNKNOWN/OTHER  -  -   s8 M 80 no admission -> UNKNOWN/OTHER  old  -
    s4 M 59 ASIAN (+ UNKNOWN)  -     non-white     s9 not in MIMIC-IV: gender, age unknown, UNKNOWN/OTHER
    s5 F 60 UNKNOWN/OTHER     old    -
Questions (idx: subject, * = a gender question):
    train 0:s1 1:s1* 2:s2 3:s2 4:s3 5:s4 6:s5 7:s6 8:s4* 9:s8 10:s9
    valid 0:s1 1:s5* 2:s6 3:s4
    test  0:s3 1:s5 2:s6* 3:s7 4:s2 5:s1
"""

import json
import subprocess
import sys

import pandas as pd
import pytest

from sure_vqa.config import ConfigError, DataError
from sure_vqa.data import registry
from sure_vqa.data.mimic_prepare import answer_of, demographics, ethnicity_of, race_group
from sure_vqa.data.records import QARecord
from sure_vqa.data.splits import SAMPLE_SIZES, sample_positions, select_records, split_records
from tests.conftest import PROJECT_ROOT
from tests.helpers.fixtures_data import ids, write_mimic


@pytest.fixture
def root(tmp_path):
    write_mimic(tmp_path, prepared=True, images=False)
    return tmp_path


@pytest.mark.parametrize(
    ("race", "group"),
    [
        ("WHITE", "WHITE"),
        ("WHITE - OTHER EUROPEAN", "WHITE"),
        ("PORTUGUESE", "WHITE"),
        ("BLACK/CAPE VERDEAN", "BLACK"),
        ("ASIAN - SOUTH EAST ASIAN", "ASIAN"),
        ("HISPANIC OR LATINO", "HISPANIC/LATINO"),
        ("HISPANIC/LATINO - CUBAN", "HISPANIC/LATINO"),
        ("SOUTH AMERICAN", None),
        ("UNKNOWN", None),
        ("MULTIPLE RACE/ETHNICITY", None),
        (float("nan"), None),
    ],
)
def test_race_groups(race, group):
    assert race_group(race) == group


@pytest.mark.parametrize(
    ("races", "ethnicity"),
    [
        (["WHITE", "WHITE - RUSSIAN"], "WHITE"),
        (["ASIAN", "UNKNOWN"], "ASIAN"),
        (["WHITE", "BLACK/AFRICAN"], "UNKNOWN/OTHER"),
        (["OTHER"], "UNKNOWN/OTHER"),
        ([], "UNKNOWN/OTHER"),
    ],
)
def test_one_ethnicity_per_patient(races, ethnicity):
    assert ethnicity_of(races) == ethnicity


@pytest.mark.parametrize(
    ("semantic_type", "content_type", "answers", "expected"),
    [
        ("verify", "presence", ["yes"], "yes"),
        ("verify", "presence", ["no"], "no"),
        ("choose", "attribute", ["lung opacity"], "lung opacity"),
        ("choose", "anatomy", ["left lung", "right lung"], "both"),
        ("choose", "anatomy", [], "none"),
        ("choose", "gender", ["f"], "female"),
        ("query", "gender", ["m"], "male"),
        ("query", "attribute", ["atelectasis", "lung opacity"], "atelectasis, lung opacity"),
        ("query", "abnormality", [], "none"),
        ("choose", "plane", ["ap"], "ap"),
    ],
)
def test_answers_become_strings(semantic_type, content_type, answers, expected):
    assert answer_of(semantic_type, content_type, answers) == expected


@pytest.mark.parametrize(
    ("semantic_type", "answers"), [("verify", ["maybe"]), ("verify", []), ("choose", ["a", "b", "c"])]
)
def test_impossible_answers_are_an_error(semantic_type, answers):
    with pytest.raises(ValueError):
        answer_of(semantic_type, "presence", answers)


def test_demographics_keep_only_unique_values(tmp_path):
    patients, admissions = tmp_path / "patients.csv", tmp_path / "admissions.csv"
    patients.write_text(
        "subject_id,gender,anchor_age,anchor_year_group\n1,F,50,2011 - 2013\n1,M,50,2011 - 2013\n"
        "2,M,70,2014 - 2016\n"
    )
    admissions.write_text("subject_id,race\n2,ASIAN\n2,ASIAN - KOREAN\n3,WHITE\n")
    assert demographics(patients, admissions) == {
        1: {"gender": None, "age": 50, "year": "2011 - 2013"},
        2: {"gender": "M", "age": 70, "year": "2014 - 2016", "ethnicity": "ASIAN"},
        3: {"gender": None, "age": None, "year": None, "ethnicity": "WHITE"},
    }


def test_preparation_writes_answers_and_demographics(root):
    rows = json.loads((root / "MIMIC" / "train.json").read_text())
    assert [(r["qid"], r["answer"], r["answer_type"]) for r in rows] == [
        (0, "yes", "CLOSED"),
        (1, "female", "CLOSED"),
        (2, "lung opacity", "CLOSED"),
        (3, "atelectasis, lung opacity", "OPEN"),
        (4, "both", "CLOSED"),
        (5, "pa", "CLOSED"),
        (6, "none", "OPEN"),
        (7, "no", "CLOSED"),
        (8, "male", "OPEN"),
        (9, "none", "CLOSED"),
        (10, "yes", "CLOSED"),
    ]
    people = {r["subject_id"]: (r["gender"], r["age"], r["year"], r["ethnicity"]) for r in rows}
    assert people == {
        "10000001": ("F", 35, "2011 - 2013", "WHITE"),
        "10000002": ("M", 72, "2014 - 2016", "BLACK"),
        "10000003": ("F", 45, "2008 - 2010", "UNKNOWN/OTHER"),
        "10000004": ("M", 59, "2017 - 2019", "ASIAN"),
        "10000005": ("F", 60, "2011 - 2013", "UNKNOWN/OTHER"),
        "10000006": ("M", 39, "2014 - 2016", "HISPANIC/LATINO"),
        "10000008": ("M", 80, "2017 - 2019", "UNKNOWN/OTHER"),
        "10000009": (None, None, None, "UNKNOWN/OTHER"),
    }
    assert rows[5]["answer_orig"] == ["pa"] and "idx" not in rows[5]
    test_rows = json.loads((root / "MIMIC" / "test.json").read_text())
    assert (
        test_rows[3]["ethnicity"] == "WHITE" and test_rows[3]["age"] == 40
    )  # s7: PORTUGUESE + WHITE - RUSSIAN


def test_reader_categories_and_image_paths(tmp_path):
    write_mimic(tmp_path, prepared=True)
    records = {r.qid: r for r in registry.get("MIMIC").read(tmp_path / "MIMIC") if r.source == "train"}
    assert {q: r.categories for q, r in records.items()} == {
        "0": ["yes", "no"],
        "1": ["male", "female"],
        "2": ["lung opacity", "pleural effusion", "both", "none"],
        "3": None,
        "4": ["left lung", "right lung", "both", "none"],
        "5": ["AP", "PA"],
        "6": None,
        "7": ["yes", "no"],
        "8": None,
        "9": ["cardiac silhouette", "trachea", "both", "none"],
        "10": ["yes", "no"],
    }
    assert records["4"].img_name == "p10/p10000003/s50000034/train-0004.jpg"
    assert (
        records["4"].image
        == "mimic-cxr-vqa/physionet.org/files/mimic-cxr-jpg/2.0.0/files/" + records["4"].img_name
    )
    assert (tmp_path / "MIMIC" / records["4"].image).is_file()


@pytest.mark.parametrize(
    ("shift", "train_iid", "val_iid", "test_iid", "test_ood"),
    [
        (("age", "young"), ["2", "3", "6", "9"], ["1"], ["1", "4"], ["2", "5"]),
        (("age", "old"), ["0", "1", "7"], ["0", "2"], ["2", "5"], ["1", "4"]),
        (("ethnicity", "nonwhite"), ["0", "1"], ["0"], ["3", "5"], ["2", "4"]),
        (("ethnicity", "white"), ["2", "3", "5", "7", "8"], ["2", "3"], ["2", "4"], ["3", "5"]),
        # gender questions (train 1, 8; valid 1; test 2) leave every split; s9's gender is unknown
        (("gender", "F"), ["2", "3", "5", "7", "9"], ["2", "3"], ["4"], ["0", "1", "3", "5"]),
        # literal values: UNKNOWN/OTHER is iid here; ages compare as numbers or text alike
        (
            ("ethnicity", "BLACK"),
            ["0", "1", "4", "5", "6", "7", "8", "9", "10"],
            ["0", "1", "2", "3"],
            ["0", "1", "2", "3", "5"],
            ["4"],
        ),
        (
            ("age", 35),
            ["2", "3", "4", "5", "6", "7", "8", "9"],
            ["1", "2", "3"],
            ["0", "1", "2", "3", "4"],
            ["5"],
        ),
    ],
)
def test_mimic_shifts_keep_their_own_test_file(root, shift, train_iid, val_iid, test_iid, test_ood):
    assert ids(split_records(root, "MIMIC", "train", "iid", *shift)) == train_iid
    assert ids(split_records(root, "MIMIC", "val", "iid", *shift)) == val_iid
    assert ids(split_records(root, "MIMIC", "test", "iid", *shift)) == test_iid
    assert ids(split_records(root, "MIMIC", "test", "ood", *shift)) == test_ood


def test_a_group_name_that_does_not_exist_lists_values_and_groups(root):
    with pytest.raises(
        ConfigError,
        match=r"ood_value='middle' matches no MIMIC record's age; valid values: 35 \(4\)"
        r".*group young: iid: age >= 60, ood: age < 40",
    ):
        split_records(root, "MIMIC", "test", "ood", "age", "middle")


def test_sample_split_of_a_small_file_is_the_whole_file(root):
    assert ids(split_records(root, "MIMIC", "val", "sample")) == ["0", "1", "2", "3"]


def test_sample_sizes_are_those_of_the_study_and_seeded():
    records = [
        QARecord(
            qid=f"{source}{i}",
            image="x.jpg",
            img_name="x.jpg",
            question="q",
            answer="a",
            answer_type="OPEN",
            source=source,
        )
        for source, n in (("train", 25_000), ("val", 6_000))
        for i in range(n)
    ]
    train = select_records(records, "train", "sample", seed=123)
    val = select_records(records, "val", "sample", seed=123)
    assert (len(train), len(val)) == (SAMPLE_SIZES["train"], SAMPLE_SIZES["val"]) == (20_000, 5_000)
    order = {r.qid: i for i, r in enumerate(records)}
    assert [order[r.qid] for r in train] == sorted(order[r.qid] for r in train)  # raw-file order
    assert ids(select_records(records, "train", "sample", seed=123)) == ids(train)
    # the original's own call on the file as read: pandas DataFrame.sample(n, random_state=seed)
    for seed, mod, size in ((123, "train", 20_000), (124, "train", 20_000), (123, "val", 5_000)):
        frame = pd.DataFrame({"qid": [r.qid for r in records if r.source == mod]})
        expected = set(frame.sample(size, random_state=seed)["qid"])
        assert set(ids(select_records(records, mod, "sample", seed=seed))) == expected


def test_sample_membership_is_the_first_n_of_numpys_permutation():
    # numpy.random.RandomState(123).permutation(10) is [4, 0, 7, 5, 8, 3, 1, 6, 9, 2] (numpy's documented legacy
    # generator, stable across versions): a sample of 4 is positions 4, 0, 7, 5, kept in file order.
    assert sample_positions(10, 4, 123) == [0, 4, 5, 7]
    assert sample_positions(3, 4, 123) == [0, 1, 2]  # a file smaller than the sample is taken whole


def test_unprepared_folder_names_the_command(tmp_path):
    write_mimic(tmp_path, prepared=False, images=False)
    with pytest.raises(
        DataError,
        match=r"MIMIC/train.json not found; prepare the MIMIC folder first with "
        r"`sure-vqa prepare mimic",
    ):
        split_records(tmp_path, "MIMIC", "train", "all")


def test_prepare_script_and_its_errors(tmp_path):
    folder = write_mimic(tmp_path, images=False)
    script = str(PROJECT_ROOT / "data" / "prepare_mimic.py")
    done = subprocess.run(
        [sys.executable, script, f"root={folder}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"{folder / 'validate.json'}: 4 questions" in done.stdout
    (folder / "mimic-cxr-vqa/physionet.org/files/mimiciv/2.2/hosp/admissions.csv").unlink()
    before = (folder / "train.json").read_bytes()
    failed = subprocess.run(
        [sys.executable, script, f"root={folder}"], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 2 and "admissions.csv not found" in failed.stderr
    assert (folder / "train.json").read_bytes() == before  # nothing written


def test_images_elsewhere_are_recorded_relative_to_the_mimic_folder(tmp_path):
    from sure_vqa.data.mimic_prepare import prepare

    folder = write_mimic(tmp_path, images=False)
    prepare(folder, image_dir=tmp_path / "cxr-jpg" / "files")
    record = split_records(tmp_path, "MIMIC", "test", "all")[0]
    assert record.image == "../cxr-jpg/files/p10/p10000003/s50000030/test-0000.jpg"


def test_a_group_that_selects_no_record_is_an_error(tmp_path):
    write_mimic(tmp_path, prepared=True, images=False)
    for name in ("train.json", "validate.json", "test.json"):  # nobody under 40 any more
        path = tmp_path / "MIMIC" / name
        rows = json.loads(path.read_text())
        path.write_text(json.dumps([{**row, "age": max(row["age"] or 0, 40) or None} for row in rows]))
    with pytest.raises(ConfigError, match=r"ood_value='young' \(group young: iid: age >= 60, ood: age < 40"):
        split_records(tmp_path, "MIMIC", "test", "ood", "age", "young")


def _with_extra_choose_questions(tmp_path, extra: list[tuple[str, str, str, str]]) -> dict[str, QARecord]:
    """The prepared fixture plus choose questions (qid, content_type, question, answer), read by the reader."""
    folder = write_mimic(tmp_path, prepared=True, images=False)
    rows = json.loads((folder / "train.json").read_text())
    template_row = rows[5]  # the fixture's plane question
    for qid, content_type, question, answer in extra:
        rows.append({**template_row, "qid": qid, "content_type": content_type, "question": question,
                     "template": question, "answer_orig": [answer], "answer": answer})
    (folder / "train.json").write_text(json.dumps(rows))
    return {r.qid: r for r in registry.get("MIMIC").read(folder) if r.source == "train"}


@pytest.mark.parametrize(
    ("content_type", "question", "answer", "expected"),
    [
        ("plane", "In which view was this image taken, AP or PA?", "ap", ["AP", "PA"]),
        ("plane", "Which view is in this image, AP or PA?", "pa", ["AP", "PA"]),
        ("plane", "Is this image taken in the PA view or the AP view?", "ap", ["AP", "PA"]),
        ("gender", "Please specify the gender of this patient, female or male.", "female", ["male", "female"]),
        ("gender", "What is the gender of this patient, male or female?", "male", ["male", "female"]),
        ("gender", "Is this patient female or male?", "male", ["male", "female"]),
    ],
)
def test_plane_and_gender_choose_questions_take_their_two_options_whatever_the_wording(
        tmp_path, content_type, question, answer, expected):
    records = _with_extra_choose_questions(tmp_path, [("900", content_type, question, answer)])
    assert records["900"].categories == expected


def test_an_unreadable_choose_question_falls_back_and_is_counted(tmp_path, caplog):
    question = "Which finding is seen in the image?"  # a choose question naming no options
    with caplog.at_level("WARNING", logger="sure_vqa.data.readers.mimic"):
        records = _with_extra_choose_questions(tmp_path, [("901", "attribute", question, "lung opacity")])
    # the other questions read as before
    assert records["2"].categories == ["lung opacity", "pleural effusion", "both", "none"]
    # the fallback of other closed questions: the closed non-yes/no answers of its content type (attribute)
    attribute_answers = sorted({r.answer for r in records.values()
                                if r.answer_type == "CLOSED" and r.fields["content_type"] == "attribute"
                                and r.answer not in ("yes", "no")}, key=str.lower)
    assert records["901"].categories == attribute_answers == ["lung opacity"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "sure_vqa.data.readers.mimic"]
    assert len(warnings) == 1
    assert warnings[0].startswith("MIMIC: 1 choose questions (1 in train)") and "901" in warnings[0]


def test_odd_prepared_entries_are_counted_not_fatal(tmp_path, caplog):
    import json

    folder = write_mimic(tmp_path, prepared=True, images=False)
    rows = json.loads((folder / "train.json").read_text())
    rows[0]["age"], rows[1]["answer"] = "unknown", None
    (folder / "train.json").write_text(json.dumps(rows))
    with caplog.at_level("WARNING"):
        records = split_records(tmp_path, "MIMIC", "train", "all")
    assert [r.qid for r in records] == [str(row["qid"]) for row in rows[2:]]
    assert f"MIMIC: 1 row left out (age not a number), e.g. {rows[0]['qid']}" in caplog.messages
    assert f"MIMIC: 1 row left out (no answer), e.g. {rows[1]['qid']}" in caplog.messages
