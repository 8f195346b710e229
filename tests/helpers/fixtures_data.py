"""Raw dataset folders in the released formats, for tests of any area (imported, not a conftest fixture).

    from tests.helpers.fixtures_data import write_slake
    slake_dir = write_slake(tmp_path)          # tmp_path/SLAKE with imgs/, train.json, validate.json, test.json
    # DATASET_ROOT_DIR is then tmp_path

The entries mirror the real schemas (docs/method.md#datasets) and hold the awkward cases: Chinese SLAKE rows, numeric
answers, "A or B" closed questions, OVQA closed questions that aren't yes/no, MIMIC patients with several races
and ages 40-59. The images are small real JPEG files (grayscale and RGB; `write_image` also writes 16-bit
PNGs), so image loading works on them. Each tests/test_data_*.py file states the split membership these rows
give, computed by hand.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# --- images -------------------------------------------------------------------------------------


def write_image(path: Path, seed: int, size: int = 32, mode: str = "L") -> Path:
    """A small deterministic image: 8-bit grayscale ("L"), RGB or 16-bit grayscale ("I;16") by `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mode == "RGB":
        image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (size, size), dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L")
    image.save(path)
    return path


def _write_json(path: Path, rows: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=4, ensure_ascii=False), encoding="utf-8")


# --- SLAKE --------------------------------------------------------------------------------------

# img_id -> (modality, location). SLAKE images are split-disjoint: 1-5 train, 6-7 validate, 8-10 test.
SLAKE_IMAGES = {
    1: ("CT", "Abdomen"),
    2: ("MRI", "Brain"),
    3: ("X-Ray", "Chest_lung"),
    4: ("CT", "Lung"),
    5: ("X-Ray", "Chest_heart"),
    6: ("CT", "Pelvic Cavity"),
    7: ("X-Ray", "Chest_lung"),
    8: ("CT", "Abdomen"),
    9: ("X-Ray", "Chest_lung"),
    10: ("MRI", "Brain"),
}


def slake_row(
    qid: int,
    img_id: int,
    question: str,
    answer: Any,
    answer_type: str,
    content_type: str,
    q_lang: str = "en",
    base_type: str = "vqa",
) -> dict[str, Any]:
    modality, location = SLAKE_IMAGES[img_id]
    return {
        "img_name": f"xmlab{img_id}/source.jpg",
        "location": location,
        "answer": answer,
        "modality": modality,
        "base_type": base_type,
        "answer_type": answer_type,
        "question": question,
        "qid": qid,
        "q_lang": q_lang,
        "img_id": img_id,
        "content_type": content_type,
        "triple": ["vhead", "_", "_"],
    }


SLAKE_FILES = {
    "train.json": [
        slake_row(1, 1, "Which modality is used to take this image?", "CT", "OPEN", "Modality"),
        slake_row(2, 1, "Does the picture contain liver?", "Yes", "CLOSED", "Organ"),
        slake_row(3, 1, "图中有肝脏吗?", "是", "CLOSED", "Organ", q_lang="zh"),
        slake_row(4, 2, "How many lesions are in this image?", 2, "OPEN", "Quantity"),
        slake_row(5, 2, "Is the brain healthy?", "No", "CLOSED", "Abnormality"),
        slake_row(6, 3, "Which organ is abnormal, heart or lung?", "Lung", "CLOSED", "Abnormality"),
        slake_row(7, 3, "What is the largest organ in the picture?", "Lung", "OPEN", "Size"),
        slake_row(8, 4, "Which is bigger in this image, heart or lung?", "Lung", "CLOSED", "Size"),
        slake_row(9, 5, "Where is the heart?", "Center", "OPEN", "Position"),
        slake_row(10, 5, "心脏在哪里?", "中间", "OPEN", "Position", q_lang="zh"),
        slake_row(11, 4, "What is the scanning plane of this image?", "Transverse Plane", "OPEN", "Plane"),
        slake_row(12, 1, "What is the shape of the kidney?", "Oval", "CLOSED", "Shape"),
        slake_row(
            13,
            2,
            "Which part of the body does this image belong to?",
            "Brain",
            "OPEN",
            "Position",
            base_type="kvqa",
        ),
    ],
    "validate.json": [
        slake_row(20, 6, "Does this image show the bladder?", "yes", "CLOSED", "Organ"),
        slake_row(21, 7, "What modality is used to take this image?", "X-Ray", "OPEN", "Modality"),
        slake_row(22, 6, "How big is the bladder?", "Small", "OPEN", "Size"),
        slake_row(23, 7, "这张图片是什么模态?", "X光", "OPEN", "Modality", q_lang="zh"),
    ],
    "test.json": [
        slake_row(30, 8, "Which modality is used to take this image, CT or MRI?", "CT", "CLOSED", "Modality"),
        slake_row(31, 8, "How many kidneys are in this image?", 2, "OPEN", "Quantity"),
        slake_row(32, 9, "Does the lung look abnormal?", "Yes", "CLOSED", "Abnormality"),
        slake_row(33, 9, "Which is the biggest organ in this image?", "Lung", "OPEN", "Size"),
        slake_row(34, 10, "What is the shape of the lesion?", "Irregular", "CLOSED", "Shape"),
        slake_row(35, 10, "病变是什么形状?", "不规则", "CLOSED", "Shape", q_lang="zh"),
        slake_row(36, 9, "Is the heart on the left or right of the lung?", "Right", "CLOSED", "Position"),
    ],
}


def write_slake(
    root: Path, name: str = "SLAKE", files: dict[str, list[dict[str, Any]]] | None = None, images: bool = True
) -> Path:
    """`{root}/{name}` in SLAKE's raw format (the demo dataset uses it too); returns the folder."""
    folder = root / name
    for filename, rows in (files or SLAKE_FILES).items():
        _write_json(folder / filename, rows)
    if images:
        for img_id in SLAKE_IMAGES:  # SLAKE's images are JPEGs, grayscale and RGB
            write_image(
                folder / "imgs" / f"xmlab{img_id}" / "source.jpg", img_id, mode="RGB" if img_id % 2 else "L"
            )
    return folder


# --- OVQA ---------------------------------------------------------------------------------------


def ovqa_row(
    qid: int, image: int, organ: str, question: str, answer: Any, answer_type: str, question_type: str
) -> dict[str, Any]:
    return {
        "qid": qid,
        "image_name": f"img{image:04d}.jpg",
        "image_organ": organ,
        "answer": answer,
        "answer_type": answer_type,
        "question_type": question_type,
        "question": question,
    }


# As downloaded, before cleaning. Dropped by cleaning: 104, 107, 205, 305 (closed, not yes/no, not one of the
# three modality questions).
OVQA_RAW_FILES = {
    "train.json": [
        ovqa_row(101, 1, "CHEST", "Is there a fracture in the ribs?", "No", "CLOSED", "Abnormality"),
        ovqa_row(
            102,
            1,
            "CHEST",
            "Which organ system is shown in this image?",
            "Respiratory system",
            "OPEN",
            "Organ System",
        ),
        ovqa_row(103, 2, "LEG", "Is this a CT image or X-Ray image?", "X-Ray image", "CLOSED", "Modality"),
        ovqa_row(104, 2, "LEG", "Is this the left or the right leg?", "Left", "CLOSED", "Attribute Other"),
        ovqa_row(105, 3, "HEAD", "Is the brain normal?", "yes.", "CLOSED", "Condition"),
        ovqa_row(106, 3, "HEAD", "In which plane is this image taken?", "Axial", "OPEN", "PLANE"),
        ovqa_row(107, 4, "HAND", "How many fingers are visible?", 5, "CLOSED", "Attribute Other"),
        ovqa_row(
            108, 4, "HAND", "Which organ system is shown?", "Musculoskeletal system", "OPEN", "Organ System"
        ),
        ovqa_row(109, 5, "LEG", "Is there a fracture?", "YES", "CLOSED", "Abnormality"),
    ],
    "validate.json": [
        ovqa_row(201, 6, "CHEST", "Is this an MRI or a CT scan?", "CT scan", "CLOSED", "Modality"),
        ovqa_row(
            202, 7, "LEG", "What is abnormal in this image?", "Fracture of the tibia", "OPEN", "Abnormality"
        ),
        ovqa_row(
            203, 6, "CHEST", "Which organ system is imaged?", "Cardiovascular system", "OPEN", "Organ System"
        ),
        ovqa_row(204, 8, "HEAD", "Is the lesion enhancing?", "No.", "CLOSED", "Condition"),
        ovqa_row(
            205,
            8,
            "HEAD",
            "Is the lesion in the left or right hemisphere?",
            "Right",
            "CLOSED",
            "Attribute Other",
        ),
    ],
    "test.json": [
        ovqa_row(
            301, 9, "LEG", "Was this image taken with an MRI or CT scanner?", "CT", "CLOSED", "Modality"
        ),
        ovqa_row(
            302,
            9,
            "LEG",
            "Which organ system is shown in this image?",
            "Musculoskeletal system",
            "OPEN",
            "Organ System",
        ),
        ovqa_row(303, 10, "HAND", "Is there a fracture?", "no", "CLOSED", "Abnormality"),
        ovqa_row(304, 11, "CHEST", "What modality is used?", "X-Ray", "OPEN", "Modality"),
        ovqa_row(305, 11, "CHEST", "Which lung is affected?", "Left lung", "CLOSED", "Abnormality"),
        ovqa_row(306, 12, "HEAD", "Is this a CT image or X-Ray image?", "CT image", "CLOSED", "Modality"),
    ],
}
OVQA_DROPPED_BY_CLEANING = {"104", "107", "205", "305"}


def write_ovqa(root: Path, cleaned: bool = False, images: bool = True) -> Path:
    """`{root}/OVQA` as downloaded (cleaned=False) or after data/prepare_ovqa.py (cleaned=True)."""
    from sure_vqa.data.readers import ovqa

    folder = root / "OVQA"
    for filename, rows in OVQA_RAW_FILES.items():
        _write_json(folder / filename, rows)
    if images:
        for image in range(1, 13):
            write_image(folder / "img" / f"img{image:04d}.jpg", 100 + image, mode="RGB" if image % 2 else "L")
    if cleaned:
        ovqa.clean(folder)
    return folder


# --- MIMIC-CXR-VQA ------------------------------------------------------------------------------

# subject_id -> (gender, anchor_age, anchor_year_group, races of their admissions). The expected groups are in
# tests/data/test_mimic.py: ages 35/39 young, 40/45/59 neither, 60/72 old; two known races -> UNKNOWN/OTHER.
MIMIC_PATIENTS = {
    10000001: ("F", 35, "2011 - 2013", ["WHITE"]),
    10000002: ("M", 72, "2014 - 2016", ["BLACK/AFRICAN AMERICAN", "BLACK/AFRICAN AMERICAN"]),
    10000003: ("F", 45, "2008 - 2010", ["WHITE", "BLACK/CAPE VERDEAN"]),
    10000004: ("M", 59, "2017 - 2019", ["ASIAN - CHINESE", "UNKNOWN"]),
    10000005: ("F", 60, "2011 - 2013", ["UNABLE TO OBTAIN"]),
    10000006: ("M", 39, "2014 - 2016", ["HISPANIC OR LATINO"]),
    10000007: ("F", 40, "2008 - 2010", ["PORTUGUESE", "WHITE - RUSSIAN"]),
    10000008: ("M", 80, "2017 - 2019", []),  # no admission: UNKNOWN/OTHER
}
MIMIC_UNKNOWN_SUBJECT = 10000009  # in no MIMIC-IV table: gender and age unknown


def _args(**kinds: list[str]) -> dict[str, dict[str, str]]:
    base = {"object": {}, "attribute": {}, "category": {}, "viewpos": {}, "gender": {}}
    base.update({kind: {str(i): v for i, v in enumerate(values)} for kind, values in kinds.items()})
    return base


# (subject, semantic_type, content_type, template, template_arguments, question, answer list)
_MIMIC_QUESTIONS = {
    "verify_abnormal": (
        "verify",
        "abnormality",
        "Is the ${object} abnormal?",
        _args(object=["left lung"]),
        "Is the left lung abnormal?",
        ["yes"],
    ),
    "verify_either": (
        "verify",
        "presence",
        "Is there either ${attribute_1} or ${attribute_2} in the ${object}?",
        _args(object=["right lung"], attribute=["atelectasis", "pneumonia"]),
        "Is there either atelectasis or pneumonia in the right lung?",
        ["no"],
    ),
    "choose_one": (
        "choose",
        "attribute",
        "Which ${category} is related to the ${object}, ${attribute_1} or ${attribute_2}?",
        _args(
            object=["left lung"],
            category=["anatomicalfinding"],
            attribute=["lung opacity", "pleural effusion"],
        ),
        "Which anatomical finding is related to the left lung, lung opacity or pleural effusion?",
        ["lung opacity"],
    ),
    "choose_both": (
        "choose",
        "anatomy",
        "Which anatomical location is related to ${attribute}, the ${object_1} or the ${object_2}?",
        _args(object=["left lung", "right lung"], attribute=["atelectasis"]),
        "Which anatomical location is related to atelectasis, the left lung or the right lung?",
        ["left lung", "right lung"],
    ),
    "choose_none": (
        "choose",
        "abnormality",
        "Which anatomical location is abnormal, the ${object_1} or the ${object_2}?",
        _args(object=["cardiac silhouette", "trachea"]),
        "Which anatomical location is abnormal, the cardiac silhouette or the trachea?",
        [],
    ),
    "choose_view": (
        "choose",
        "plane",
        "Which view is in this image, AP or PA?",
        _args(),
        "Which view is in this image, AP or PA?",
        ["pa"],
    ),
    "choose_gender": (
        "choose",
        "gender",
        "What is the gender of this patient, male or female?",
        _args(),
        "What is the gender of this patient, male or female?",
        ["f"],
    ),
    "query_gender": (
        "query",
        "gender",
        "What is the gender of this patient?",
        _args(),
        "What is the gender of this patient?",
        ["m"],
    ),
    "query_list": (
        "query",
        "attribute",
        "List all ${category} in the ${object}.",
        _args(object=["left lung"], category=["anatomicalfinding"]),
        "List all anatomical findings in the left lung.",
        ["atelectasis", "lung opacity"],
    ),
    "query_empty": (
        "query",
        "abnormality",
        "List all abnormalities in the ${object}.",
        _args(object=["trachea"]),
        "List all abnormalities in the trachea.",
        [],
    ),
    "verify_gender": (
        "verify",
        "gender",
        "Is this patient ${gender}?",
        _args(gender=["F"]),
        "Is this patient female?",
        ["yes"],
    ),
}

# file -> [(idx, subject, question key)]. Each idx is unique within its file.
MIMIC_LAYOUT = {
    "train.json": [
        (0, 10000001, "verify_abnormal"),
        (1, 10000001, "choose_gender"),
        (2, 10000002, "choose_one"),
        (3, 10000002, "query_list"),
        (4, 10000003, "choose_both"),
        (5, 10000004, "choose_view"),
        (6, 10000005, "query_empty"),
        (7, 10000006, "verify_either"),
        (8, 10000004, "query_gender"),
        (9, 10000008, "choose_none"),
        (10, MIMIC_UNKNOWN_SUBJECT, "verify_abnormal"),
    ],
    "valid.json": [
        (0, 10000001, "query_list"),
        (1, 10000005, "verify_gender"),
        (2, 10000006, "choose_one"),
        (3, 10000004, "verify_abnormal"),
    ],
    "test.json": [
        (0, 10000003, "verify_abnormal"),
        (1, 10000005, "choose_none"),
        (2, 10000006, "query_gender"),
        (3, 10000007, "choose_view"),
        (4, 10000002, "choose_both"),
        (5, 10000001, "verify_either"),
    ],
}


def mimic_image_path(subject: int, idx: int, filename: str) -> str:
    study = 50000000 + subject % 1000 * 10 + idx
    return f"p{str(subject)[:2]}/p{subject}/s{study}/{filename[:-5]}-{idx:04d}.jpg"


def mimic_question_rows(filename: str) -> list[dict[str, Any]]:
    """The builder's output for one file (`mimic-cxr-vqa/mimiccxrvqa/dataset/{train,valid,test}.json`)."""
    split = {"train.json": "train", "valid.json": "valid", "test.json": "test"}[filename]
    rows = []
    for idx, subject, key in MIMIC_LAYOUT[filename]:
        semantic_type, content_type, template, arguments, question, answer = _MIMIC_QUESTIONS[key]
        image_path = mimic_image_path(subject, idx, filename)
        rows.append(
            {
                "split": split,
                "idx": idx,
                "subject_id": str(subject),
                "study_id": image_path.split("/")[2][1:],
                "image_id": Path(image_path).stem,
                "image_path": image_path,
                "question": question,
                "semantic_type": semantic_type,
                "content_type": content_type,
                "template": template,
                "template_program": f"program_{len(key)}",
                "template_arguments": arguments,
                "answer": answer,
            }
        )
    return rows


def write_mimic(root: Path, prepared: bool = False, images: bool = True) -> Path:
    """`{root}/MIMIC` laid out as in data/README_MIMIC.md; prepared=True also runs the preparation."""
    from sure_vqa.data import mimic_prepare
    from sure_vqa.data.readers import mimic

    folder = root / "MIMIC"
    for filename in MIMIC_LAYOUT:
        rows = mimic_question_rows(filename)
        _write_json(folder / mimic_prepare.QUESTIONS_DIR / filename, rows)
        if images:
            for row in rows:
                write_image(folder / mimic.IMAGE_DIR / row["image_path"], row["idx"])
    hosp = folder / mimic_prepare.HOSP_DIR
    hosp.mkdir(parents=True, exist_ok=True)
    with (hosp / "patients.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "gender", "anchor_age", "anchor_year", "anchor_year_group", "dod"])
        for subject, (gender, age, group, _) in MIMIC_PATIENTS.items():
            writer.writerow([subject, gender, age, 2150, group, ""])
    with (hosp / "admissions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "hadm_id", "admittime", "admission_type", "insurance", "race"])
        hadm = 20000000
        for subject, (_, _, _, races) in MIMIC_PATIENTS.items():
            for race in races:
                hadm += 1
                writer.writerow([subject, hadm, "2150-01-01 00:00:00", "EW EMER.", "Medicare", race])
    if prepared:
        mimic_prepare.prepare(folder)
    return folder


def ids(records) -> list[str]:
    """The question ids of records, in order."""
    return [r.qid for r in records]
