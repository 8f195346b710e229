"""A dataset described by one file beside its data, `{DATASET_ROOT_DIR}/{name}/dataset.yaml` (docs/data.md#dataset-yaml).

The description says where the questions are (files of one format, one per part or one with a part column),
which columns hold the question id, image, question, answer and answer type, what to derive when the data has
no id or answer type, which rows to keep, and which fields a shift can use. Every key is checked once into
`DatasetDescription` (sure_vqa/settings.py): an unknown key or a bad value stops with exit 2 naming it. The
built-in descriptions (VQA-RAD, PathVQA) are files of the same kind in sure_vqa/data/descriptions/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sure_vqa.config import ConfigError
from sure_vqa.settings import checked, setting

DESCRIPTION_FILE = "dataset.yaml"
FORMATS = ("json", "jsonl", "csv", "tsv", "parquet", "hf_disk", "pickle")
PARTS = ("train", "val", "test")
# File endings that name a format when `format` is left out.
FORMAT_OF_SUFFIX = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
                    ".pkl": "pickle", ".pickle": "pickle"}
ANSWER_TYPE_RULES = ("yes_no",)


@dataclass(frozen=True)
class Columns:
    """Which column holds what. `image` is a file name (relative to `images`) or the hub's image struct
    ({bytes, path}); `qid` and `answer_type` may be absent from the data (see `qid` and `answer_type_rule`)."""

    question: str = "question"
    answer: str = "answer"
    image: str = "image"
    qid: str | None = None
    answer_type: str | None = None


@dataclass(frozen=True)
class PartFiles:
    """The file (a path or a glob, relative to the dataset folder) of each part; a part may be absent."""

    train: str | None = None
    val: str | None = None
    test: str | None = None


@dataclass(frozen=True)
class PartValues:
    """With one file for every part: the values of `part_column` that put a row in each part."""

    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    test: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetDescription:
    """One dataset.yaml, checked (docs/data.md#dataset-yaml explains each key with a complete example)."""

    description: str = ""  # one line for `sure-vqa ls datasets`
    format: str | None = setting(None, choices=FORMATS)  # null: from the files' endings (a folder: hf_disk)
    parts: PartFiles = PartFiles()
    file: str | None = None  # one file (or glob) holding every part, split by part_column
    part_column: str | None = None
    part_values: PartValues = PartValues()
    images: str | None = None  # the folder that image file names are relative to (null: the dataset folder)
    # the image's file under `images`, from the image column's value and the part (PathVQA: "{part}/{image}.jpg")
    image_pattern: str = "{image}"
    columns: Columns = Columns()
    # the answer type when the data has none: yes_no (answers yes/no are CLOSED, the others OPEN)
    answer_type_rule: str | None = setting(None, choices=ANSWER_TYPE_RULES)
    # rows kept: column -> a value or a list of values (SLAKE-style `q_lang: en`)
    filter: Any = None
    shift_fields: tuple[str, ...] = ()  # the columns a shift can use (sure-vqa splits list shows their values)
    image_level_fields: tuple[str, ...] = ()  # those fixed per image (their ood train rows join the ood test split)
    question_type_field: str | None = None  # the fallback answer set of a closed question is its type's
    # shift fields the data does not have, with the reason `sure-vqa splits list` gives
    unavailable_fields: Any = None

    def __post_init__(self) -> None:
        given = [name for name in PARTS if getattr(self.parts, name)]
        if self.file and given:
            raise ConfigError("dataset.yaml gives both `file` and `parts`; give one file per part (parts) or one "
                              "file with a part_column (file)")
        if not self.file and not given:
            raise ConfigError("dataset.yaml names no question file; give parts: {train: ..., test: ...} or file: ... "
                              "with part_column")
        if self.file and not self.part_column:
            raise ConfigError("dataset.yaml: `file` holds every part, so part_column must name the column that says "
                              "which part a row is in (and part_values its values)")
        if self.part_column and not any(getattr(self.part_values, name) for name in PARTS):
            raise ConfigError(f"dataset.yaml: part_values is empty; give the values of {self.part_column} that mean "
                              "train, val and test")
        missing = sorted(set(self.image_level_fields) - set(self.shift_fields))
        if missing:
            raise ConfigError(f"dataset.yaml: image_level_fields has {missing[0]!r}, which is not in shift_fields "
                              f"({', '.join(self.shift_fields) or 'none'})")
        try:
            self.image_pattern.format(image="x", part="train")
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"dataset.yaml: image_pattern={self.image_pattern!r} is not valid; it may use {{image}} "
                              "and {part} (e.g. \"{part}/{image}.jpg\")") from None
        if self.filter is not None and not isinstance(self.filter, dict):
            raise ConfigError(f"dataset.yaml: filter must map a column to the value(s) kept, got {self.filter!r}")

    def part_files(self) -> dict[str, str]:
        """part -> file or glob (every part to the one file when a part column splits it)."""
        if self.file:
            return {name: self.file for name in PARTS if getattr(self.part_values, name)}
        return {name: getattr(self.parts, name) for name in PARTS if getattr(self.parts, name)}


def read_description(path: Path) -> DatasetDescription:
    """A dataset.yaml, checked; its errors name the file."""
    try:
        node = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path} cannot be read as YAML ({str(err).splitlines()[0]})") from None
    try:
        return checked(DatasetDescription, node or {}, "dataset.yaml")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
