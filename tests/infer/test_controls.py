"""The image controls (blank, shuffled) and the order in which an inference image is prepared."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from sure_vqa.config import DataError
from sure_vqa.data.records import QARecord
from sure_vqa.images.corruptions import corrupt
from sure_vqa.infer.generation.inputs import (
    BLANK_VALUE,
    ImageSettings,
    derangement,
    prepare_image,
    shuffled_sources,
)


def record(qid: str, image: str) -> QARecord:
    return QARecord(qid=qid, image=image, img_name=image, question="q?", answer="a", answer_type="OPEN",
                    source="test")


def test_a_derangement_moves_every_element_and_is_fixed_by_its_seed():
    assert derangement(2, 0).tolist() == [1, 0]  # the only derangement of two
    for n in range(2, 9):
        for seed in range(30):
            permutation = derangement(n, seed)
            assert sorted(permutation.tolist()) == list(range(n))
            assert not np.any(permutation == np.arange(n))
            assert permutation.tolist() == derangement(n, seed).tolist()


def test_derangements_of_three_are_drawn_uniformly():
    # Three elements have exactly two derangements, (1 2 0) and (2 0 1); rejection sampling keeps them equally
    # likely. Over 400 fixed seeds each should come up about 200 times (binomial sd 10).
    counts = Counter(tuple(derangement(3, seed).tolist()) for seed in range(400))
    assert set(counts) == {(1, 2, 0), (2, 0, 1)}
    assert all(160 <= count <= 240 for count in counts.values())


def test_a_derangement_needs_two_elements():
    with pytest.raises(ValueError, match="at least 2 elements"):
        derangement(1, 0)


def test_shuffling_is_over_images_so_no_question_sees_its_own():
    records = [record("1", "a.png"), record("2", "a.png"), record("3", "b.png"), record("4", "c.png"),
               record("5", "c.png"), record("6", "d.png")]
    shown = shuffled_sources(records, seed=3)
    assert all(shown[r.qid].image != r.image for r in records)
    assert shown["1"] == shown["2"] and shown["4"] == shown["5"]  # one replacement per image
    assert sorted({shown[r.qid].image for r in records}) == ["a.png", "b.png", "c.png", "d.png"]
    assert shown == shuffled_sources(list(records), seed=3)
    with pytest.raises(DataError, match="at least 2 distinct images in the split, found 1"):
        shuffled_sources(records[:2], seed=0)


@pytest.fixture
def image_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "img.png"
    Image.fromarray(rng.integers(30, 200, (12, 20, 3), dtype=np.uint8)).save(path)
    return path


def test_blank_then_corruption_then_padding(image_file):
    probabilities, strengths = {"blur": 0.0, "brightness": 0.0, "noise": 1.0}, {c: "high" for c in
                                                                                ("blur", "brightness", "noise")}
    settings = ImageSettings(pad_to_square=True, fill=(9, 8, 7), corruption=(probabilities, strengths),
                             image_control="blank", seed=5)
    image, extras = prepare_image(record("42", "img.png"), settings, lambda r: image_file)
    pixels = np.asarray(image)
    assert pixels.shape == (20, 20, 3)
    assert (pixels[:4] == (9, 8, 7)).all() and (pixels[16:] == (9, 8, 7)).all()  # 4 rows of padding above, below
    blank = np.full((12, 20, 3), BLANK_VALUE, dtype=np.uint8)
    expected, params = corrupt(blank, 5, "42", probabilities, strengths)
    assert (pixels[4:16] == expected).all() and expected.any()  # the noise of this (seed, qid), on the blank
    assert extras == {"corruption": params} and params["applied"] == ["noise"]


def test_the_shuffled_image_is_corrupted_with_the_asking_questions_seed(image_file, tmp_path):
    other = tmp_path / "other.png"
    Image.fromarray(np.full((6, 6, 3), 100, dtype=np.uint8)).save(other)
    corruption = ({"blur": 0.0, "brightness": 1.0, "noise": 0.0}, {"blur": "low", "brightness": "low",
                                                                   "noise": "low"})
    settings = ImageSettings(corruption=corruption, image_control="shuffled", seed=1)
    paths = {"img.png": image_file, "other.png": other}
    image, extras = prepare_image(record("7", "img.png"), settings, lambda r: paths[r.image],
                                  shown=record("8", "other.png"))
    expected, params = corrupt(Image.open(other).convert("RGB"), 1, "7", *corruption)
    assert (np.asarray(image) == expected).all()
    assert extras == {"control_image": "other.png", "corruption": params}
