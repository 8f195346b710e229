"""MIMIC-CXR-VQA, prepared with patient demographics (docs/method.md#datasets, #shifts-and-splits): the reader and its shift groups.

The reader reads the files that `sure-vqa prepare mimic` writes into the MIMIC folder (`train.json`,
`validate.json`, `test.json`; the original SURE-VQA code wrote the same files, which are read as they are).
Each entry holds the builder's fields (`qid` = the builder's `idx`, `image_path`, `subject_id`, `study_id`,
`semantic_type`, `content_type`, `template`, `template_arguments`, `question`) plus `answer_orig` (the builder's
answer list), `answer` (a string), `answer_type`, `gender`, `age`, `year`, `ethnicity` and `image`.

Shift groups: `age=young` (iid: age >= 60, ood: age < 40), `age=old` (the reverse), `ethnicity=nonwhite` (iid:
WHITE, ood: BLACK, ASIAN, HISPANIC/LATINO), `ethnicity=white` (the reverse); UNKNOWN/OTHER and ages 40-59 are in
neither side. Under the gender shift, the gender questions are removed from every split.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import DataError
from sure_vqa.data.categories import YES_NO, derive_categories, mimic_choose_options
from sure_vqa.data.odd_records import OddRecords, ReadRecords
from sure_vqa.data.rawfiles import answer_text, answer_type, question_rows
from sure_vqa.data.records import CLOSED, QARecord
from sure_vqa.data.registry import DatasetReader, register
from sure_vqa.data.shifts import ShiftGroup

log = logging.getLogger(__name__)

PREPARED_FILES = naming.PART_FILES
# Where the images are when the folder is laid out as in the original code (data/README_MIMIC.md).
IMAGE_DIR = "mimic-cxr-vqa/physionet.org/files/mimic-cxr-jpg/2.0.0/files"
REQUIRED_KEYS = (
    "qid",
    "image_path",
    "question",
    "answer",
    "answer_type",
    "semantic_type",
    "content_type",
    "template",
    "template_arguments",
)
SHIFT_FIELDS = ("content_type", "semantic_type", "gender", "age", "ethnicity", "year")
PREPARE_COMMAND = "sure-vqa prepare mimic root=<DATASET_ROOT_DIR>/MIMIC"

WHITE = "WHITE"
UNKNOWN_OTHER = "UNKNOWN/OTHER"
ETHNICITIES = (WHITE, "BLACK", "ASIAN", "HISPANIC/LATINO", UNKNOWN_OTHER)
YOUNG_BELOW = 40  # age < 40 is young
OLD_FROM = 60  # age >= 60 is old; 40-59 belongs to neither group
GENDER_CONTENT = "gender"
# A choose question whose options can't be read takes the closed answers of its content type (as SLAKE and OVQA
# closed questions fall back to their question type's answers).
CATEGORY_FALLBACK_FIELD = "content_type"


def _is_age(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _young(age: Any) -> bool:
    return _is_age(age) and age < YOUNG_BELOW


def _old(age: Any) -> bool:
    return _is_age(age) and age >= OLD_FROM


def _known_nonwhite(ethnicity: Any) -> bool:
    return ethnicity in ETHNICITIES and ethnicity not in (WHITE, UNKNOWN_OTHER)


def _white(ethnicity: Any) -> bool:
    return ethnicity == WHITE


SHIFT_GROUPS = {
    "age": {
        "young": ShiftGroup(
            "young", iid=_old, ood=_young, description="iid: age >= 60, ood: age < 40, 40-59 dropped"
        ),
        "old": ShiftGroup(
            "old", iid=_young, ood=_old, description="iid: age < 40, ood: age >= 60, 40-59 dropped"
        ),
    },
    "ethnicity": {
        "nonwhite": ShiftGroup(
            "nonwhite",
            iid=_white,
            ood=_known_nonwhite,
            description="iid: WHITE, ood: BLACK, ASIAN, HISPANIC/LATINO; UNKNOWN/OTHER dropped",
        ),
        "white": ShiftGroup(
            "white",
            iid=_known_nonwhite,
            ood=_white,
            description="iid: BLACK, ASIAN, HISPANIC/LATINO, ood: WHITE; UNKNOWN/OTHER dropped",
        ),
    },
}


def is_gender_question(record: QARecord) -> bool:
    return record.fields.get("content_type") == GENDER_CONTENT


def _age(value: Any, path: Path, qid: Any) -> int | float | None:
    """Ages as ints (a file written by pandas may hold 65.0 or "65")."""
    if value is None or value == "":
        return None
    try:
        age = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}: entry qid {qid!r} has age={value!r}; it must be a number or null") from None
    return int(age) if age.is_integer() else age


def _categories(row: dict[str, Any]) -> list[str] | None:
    """verify -> yes/no; choose -> its options (None when they can't be read: filled in by derive_categories)."""
    semantic_type = row["semantic_type"]
    if semantic_type == "verify":
        return list(YES_NO)
    if semantic_type == "choose":
        arguments = row["template_arguments"] if isinstance(row["template_arguments"], dict) else {}
        try:
            return mimic_choose_options(str(row["template"]), arguments, str(row["question"]),
                                        content_type=row.get("content_type"))
        except ValueError:
            return None
    return None


def _report_unreadable_options(records: list[QARecord]) -> None:
    unreadable = [r for r in records if r.answer_type == CLOSED and r.categories is None]
    if unreadable:
        per_file = Counter(r.source for r in unreadable)
        log.warning(
            "MIMIC: %d choose questions (%s) name no options that can be read from their template or question "
            "(first qids: %s); their categories are derived as for other closed questions (docs/data.md)",
            len(unreadable), ", ".join(f"{n} in {source}" for source, n in sorted(per_file.items())),
            ", ".join(r.qid for r in unreadable[:5]),
        )


def read_mimic(dataset_dir: Path) -> ReadRecords:
    """Every question of the three prepared files, with `source` train/val/test and closed-answer categories
    (odd entries, such as one without an answer or with an age that is not a number, are counted and reported)."""
    hint = f"prepare the MIMIC folder first with `{PREPARE_COMMAND}` (see data/README_MIMIC.md)"
    records: list[QARecord] = []
    odd, warnings = OddRecords(), []
    for source, filename in PREPARED_FILES.items():
        path = dataset_dir / filename
        rows = question_rows(path, REQUIRED_KEYS, hint, odd)
        if not rows:
            warnings.append(f"MIMIC: {filename} has no question")
        for row in rows:
            fields = {key: row[key] for key in SHIFT_FIELDS if key in row}
            if "age" in fields:
                try:
                    fields["age"] = _age(fields["age"], path, row["qid"])
                except DataError:
                    odd.add("age not a number", str(row["qid"]))
                    continue
            image = row.get("image") or f"{IMAGE_DIR}/{row['image_path']}"
            records.append(
                QARecord(
                    qid=str(row["qid"]),
                    image=str(image),
                    img_name=str(row["image_path"]),
                    question=str(row["question"]).strip(),
                    answer=answer_text(row, path),
                    answer_type=answer_type(row, path),
                    source=source,
                    fields=fields,
                    categories=_categories(row),
                )
            )
    _report_unreadable_options(records)
    # no note on qids shared by two files: the qid is the builder's per-file `idx`, not meant to be unique across files
    return ReadRecords(derive_categories(records, CATEGORY_FALLBACK_FIELD), odd, warnings, "MIMIC")


register(
    DatasetReader(
        name="MIMIC",
        read=read_mimic,
        # Every MIMIC shift is fixed per patient, yet MIMIC keeps its own test file (docs/method.md#shifts-and-splits): no field
        # adds the train file's ood records to the ood test split.
        image_level_fields=frozenset(),
        description="MIMIC-CXR-VQA with patient demographics (prepared by sure-vqa prepare mimic)",
        raw_files=tuple(PREPARED_FILES.values()),
        shift_fields=SHIFT_FIELDS,
        shift_groups=SHIFT_GROUPS,
        shift_exclusions={"gender": is_gender_question},
    )
)
