"""Gaussian noise, the same value on every channel of a pixel (docs/method.md#corruptions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sure_vqa.images.corruptions import Corruption, check_image, register, to_uint8

MEAN_RANGE = {"low": (0.0, 0.06), "medium": (0.09, 0.15), "high": (0.18, 0.25)}
STD = 0.1
# The per-pixel noise gets its own seed, drawn below 2**53 so that it survives a round trip through any
# JSON reader (JavaScript numbers included).
SEED_BOUND = 2**53


def noise_field(shape: Sequence[int], mean: float, noise_seed: int, std: float = STD) -> np.ndarray:
    """255 * N(mean, std) per pixel (HxW), from its own seeded generator so that it can be replayed."""
    height, width = int(shape[0]), int(shape[1])
    return 255.0 * np.random.default_rng(int(noise_seed)).normal(float(mean), float(std), size=(height, width))


def add_noise(image: np.ndarray, mean: float, noise_seed: int, std: float = STD) -> np.ndarray:
    """Adds 255 * N(mean, std), the same value on every channel of a pixel, clipped to [0, 255]."""
    check_image(image)
    field = noise_field(image.shape, mean, noise_seed, std)
    return to_uint8(image.astype(np.float64) + field[:, :, None])


class Noise(Corruption):
    """Two draws: the mean, in the strength's range, then the seed of the per-pixel noise."""

    name = "noise"
    description = "additive Gaussian noise, mean drawn in the strength's range"
    order = 30

    def draw(self, rng: np.random.Generator, strength: str) -> dict[str, Any]:
        mean = float(rng.uniform(*MEAN_RANGE[strength]))
        return {"strength": strength, "mean": mean, "std": STD, "noise_seed": int(rng.integers(SEED_BOUND))}

    def apply(self, image: np.ndarray, values: Mapping[str, Any]) -> np.ndarray:
        return add_noise(image, float(values["mean"]), int(values["noise_seed"]), float(values["std"]))

    def describe(self, values: Mapping[str, Any]) -> str:
        return f"mu={values['mean']:.3f}"


register(Noise())
