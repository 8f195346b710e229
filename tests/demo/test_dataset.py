"""The demo dataset (docs/method.md#datasets): SLAKE's raw format, real packaged images, facts-based questions,
a modality and a content_type shift that work, deterministic bytes, and nothing overwritten."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sure_vqa import naming
from sure_vqa.config import DataError
from sure_vqa.demo.dataset import DEMO_SOURCES_FILE, build_demo, catalogue
from sure_vqa.images.loading import load_image

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SLAKE_FIELDS = {
    "qid", "img_id", "img_name", "question", "answer", "q_lang", "location", "modality", "answer_type",
    "base_type", "content_type", "triple",
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("datasets") / naming.DEMO_DATASET)


@pytest.fixture(scope="module")
def parts(demo_dir: Path) -> dict[str, list[dict]]:
    return {
        part: json.loads((demo_dir / name).read_text(encoding="utf-8"))
        for part, name in naming.PART_FILES.items()
    }


def all_rows(parts: dict[str, list[dict]]) -> list[dict]:
    return [row for rows in parts.values() for row in rows]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_slake_layout_and_fields(demo_dir: Path, parts: dict[str, list[dict]]) -> None:
    assert (demo_dir / "imgs").is_dir()
    for name in ("train.json", "validate.json", "test.json"):
        assert (demo_dir / name).is_file()
    rows = all_rows(parts)
    for row in rows:
        assert set(row) == SLAKE_FIELDS
        assert row["q_lang"] == "en"
        assert row["answer_type"] in ("OPEN", "CLOSED")
        assert row["base_type"] in ("vqa", "kvqa")
        assert isinstance(row["triple"], list) and len(row["triple"]) == 3
        assert isinstance(row["qid"], int) and isinstance(row["img_id"], int)
        assert row["question"].endswith("?") and row["answer"]
    assert len({row["qid"] for row in rows}) == len(rows)
    assert 300 <= len(rows) <= 800  # a few hundred questions
    assert {"OPEN", "CLOSED"} == {row["answer_type"] for row in rows}


def test_images_are_real_distinct_8bit_pngs(demo_dir: Path, parts: dict[str, list[dict]]) -> None:
    names = {row["img_name"] for row in all_rows(parts)}
    assert len(names) >= 40
    digests = set()
    for name in names:
        path = demo_dir / "imgs" / name
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode in ("L", "RGB")
            assert max(image.size) == 320 and min(image.size) >= 32
            pixels = np.asarray(image)
        assert pixels.std() > 5  # an image, not a blank
        digests.add(hashlib.sha256(pixels.tobytes()).hexdigest())
        assert load_image(path).mode == "RGB"  # what training and inference will read
    assert len(digests) == len(names)  # distinct pixels, not only distinct names
    sources = json.loads((demo_dir / DEMO_SOURCES_FILE).read_text(encoding="utf-8"))
    assert {s["img_name"] for s in sources} == names
    assert {s["package"] for s in sources} == {"pydicom", "pydicom-data", "nibabel", "scikit-image"}


def test_modalities_and_image_level_fields(parts: dict[str, list[dict]]) -> None:
    per_image: dict[int, set] = defaultdict(set)
    part_of: dict[int, set] = defaultdict(set)
    for part, rows in parts.items():
        for row in rows:
            per_image[row["img_id"]].add((row["img_name"], row["modality"], row["location"]))
            part_of[row["img_id"]].add(part)
    assert all(len(v) == 1 for v in per_image.values())  # modality and location fixed per image
    assert all(len(v) == 1 for v in part_of.values())  # each image in one part only
    image_modalities = Counter(next(iter(v))[1] for v in per_image.values())
    assert {"CT", "MRI", "X-Ray"} <= set(image_modalities)
    assert image_modalities["X-Ray"] >= 10 and image_modalities["CT"] >= 8 and image_modalities["MRI"] >= 8


def test_modality_shift_x_ray_works(parts: dict[str, list[dict]]) -> None:
    """iid train/val without X-Ray; ood test = X-Ray of the test file plus the train file (docs/method.md#shifts-and-splits)."""
    for part in ("train", "val", "test"):
        modalities = Counter(row["modality"] for row in parts[part])
        assert modalities["X-Ray"] >= 20, part
        assert sum(n for m, n in modalities.items() if m != "X-Ray") >= 80, part
    ood_test_images = {r["img_id"] for r in parts["test"] + parts["train"] if r["modality"] == "X-Ray"}
    assert len(ood_test_images) >= 10


@pytest.mark.parametrize("content_type", ["Modality", "Position", "Organ", "Plane", "Size", "Color", "KG"])
def test_content_type_shift_works(parts: dict[str, list[dict]], content_type: str) -> None:
    for part, rows in parts.items():
        assert sum(row["content_type"] == content_type for row in rows) >= 8, (part, content_type)


def test_yes_no_answers_are_slake_style_and_balanced(parts: dict[str, list[dict]]) -> None:
    answers = [row["answer"] for row in all_rows(parts) if row["answer"].lower() in ("yes", "no")]
    assert set(answers) == {"Yes", "No"}
    assert 0.4 <= answers.count("Yes") / len(answers) <= 0.6
    for row in all_rows(parts):
        if row["answer"] in ("Yes", "No"):
            assert row["answer_type"] == "CLOSED"


def test_answers_follow_from_the_image(demo_dir: Path, parts: dict[str, list[dict]]) -> None:
    """Checks the facts against the pixels and against each other, so that a model could learn them."""
    for row in all_rows(parts):
        question, answer = row["question"], row["answer"]
        if question == "What modality is used to take this image?":
            assert answer == row["modality"]
        if question.startswith("Is this image in "):  # colour vs grayscale, from the pixels themselves
            pixels = np.asarray(Image.open(demo_dir / "imgs" / row["img_name"]).convert("RGB")).astype(int)
            is_colour = np.abs(pixels - pixels.mean(axis=2, keepdims=True)).mean() > 3
            assert answer == ("Color" if is_colour else "Grayscale"), row["img_name"]
        if " or " in question and row["answer_type"] == "CLOSED":  # "A or B": the answer is one option
            assert answer.lower() in question.lower()
        if row["modality"] in ("CT", "MRI", "X-Ray") and row["content_type"] == "Color":
            assert answer == "Grayscale"
    by_question = defaultdict(set)
    for row in all_rows(parts):
        by_question[(row["img_id"], row["question"])].add(row["answer"])
    assert all(len(a) == 1 for a in by_question.values())  # no image gets two answers to one question
    regions = {(r["modality"], r["answer"]) for r in all_rows(parts)
               if r["question"] == "Which part of the body does this image belong to?"}
    assert len({answer for _, answer in regions}) >= 6  # the region really varies with the image


def test_catalogue_facts_are_consistent() -> None:
    images = catalogue()
    assert len({image.key for image in images}) == len(images)
    for image in images:
        assert image.main_organ is None or image.main_organ in image.organs, image.key
        assert image.largest_organ is None or image.largest_organ in image.organs, image.key


def test_second_build_changes_nothing_and_keeps_other_files(demo_dir: Path) -> None:
    """Same bytes on every run: a second build into the same folder finds every file identical."""
    extra = demo_dir / naming.SPLIT_FILES_DIR / "demo_test_all.json"
    extra.parent.mkdir(exist_ok=True)
    extra.write_text("[]")
    before = snapshot(demo_dir)
    assert build_demo(demo_dir) == demo_dir
    assert snapshot(demo_dir) == before
    assert not [p for p in demo_dir.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_cli_refuses_to_overwrite_a_different_file(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "train.json").write_text("[] ")
    result = subprocess.run(
        [sys.executable, "data/build_demo.py", f"root={out}"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "train.json" in result.stderr and "nothing was changed" in result.stderr
    assert [p.name for p in out.iterdir()] == ["train.json"] and (out / "train.json").read_text() == "[] "
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_out_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "demo").write_text("not a folder")
    with pytest.raises(DataError, match="is not a folder"):
        build_demo(tmp_path / "demo")
