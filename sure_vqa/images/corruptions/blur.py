"""Gaussian blur with OpenCV's kernel and border (docs/method.md#corruptions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sure_vqa.images.corruptions import Corruption, check_image, register, to_uint8

KERNEL_SIZE = {"low": 5, "medium": 7, "high": 11}


def opencv_sigma(kernel_size: int) -> float:
    """The sigma OpenCV derives from a kernel size when none is given: 0.3*((k-1)*0.5-1)+0.8."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def gaussian_blur(image: np.ndarray, kernel_size: int, sigma: float | None = None) -> np.ndarray:
    """Square Gaussian blur of `kernel_size` taps per axis, with OpenCV's default border (BORDER_REFLECT_101).

    scipy.ndimage does the filtering instead of OpenCV so that the project needs no OpenCV wheel: with
    `radius=(k-1)/2` its kernel is cv2.getGaussianKernel(k, sigma) for sigma > 0, and its `mirror` mode is
    BORDER_REFLECT_101 (d c b | a b c d | c b a); bench/bench_corruptions.py measures at most one level of
    difference to cv2.GaussianBlur (rounding). OpenCV itself, given sigma=0 and a kernel of 3, 5 or 7, uses a
    fixed binomial table instead of the sigma formula; docs/method.md#corruptions asks for the formula at every size.
    """
    from scipy import ndimage

    check_image(image)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
    sigma = opencv_sigma(kernel_size) if sigma is None else float(sigma)
    radius = (kernel_size - 1) // 2
    blurred = ndimage.gaussian_filter(
        image.astype(np.float64), sigma=(sigma, sigma, 0), radius=(radius, radius, 0), mode="mirror"
    )
    return to_uint8(blurred)


class Blur(Corruption):
    """The kernel size is fixed per strength; nothing is random."""

    name = "blur"
    description = "Gaussian blur, kernel size fixed per strength"
    order = 10

    def draw(self, rng: np.random.Generator, strength: str) -> dict[str, Any]:
        kernel_size = KERNEL_SIZE[strength]
        return {"strength": strength, "kernel_size": kernel_size, "sigma": opencv_sigma(kernel_size)}

    def apply(self, image: np.ndarray, values: Mapping[str, Any]) -> np.ndarray:
        return gaussian_blur(image, int(values["kernel_size"]), float(values["sigma"]))

    def describe(self, values: Mapping[str, Any]) -> str:
        return f"k={values['kernel_size']} s={values['sigma']:.2f}"


register(Blur())
