"""OVQA as released and cleaned (docs/method.md#datasets): the reader and the cleaning step (run by `sure-vqa prepare ovqa`).

Folder: `img/`, `train.json`, `validate.json`, `test.json`; each entry holds `qid`, `image_name`, `question`,
`answer`, `answer_type`, `question_type` (Modality, Abnormality, Attribute Other, Condition, Organ System,
PLANE) and `image_organ` (LEG, HAND, CHEST, HEAD).

Cleaning keeps every open question and every closed question answered yes/no (case and a trailing period
ignored), drops the other closed questions except the three modality questions below, and keeps each original
file beside it as `<name>_old.json` (the original code's backup name, so folders it cleaned are read as they are).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.atomic_io import write_bytes_atomic, write_text_atomic
from sure_vqa.config import DataError
from sure_vqa.data.categories import derive_categories, normalise_yes_no
from sure_vqa.data.odd_records import OddRecords, ReadRecords
from sure_vqa.data.rawfiles import qa_record, question_rows, read_rows, repeated_ids
from sure_vqa.data.records import CLOSED, QARecord
from sure_vqa.data.registry import DatasetReader, register

RAW_FILES = naming.PART_FILES
BACKUP_SUFFIX = "_old"
IMAGE_DIR = "img"
REQUIRED_KEYS = ("qid", "image_name", "question", "answer", "answer_type")
SHIFT_FIELDS = ("image_organ", "question_type")
IMAGE_LEVEL_FIELDS = frozenset({"image_organ"})  # question_type changes from question to question
QUESTION_TYPE_FIELD = "question_type"
# The closed questions kept although their answer is not yes/no (matched case-insensitively within the question).
KEPT_MODALITY_QUESTIONS = (
    "Is this a CT image or X-Ray image?",
    "Is this an MRI or a CT scan?",
    "Was this image taken with an MRI or CT scanner?",
)
PREPARE_COMMAND = "sure-vqa prepare ovqa root=<DATASET_ROOT_DIR>/OVQA"


def kept_by_cleaning(row: dict[str, Any]) -> bool:
    """Whether the cleaning step keeps a raw entry (docs/method.md#datasets)."""
    if str(row["answer_type"]).strip().upper() != CLOSED:
        return True
    if normalise_yes_no(str(row["answer"])) is not None:
        return True
    question = str(row["question"]).lower()
    return any(kept.lower() in question for kept in KEPT_MODALITY_QUESTIONS)


def backup_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}{BACKUP_SUFFIX}{path.suffix}")


def _json_text(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=4, ensure_ascii=False) + "\n"


def clean(dataset_dir: Path) -> dict[str, dict[str, int]]:
    """Cleans the three files in place, keeping each original as `<name>_old.json`; returns counts per file.

    Safe to run again: a file that is already clean is left alone. A backup is never overwritten: if one
    exists and differs from the file that needs cleaning, nothing is written and a DataError says so.
    """
    summary: dict[str, dict[str, int]] = {}
    for filename in RAW_FILES.values():
        path = dataset_dir / filename
        rows = read_rows(
            path, REQUIRED_KEYS, "the OVQA folder must hold img/, train.json, validate.json, test.json"
        )
        kept = [row for row in rows if kept_by_cleaning(row)]
        summary[filename] = {"entries": len(rows), "kept": len(kept), "dropped": len(rows) - len(kept)}
        if len(kept) == len(rows):
            continue
        backup = backup_path(path)
        original = path.read_bytes()
        if backup.exists():
            if backup.read_bytes() != original:
                raise DataError(
                    f"{path} needs cleaning but its backup {backup} already exists with other content; "
                    f"move one of them away (nothing was changed)"
                )
        else:
            write_bytes_atomic(backup, original)
        write_text_atomic(path, _json_text(kept))
    return summary


def read_ovqa(dataset_dir: Path) -> ReadRecords:
    """Every question of the three cleaned files, with `source` train/val/test and closed-answer categories
    (odd entries and an empty file are counted and reported, never fatal)."""
    hint = "the OVQA folder must hold img/, train.json, validate.json and test.json (see data/README_OVQA.md)"
    records: list[QARecord] = []
    odd, warnings = OddRecords(), []
    for source, filename in RAW_FILES.items():
        path = dataset_dir / filename
        rows = question_rows(path, REQUIRED_KEYS, hint, odd)
        if not rows:
            warnings.append(f"OVQA: {filename} has no question")
        dropped = [row for row in rows if not kept_by_cleaning(row)]
        if dropped:
            raise DataError(
                f"{path} is not cleaned: {len(dropped)} closed questions are not yes/no (e.g. qid "
                f"{dropped[0]['qid']!r}: {dropped[0]['question']!r}); run `{PREPARE_COMMAND}` first"
            )
        for row in rows:
            records.append(qa_record(row, path, source, "image_name", IMAGE_DIR, SHIFT_FIELDS))
    warnings += repeated_ids(records, "OVQA")
    return ReadRecords(derive_categories(records, QUESTION_TYPE_FIELD), odd, warnings, "OVQA")


register(
    DatasetReader(
        name="OVQA",
        read=read_ovqa,
        image_level_fields=IMAGE_LEVEL_FIELDS,
        description="OVQA, cleaned (closed questions yes/no or one of three modality questions)",
        raw_files=tuple(RAW_FILES.values()),
        shift_fields=SHIFT_FIELDS,
    )
)
