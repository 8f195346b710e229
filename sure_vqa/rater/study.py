"""The study file: the selected questions and their copied images, read by the app, the export and the analysis.

A study folder is self-contained (`study.json` + `images/`), so it can be copied to the machine that serves
the rating app. Image paths in the file are relative to the folder; the eval folder is stored relative to it
too, so the pair survives being moved together.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import ConfigError, DataError
from sure_vqa.rater.rubric import SCALES, Scale

FORMAT_VERSION = 1
STUDY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IMAGE_NAME_PATTERN = re.compile(r"^[0-9a-f]{16,64}\.(png|jpg|jpeg|gif|webp|bmp)$")


@dataclass(frozen=True)
class StudyItem:
    """One question shown to raters. `judge_score` is kept for the organiser and never sent to raters."""

    qid: str
    question: str
    gt: str
    pred: str
    answer_type: str
    img_name: str
    image: str  # relative to the study folder: images/<sha256 prefix>.<ext>
    scale: str
    judge_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Study:
    study_id: str
    answer_kind: str
    folder: Path
    items: tuple[StudyItem, ...]
    eval_dir: Path
    meta: dict[str, Any]

    def item(self, qid: str) -> StudyItem | None:
        return self._by_qid.get(qid)

    def scale_of(self, item: StudyItem) -> Scale:
        return SCALES[item.scale]

    def image_files(self) -> dict[str, Path]:
        """The only files the app may serve for this study: image name -> path inside the study folder."""
        return {Path(item.image).name: self.folder / item.image for item in self.items}

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_qid", {item.qid: item for item in self.items})


def check_study_id(study_id: str) -> str:
    if not isinstance(study_id, str) or not STUDY_ID_PATTERN.match(study_id):
        raise ConfigError(
            f"study_id={study_id!r} is not valid; use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return study_id


def study_file(folder: Path) -> Path:
    return Path(folder) / naming.RATER_STUDY_FILE


def load_study(folder: str | Path) -> Study:
    """Reads and validates `<folder>/study.json`; DataError names the file and the field that is wrong."""
    folder = Path(folder).expanduser().resolve()
    path = study_file(folder)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; create the study first with human_rater_study/select_questions.py")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not a readable JSON study file: {err}") from None
    if payload.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: format_version={payload.get('format_version')!r}, expected {FORMAT_VERSION}")
    answer_kind = payload.get("answer_kind")
    if answer_kind not in naming.ANSWER_KINDS:
        raise DataError(f"{path}: answer_kind={answer_kind!r}; valid: {', '.join(naming.ANSWER_KINDS)}")
    items: list[StudyItem] = []
    for index, row in enumerate(payload.get("items") or []):
        try:
            item = StudyItem(**row)
        except TypeError as err:
            raise DataError(f"{path}: items[{index}] is malformed: {err}") from None
        if item.scale not in SCALES:
            raise DataError(f"{path}: items[{index}].scale={item.scale!r}; valid: {', '.join(SCALES)}")
        image_path = folder / item.image
        if Path(item.image).parent != Path(naming.RATER_IMAGES_DIR) or not IMAGE_NAME_PATTERN.match(
            Path(item.image).name
        ):
            raise DataError(f"{path}: items[{index}].image={item.image!r} is not an image of the study folder")
        if not image_path.is_file():
            raise DataError(f"{path}: items[{index}] image {image_path} is missing")
        items.append(item)
    if not items:
        raise DataError(f"{path} holds no items")
    if len({item.qid for item in items}) != len(items):
        raise DataError(f"{path}: the same qid appears twice in items")
    if not isinstance(payload.get("eval_dir"), str):
        raise DataError(f"{path}: eval_dir (the rated eval folder, relative to the study folder) is missing")
    return Study(
        study_id=check_study_id(payload.get("study_id")),
        answer_kind=answer_kind,
        folder=folder,
        items=tuple(items),
        eval_dir=(folder / payload["eval_dir"]).resolve(),
        meta={k: v for k, v in payload.items() if k not in ("items",)},
    )
