"""Which image each question is shown at inference: its own, corrupted, blank, another question's, or none.

The image of a question is a pure function of (settings, seed, qid): corruptions are drawn from a generator seeded
by (seed, qid) (sure_vqa.images.corruptions) and the shuffled control is a seeded derangement computed over the whole
split, so a question gets the same image whatever the batch size, the worker count, the rank that answers it or
whether the run was resumed.

Order of operations: load (RGB) -> image control (blank / shuffled) -> corruption -> pad to square (when the
model was trained on padded images). Corrupting before padding corrupts the picture, not the padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from sure_vqa.config import DataError
from sure_vqa.data.records import QARecord
from sure_vqa.images.corruptions import corrupt
from sure_vqa.images.loading import CLIP_MEAN_FILL, expand_to_square, load_image

# The blank control is black: the background of almost every medical image, so it adds no structure.
BLANK_VALUE = 0


@dataclass(frozen=True)
class ImageSettings:
    """How images are prepared for one run (validated by the inference stage)."""

    with_image: bool = True
    pad_to_square: bool = False
    fill: tuple[int, int, int] = CLIP_MEAN_FILL
    corruption: tuple[dict[str, float], dict[str, str]] | None = None  # (probabilities, strengths)
    image_control: str | None = None  # None | "blank" | "shuffled"
    seed: int = 0


@dataclass
class PreparedInput:
    """One question's index in the split, its image (None without images) and what to record about it."""

    index: int
    image: Image.Image | None
    extras: dict[str, Any] = field(default_factory=dict)


def derangement(n: int, seed: int) -> np.ndarray:
    """A uniformly random permutation of range(n) with no fixed point, by rejection (about e tries on average).

    numpy has no derangement sampler; rejection keeps the result uniform over all derangements.
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {n}")
    rng = np.random.default_rng(seed)
    identity = np.arange(n)
    while True:
        permutation = rng.permutation(n)
        if not np.any(permutation == identity):
            return permutation


def shuffled_sources(records: Sequence[QARecord], seed: int) -> dict[str, QARecord]:
    """qid -> the record whose image the question is shown instead of its own.

    The derangement is over the distinct images of the split (in order of first appearance), so every question
    sees a different image, never its own, even when several questions share one image.
    """
    first_record: dict[str, QARecord] = {}
    for record in records:
        first_record.setdefault(record.image, record)
    images = list(first_record)
    if len(images) < 2:
        raise DataError(f"image_control=shuffled needs at least 2 distinct images in the split, found {len(images)}")
    moved_to = derangement(len(images), seed)
    replacement = {image: first_record[images[moved_to[i]]] for i, image in enumerate(images)}
    return {record.qid: replacement[record.image] for record in records}


def prepare_image(record: QARecord, settings: ImageSettings, image_path: Callable[[QARecord], Path],
                  shown: QARecord | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """The image for one question and the extras to store with its prediction.

    `shown` is the record whose image is used (the shuffled control); extras hold `control_image` (the image
    shown instead, relative to the dataset folder) and `corruption` (the drawn parameters).
    """
    extras: dict[str, Any] = {}
    source = shown if shown is not None else record
    image = load_image(image_path(source))
    if settings.image_control == "shuffled":
        extras["control_image"] = source.image
    elif settings.image_control == "blank":
        image = Image.new("RGB", image.size, (BLANK_VALUE,) * 3)
    if settings.corruption is not None:
        probabilities, strengths = settings.corruption
        array, params = corrupt(image, settings.seed, record.qid, probabilities, strengths)
        image = Image.fromarray(array)
        extras["corruption"] = params
    if settings.pad_to_square:
        image = expand_to_square(image, settings.fill)
    return image, extras


class QuestionInputs(Dataset):
    """The questions of one run as a torch Dataset, so a DataLoader can load images in worker processes."""

    def __init__(self, records: Sequence[QARecord], indices: Sequence[int], settings: ImageSettings,
                 image_path: Callable[[QARecord], Path]) -> None:
        self.records = records
        self.indices = list(indices)
        self.settings = settings
        self.image_path = image_path
        self.shown = (shuffled_sources(records, settings.seed)
                      if settings.with_image and settings.image_control == "shuffled" else {})

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> PreparedInput:
        index = self.indices[position]
        record = self.records[index]
        if not self.settings.with_image:
            return PreparedInput(index, None)
        image, extras = prepare_image(record, self.settings, self.image_path, self.shown.get(record.qid))
        return PreparedInput(index, image, extras)


def as_list(batch: list[PreparedInput]) -> list[PreparedInput]:
    """DataLoader collate function: keep the prepared inputs as they are (a module-level function pickles)."""
    return batch
