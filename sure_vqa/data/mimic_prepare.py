"""Preparing MIMIC-CXR-VQA (docs/method.md#datasets): string answers, answer types and patient demographics.

Reads the question files the dataset's own builder writes (`{train,valid,test}.json`) and MIMIC-IV's
`hosp/patients.csv` (`gender`, `anchor_age`, `anchor_year_group`) and `hosp/admissions.csv` (`race`), and writes
`train.json`, `validate.json`, `test.json` into the MIMIC folder, which sure_vqa.data.readers.mimic reads.
Run through `sure-vqa prepare mimic`; pandas does the table joins (MIMIC-IV has ~300k patients).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sure_vqa.atomic_io import write_text_atomic
from sure_vqa.config import DataError
from sure_vqa.data.rawfiles import json_rows_text, read_rows
from sure_vqa.data.readers import mimic
from sure_vqa.data.records import CLOSED, OPEN

QUESTIONS_DIR = "mimic-cxr-vqa/mimiccxrvqa/dataset"
QUESTION_FILES = {"train": "train.json", "val": "valid.json", "test": "test.json"}
HOSP_DIR = "mimic-cxr-vqa/physionet.org/files/mimiciv/2.2/hosp"
PATIENTS_FILE = "patients.csv"
ADMISSIONS_FILE = "admissions.csv"
QUESTION_KEYS = (
    "idx",
    "image_path",
    "subject_id",
    "semantic_type",
    "content_type",
    "template",
    "template_arguments",
    "question",
    "answer",
)
SEMANTIC_TYPES = {"verify": CLOSED, "choose": CLOSED, "query": OPEN}
GENDER_WORDS = {"f": "female", "m": "male"}
# MIMIC-IV `race` values outside these groups (OTHER, UNKNOWN, UNABLE TO OBTAIN, PATIENT DECLINED TO ANSWER,
# AMERICAN INDIAN/ALASKA NATIVE, NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER, MULTIPLE RACE/ETHNICITY,
# SOUTH AMERICAN) are UNKNOWN/OTHER, as in the SURE-VQA study. PORTUGUESE is listed among the white groups there.
_RACE_PREFIXES = (
    ("WHITE", "WHITE"),
    ("PORTUGUESE", "WHITE"),
    ("BLACK", "BLACK"),
    ("ASIAN", "ASIAN"),
    ("HISPANIC", "HISPANIC/LATINO"),
)


def race_group(race: Any) -> str | None:
    """The ethnicity group of one MIMIC-IV `race` value, or None when it names no known group."""
    if not isinstance(race, str):
        return None
    race = race.strip().upper()
    for prefix, group in _RACE_PREFIXES:
        if race.startswith(prefix):
            return group
    return None


def ethnicity_of(races: Iterable[Any]) -> str:
    """One group per patient: the single known group of their admissions, else UNKNOWN/OTHER (none known, or
    several different known groups)."""
    groups = {group for group in map(race_group, races) if group is not None}
    return groups.pop() if len(groups) == 1 else mimic.UNKNOWN_OTHER


def answer_of(semantic_type: str, content_type: str, answers: Sequence[str]) -> str:
    """The builder's answer list as one string (docs/method.md#datasets). Raises ValueError for an impossible list."""
    answers = [str(a).strip() for a in answers]
    if content_type == mimic.GENDER_CONTENT:
        answers = [GENDER_WORDS.get(a.lower(), a) for a in answers]
    if semantic_type == "verify":
        if len(answers) != 1 or answers[0].lower() not in ("yes", "no"):
            raise ValueError(f"a verify question needs the answer [yes] or [no], got {list(answers)}")
        return answers[0].lower()
    if semantic_type == "choose":
        if len(answers) > 2:
            raise ValueError(f"a choose question has at most two answers, got {list(answers)}")
        return {0: "none", 1: answers[0] if answers else "", 2: "both"}[len(answers)]
    return ", ".join(answers) if answers else "none"


