"""SLAKE as released (docs/method.md#datasets), English subset; also the reader of the demo dataset, which uses its format.

Folder: `imgs/`, `train.json`, `validate.json`, `test.json`; each entry holds `qid`, `img_id`, `img_name`
(relative to `imgs/`), `question`, `answer` (sometimes a number), `q_lang` (en or zh), `location`, `modality`,
`answer_type`, `base_type`, `content_type`, `triple`.
"""

from __future__ import annotations

from pathlib import Path

from sure_vqa import naming
from sure_vqa.data.categories import derive_categories
from sure_vqa.data.odd_records import OddRecords, ReadRecords
from sure_vqa.data.rawfiles import qa_record, question_rows, repeated_ids
from sure_vqa.data.records import QARecord
from sure_vqa.data.registry import DatasetReader, register

RAW_FILES = naming.PART_FILES
IMAGE_DIR = naming.SLAKE_IMAGE_DIR
REQUIRED_KEYS = ("qid", "img_name", "question", "answer", "answer_type")
SHIFT_FIELDS = ("location", "modality", "content_type", "base_type")
# Fixed per image, so the train file's ood records can join the ood test split without sharing an image with
# training; content_type, base_type and answer_type change from question to question on the same image.
IMAGE_LEVEL_FIELDS = frozenset({"location", "modality"})
QUESTION_TYPE_FIELD = "content_type"  # the fallback answer set of a closed question is that of its type
ENGLISH = "en"


def read_slake_format(dataset_dir: Path, dataset: str = "SLAKE") -> ReadRecords:
    """Every English question of the three files, with `source` train/val/test and closed-answer categories.

    Entries without `q_lang` count as English (the demo dataset writes no language). Entries in another
    language, odd entries (no answer, ...) and an empty file are counted and reported, never fatal.
    """
    hint = f"the {dataset} folder must hold {IMAGE_DIR}/ and {', '.join(RAW_FILES.values())} " + (
        "as released (see data/README_SLAKE.md)"
        if dataset == "SLAKE"
        else "(`make demo` builds the demo dataset)"
    )
    records: list[QARecord] = []
    odd, warnings = OddRecords(), []
    for source, filename in RAW_FILES.items():
        path = dataset_dir / filename
        before, other_language = len(records), 0
        for row in question_rows(path, REQUIRED_KEYS, hint, odd):
            if str(row.get("q_lang", ENGLISH)).strip() != ENGLISH:
                other_language += 1
                continue
            records.append(qa_record(row, path, source, "img_name", IMAGE_DIR, SHIFT_FIELDS))
        if other_language:
            are = "question of" if other_language == 1 else "questions of"
            warnings.append(f"{dataset}: {other_language} {are} {filename} not in English (q_lang), left out")
        if len(records) == before:
            warnings.append(f"{dataset}: {filename} has no English question")
    warnings += repeated_ids(records, dataset)
    return ReadRecords(derive_categories(records, QUESTION_TYPE_FIELD), odd, warnings, dataset)


register(
    DatasetReader(
        name="SLAKE",
        read=read_slake_format,
        image_level_fields=IMAGE_LEVEL_FIELDS,
        description="SLAKE, English questions (q_lang == en)",
        raw_files=tuple(RAW_FILES.values()),
        shift_fields=SHIFT_FIELDS,
    )
)

register(
    DatasetReader(
        name="demo",
        read=lambda dataset_dir: read_slake_format(dataset_dir, dataset="demo"),
        image_level_fields=IMAGE_LEVEL_FIELDS,
        description="the bundled demo dataset, in SLAKE's raw format (built by sure_vqa.demo.dataset)",
        raw_files=tuple(RAW_FILES.values()),
        shift_fields=SHIFT_FIELDS,
    )
)
