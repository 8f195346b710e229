"""Assembling the demo dataset: parts, file names, SLAKE's raw files, and the folder written without replacing
what is there (data/README_demo.md)."""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import DataError
from sure_vqa.demo.dataset.catalogue import DemoImage, catalogue, gray_windowed
from sure_vqa.demo.dataset.packaged import dicom_pixels, nifti_volume, skimage_image
from sure_vqa.demo.dataset.questions import Question, questions_for

DEMO_SOURCES_FILE = "demo_sources.json"
PART_FRACTIONS = {"val": 0.15, "test": 0.2}  # per modality; the rest is train


def assign_parts(images: list[DemoImage]) -> dict[str, str]:
    """image key -> train/val/test: per modality, a seeded shuffle, then PART_FRACTIONS (at least one each)."""
    parts: dict[str, str] = {}
    by_modality: dict[str, list[str]] = {}
    for image in images:
        by_modality.setdefault(image.modality, []).append(image.key)
    for modality, keys in sorted(by_modality.items()):
        keys = sorted(keys)
        random.Random(f"demo-parts:{modality}").shuffle(keys)
        n_val = max(1, round(PART_FRACTIONS["val"] * len(keys)))
        n_test = max(1, round(PART_FRACTIONS["test"] * len(keys)))
        for i, key in enumerate(keys):
            parts[key] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return parts


def image_name(img_id: int) -> str:
    """SLAKE's layout: one folder per image under imgs/ (`xmlab0/source.jpg` there, `demo0/source.png` here)."""
    return f"demo{img_id}/source.png"


def _entries(images: list[DemoImage]) -> Iterator[tuple[str, DemoImage, int, list[Question]]]:
    parts = assign_parts(images)
    for img_id, image in enumerate(images):
        yield parts[image.key], image, img_id, questions_for(image, random.Random(f"demo-questions:{image.key}"))


def _write_dataset(folder: Path, images: list[DemoImage]) -> None:
    """Writes every file of the dataset into `folder` (a fresh temporary folder)."""
    rows: dict[str, list[dict[str, Any]]] = {part: [] for part in naming.PART_FILES}
    sources: list[dict[str, Any]] = []
    entries = sorted(_entries(images), key=lambda e: (list(naming.PART_FILES).index(e[0]), e[2]))
    qid = 0
    for part, image, img_id, questions in entries:
        name = image_name(img_id)
        path = folder / naming.SLAKE_IMAGE_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.render().save(path, format="PNG")
        sources.append({
            "img_id": img_id, "img_name": name, "part": part, "key": image.key, "package": image.source.package,
            "file": image.source.file, "licence": image.source.licence, "description": image.source.description,
            "detail": image.detail, "modality": image.modality, "location": image.location,
        })
        for q in questions:
            rows[part].append({
                "img_id": img_id, "img_name": name, "question": q.question, "answer": q.answer, "q_lang": "en",
                "location": image.location, "modality": image.modality, "answer_type": q.answer_type,
                "base_type": q.base_type, "content_type": q.content_type, "triple": list(q.triple), "qid": qid,
            })
            qid += 1
    for part, file_name in naming.PART_FILES.items():
        (folder / file_name).write_text(json.dumps(rows[part], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / DEMO_SOURCES_FILE).write_text(json.dumps(sources, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def build_demo(out_dir: Path) -> Path:
    """Builds the demo dataset into `out_dir` (created if missing) and returns it.

    The dataset is written to a temporary folder beside `out_dir` first. A file that already exists in
    `out_dir` is never replaced: if it has the same bytes it is left as it is (so a second run does nothing
    and files added later, such as split_files/, are kept); if it differs, DataError names it and nothing
    is written. New files are moved in one by one with os.replace.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"demo dataset folder {out_dir} exists and is not a folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    images = catalogue()
    try:
        _build_into(out_dir, images)
    finally:  # the decoded source images are only needed while building
        for cached in (dicom_pixels, gray_windowed, nifti_volume, skimage_image):
            cached.cache_clear()
    return out_dir


def _build_into(out_dir: Path, images: list[DemoImage]) -> None:
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.building-", dir=out_dir.parent) as tmp:
        staging = Path(tmp)
        _write_dataset(staging, images)
        files = _files(staging)
        conflicts = [
            rel for rel in files
            if (out_dir / rel).exists() and (out_dir / rel).read_bytes() != (staging / rel).read_bytes()
        ]
        if conflicts:
            shown = ", ".join(str(out_dir / rel) for rel in conflicts[:5])
            raise DataError(
                f"{out_dir} already holds {len(conflicts)} file(s) that differ from the demo dataset this version "
                f"builds ({shown}{', ...' if len(conflicts) > 5 else ''}); nothing was changed. Remove the folder "
                "or choose another OUT_DIR."
            )
        # Images first, the question files last: once train.json exists, everything it names exists.
        for rel in sorted(files, key=lambda r: (len(r.parts) == 1, str(r))):
            target = out_dir / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, target)


def summary(dataset_dir: Path) -> str:
    """Counts of images and questions per part, modality and content type (printed by `sure-vqa prepare demo-data`)."""
    lines = []
    for file_name in naming.PART_FILES.values():
        rows = json.loads((Path(dataset_dir) / file_name).read_text(encoding="utf-8"))
        images = {r["img_id"]: r["modality"] for r in rows}
        lines.append(
            f"{file_name:14s} {len(images):3d} images {len(rows):4d} questions | "
            f"modality: {dict(sorted(Counter(images.values()).items()))} | "
            f"content_type: {dict(sorted(Counter(r['content_type'] for r in rows).items()))}"
        )
    return "\n".join(lines)