def demographics(patients_csv: Path, admissions_csv: Path) -> dict[int, dict[str, Any]]:
    """subject_id -> gender, age (anchor_age), year (anchor_year_group), ethnicity; a value that is not unique
    for a subject is None (ethnicity: UNKNOWN/OTHER)."""
    import pandas as pd

    columns = {
        patients_csv: ["subject_id", "gender", "anchor_age", "anchor_year_group"],
        admissions_csv: ["subject_id", "race"],
    }
    tables = {}
    for path, wanted in columns.items():
        if not path.is_file():
            raise DataError(f"{path} not found; it comes with MIMIC-IV (see data/README_MIMIC.md)")
        try:
            tables[path] = pd.read_csv(path, usecols=wanted)
        except ValueError as err:
            raise DataError(f"{path} must have the columns {', '.join(wanted)} ({err})") from None
    patients, admissions = tables[patients_csv], tables[admissions_csv]

    by_subject = patients.groupby("subject_id")
    values = by_subject.first()
    unique = by_subject.nunique(dropna=True) == 1
    ethnicities = admissions.drop_duplicates().groupby("subject_id")["race"].agg(ethnicity_of)

    people: dict[int, dict[str, Any]] = {}
    for subject, row in values.iterrows():
        people[int(subject)] = {
            "gender": row["gender"] if unique.at[subject, "gender"] else None,
            "age": int(row["anchor_age"]) if unique.at[subject, "anchor_age"] else None,
            "year": row["anchor_year_group"] if unique.at[subject, "anchor_year_group"] else None,
        }
    for subject, ethnicity in ethnicities.items():
        people.setdefault(int(subject), {"gender": None, "age": None, "year": None})["ethnicity"] = ethnicity
    return people


def prepare(
    mimic_dir: Path,
    questions_dir: Path | None = None,
    hosp_dir: Path | None = None,
    image_dir: Path | None = None,
) -> dict[str, int]:
    """Writes the prepared train.json, validate.json and test.json into `mimic_dir`; returns entries per file.

    Defaults follow data/README_MIMIC.md: questions under `mimic-cxr-vqa/mimiccxrvqa/dataset`, MIMIC-IV under
    `mimic-cxr-vqa/physionet.org/files/mimiciv/2.2/hosp`, images under `mimic.IMAGE_DIR`. Every input is read
    and checked before anything is written.
    """
    questions_dir = questions_dir or mimic_dir / QUESTIONS_DIR
    hosp_dir = hosp_dir or mimic_dir / HOSP_DIR
    image_prefix = Path(os.path.relpath(image_dir, mimic_dir)).as_posix() if image_dir else mimic.IMAGE_DIR
    people = demographics(hosp_dir / PATIENTS_FILE, hosp_dir / ADMISSIONS_FILE)
    unknown = {"gender": None, "age": None, "year": None, "ethnicity": mimic.UNKNOWN_OTHER}

    prepared: dict[str, list[dict[str, Any]]] = {}
    for source, filename in QUESTION_FILES.items():
        path = questions_dir / filename
        rows = read_rows(
            path,
            QUESTION_KEYS,
            "build the questions with the MIMIC-CXR-VQA builder (see data/README_MIMIC.md)",
        )
        out = []
        for row in tqdm(rows, desc=f"MIMIC {source}", unit="q", leave=False):
            where = f"{path}: entry idx {row['idx']!r}"
            semantic_type = row["semantic_type"]
            if semantic_type not in SEMANTIC_TYPES:
                raise DataError(
                    f"{where} has semantic_type={semantic_type!r}; valid: {', '.join(SEMANTIC_TYPES)}"
                )
            raw_answer = row["answer"]
            answers = [raw_answer] if isinstance(raw_answer, str) else list(raw_answer or [])
            try:
                answer = answer_of(semantic_type, row["content_type"], answers)
                subject = int(row["subject_id"])
            except ValueError as err:
                raise DataError(f"{where}: {err}") from None
            person = {**unknown, **people.get(subject, {})}
            entry = {key: value for key, value in row.items() if key not in ("idx", "answer")}
            entry.update(
                qid=row["idx"],
                answer_orig=answers,
                answer=answer,
                answer_type=SEMANTIC_TYPES[semantic_type],
                gender=person["gender"],
                age=person["age"],
                year=person["year"],
                ethnicity=person["ethnicity"],
                image=f"{image_prefix}/{row['image_path']}",
            )
            out.append(entry)
        prepared[source] = out
    for source, rows in prepared.items():
        write_text_atomic(mimic_dir / mimic.PREPARED_FILES[source], json_rows_text(rows))
    return {mimic.PREPARED_FILES[source]: len(rows) for source, rows in prepared.items()}
