"""The demo's questions, generated from each image's facts only, in SLAKE's fields (content types, base type)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sure_vqa.demo.dataset.catalogue import (
    ABSENT_ORGANS,
    MODALITY_OPTIONS,
    MODALITY_PHRASES,
    ORGAN_SYSTEMS,
    PLANES,
    RADIOLOGY_MODALITIES,
    DemoImage,
)


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    answer_type: str  # OPEN | CLOSED
    content_type: str
    base_type: str = "vqa"
    triple: tuple[str, str, str] = ("vhead", "_", "_")


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def questions_for(image: DemoImage, rng: random.Random) -> list[Question]:
    """SLAKE-style questions whose answers follow from the image's facts (one image's questions, in order)."""
    qs: list[Question] = []
    # Modality: open, yes/no (half about another modality), and "A or B" among SLAKE's three.
    qs.append(Question("What modality is used to take this image?", image.modality, "OPEN", "Modality"))
    others = [m for m in MODALITY_PHRASES if m != image.modality]
    asked = image.modality if rng.random() < 0.5 else rng.choice(others)
    qs.append(Question(f"Is this {MODALITY_PHRASES[asked]}?", _yes_no(asked == image.modality), "CLOSED", "Modality"))
    if image.modality in RADIOLOGY_MODALITIES:
        pair = [image.modality, rng.choice([m for m in RADIOLOGY_MODALITIES if m != image.modality])]
        rng.shuffle(pair)
        qs.append(Question(f"Is this image {MODALITY_OPTIONS[pair[0]]} or {MODALITY_OPTIONS[pair[1]]}?",
                           image.modality, "CLOSED", "Modality"))
    # Body region (SLAKE files these questions under Position).
    qs.append(Question("Which part of the body does this image belong to?", image.body_part, "OPEN", "Position"))
    other_parts = sorted({p for p in ABSENT_ORGANS if p != image.body_part})
    part = image.body_part if rng.random() < 0.5 else rng.choice(other_parts)
    qs.append(Question(f"Is this an image of the {part.lower()}?", _yes_no(part == image.body_part), "CLOSED",
                       "Position"))
    # Organs: the main one, one certainly present, one certainly absent.
    if image.main_organ:
        qs.append(Question("What is the main organ in the image?", image.main_organ, "OPEN", "Organ"))
    if image.organs:
        present = rng.choice(image.organs)
        qs.append(Question(f"Does the picture contain the {present.lower()}?", "Yes", "CLOSED", "Organ"))
    absent = rng.choice(ABSENT_ORGANS[image.body_part])
    qs.append(Question(f"Does the picture contain the {absent.lower()}?", "No", "CLOSED", "Organ"))
    # Plane, where the image has one.
    if image.plane:
        qs.append(Question("In what plane is this image scanned?", image.plane, "OPEN", "Plane"))
        plane = image.plane if rng.random() < 0.5 else rng.choice([p for p in PLANES if p != image.plane])
        qs.append(Question(f"Is this image taken in the {plane.split()[0].lower()} plane?",
                           _yes_no(plane == image.plane), "CLOSED", "Plane"))
    # Size: the largest organ, where it is certain.
    if image.largest_organ:
        qs.append(Question("Which is the largest organ in the picture?", image.largest_organ, "OPEN", "Size"))
        smaller = [o for o in image.organs if o != image.largest_organ] or list(ABSENT_ORGANS[image.body_part])
        organ = image.largest_organ if rng.random() < 0.5 else rng.choice(smaller)
        qs.append(Question(f"Is the {organ.lower()} the largest organ in the picture?",
                           _yes_no(organ == image.largest_organ), "CLOSED", "Size"))
    # Colour: from the image itself.
    options = ["color", "grayscale"]
    rng.shuffle(options)
    qs.append(Question(f"Is this image in {options[0]} or {options[1]}?", "Color" if image.color else "Grayscale",
                       "CLOSED", "Color"))
    # Knowledge graph: the organ system of the main organ.
    if image.main_organ in ORGAN_SYSTEMS:
        system = ORGAN_SYSTEMS[image.main_organ]
        qs.append(Question("Which organ system does the main organ in this image belong to?", system, "OPEN", "KG",
                           base_type="kvqa", triple=(image.main_organ, "belong_to", system)))
    return qs


