"""Corruption speed and blur fidelity, side by side.

    python bench/bench_corruptions.py            # add OpenCV for the fidelity columns:
    PYTHONPATH=/path/with/cv2 python bench/bench_corruptions.py

Prints (1) milliseconds per image for each corruption and for corrupt() end to end, at LLaVA's input size
(336 px) and at a typical radiograph export (1024 px); (2) our blur next to the same blur written as two 1-D correlations, PIL's
GaussianBlur and, when cv2 is importable, OpenCV's GaussianBlur with the formula sigma and with sigma=0
(OpenCV's own default, which for k<=7 uses a fixed table): time and the largest pixel difference to ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from sure_vqa.images.corruptions import corrupt
from sure_vqa.images.corruptions.blur import KERNEL_SIZE as BLUR_KERNEL_SIZE
from sure_vqa.images.corruptions.blur import gaussian_blur, opencv_sigma
from sure_vqa.images.corruptions.brightness import adjust_brightness
from sure_vqa.images.corruptions.noise import add_noise

try:
    import cv2
except ImportError:  # OpenCV is optional here; the project itself does not depend on it
    cv2 = None


def per_call_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def separable_blur(image: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """The same blur written out: the normalised 1-D taps of cv2.getGaussianKernel, applied per axis."""
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-(offsets**2) / (2 * sigma**2))
    taps /= taps.sum()
    out = image.astype(np.float64)
    for axis in (0, 1):
        out = ndimage.correlate1d(out, taps, axis=axis, mode="mirror")
    return np.rint(np.clip(out, 0, 255)).astype(np.uint8)


def test_image(side: int) -> np.ndarray:
    import skimage.data

    return np.asarray(Image.fromarray(skimage.data.retina()).resize((side, side), Image.Resampling.LANCZOS))


def main() -> None:
    probabilities = {"blur": 0.5, "brightness": 0.5, "noise": 0.5}
    strengths = {"blur": "medium", "brightness": "medium", "noise": "medium"}
    print("== ms per image (best of 5) ==")
    print(f"{'size':>6} {'blur k5':>8} {'blur k7':>8} {'blur k11':>9} {'bright':>7} {'noise':>7} {'corrupt()':>10}")
    for side in (336, 1024):
        image = test_image(side)
        blur = [per_call_ms(lambda k=k, im=image: gaussian_blur(im, k)) for k in BLUR_KERNEL_SIZE.values()]
        bright = per_call_ms(lambda im=image: adjust_brightness(im, 2.0))
        noise = per_call_ms(lambda im=image: add_noise(im, 0.1, 1))
        full = per_call_ms(lambda im=image: corrupt(im, 123, "q", probabilities, strengths))
        print(f"{side:>6} {blur[0]:8.2f} {blur[1]:8.2f} {blur[2]:9.2f} {bright:7.2f} {noise:7.2f} {full:10.2f}")

    image = test_image(336)
    print("\n== Gaussian blur implementations at 336 px: ms | max |difference| to ours (pixel levels) ==")
    if cv2 is None:
        print("(cv2 not importable: the OpenCV columns are skipped)")
    for level, k in BLUR_KERNEL_SIZE.items():
        sigma = opencv_sigma(k)
        ours = gaussian_blur(image, k)
        radius = (k - 1) // 2
        others: dict[str, Callable[[], np.ndarray]] = {
            "ours (scipy, radius=k//2)": lambda k=k: gaussian_blur(image, k),
            "separable correlate1d": lambda s=sigma, r=radius: separable_blur(image, s, r),
            "PIL GaussianBlur": lambda s=sigma: np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(s))),
        }
        if cv2 is not None:
            others["cv2 sigma=formula"] = lambda k=k, s=sigma: cv2.GaussianBlur(image, (k, k), s)
            others["cv2 sigma=0 (default)"] = lambda k=k: cv2.GaussianBlur(image, (k, k), 0)
        print(f"-- {level}: k={k}, sigma={sigma:.2f}")
        for name, fn in others.items():
            diff = int(np.abs(fn().astype(int) - ours.astype(int)).max())
            print(f"   {name:24s} {per_call_ms(fn):7.2f} ms   max diff {diff:3d}")


if __name__ == "__main__":
    main()
