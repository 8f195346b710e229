"""Brightness: every pixel multiplied by a factor drawn per image (docs/method.md#corruptions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sure_vqa.images.corruptions import Corruption, check_image, register, to_uint8

FACTOR_RANGE = {"low": (1.1, 2.0), "medium": (2.5, 4.0), "high": (4.5, 6.0)}


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiplies every pixel by `factor`, clipped to [0, 255]."""
    check_image(image)
    return to_uint8(image.astype(np.float64) * float(factor))


class Brightness(Corruption):
    """One uniform draw: the factor, in the strength's range."""

    name = "brightness"
    description = "brightness scaled by a factor drawn in the strength's range"
    order = 20

    def draw(self, rng: np.random.Generator, strength: str) -> dict[str, Any]:
        return {"strength": strength, "factor": float(rng.uniform(*FACTOR_RANGE[strength]))}

    def apply(self, image: np.ndarray, values: Mapping[str, Any]) -> np.ndarray:
        return adjust_brightness(image, float(values["factor"]))

    def describe(self, values: Mapping[str, Any]) -> str:
        return f"x{values['factor']:.2f}"


register(Brightness())
