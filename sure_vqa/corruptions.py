"""Image corruptions for inference (docs/method.md#corruptions): Gaussian blur, brightness and noise.

Like torchvision's v2 transforms, a corruption is split in two pure steps: `draw_parameters` draws every
random value from a generator seeded by (run seed, question id) and `apply_parameters` applies them without
any randomness of its own. The drawn parameters are JSON-serialisable and are stored with each prediction,
so a corrupted image can be rebuilt exactly (`apply_parameters(image, stored)`), and the same question gets
the same corrupted image whatever the batch size, worker count or order.

Every value is always drawn, in a fixed order, whether or not the corruption fires: changing one
corruption's probability or strength never changes what is drawn for the others.

    python -m sure_vqa.corruptions grid IMAGE OUT.png [--seed N]

writes a PNG grid of the image under each corruption (rows) and strength (columns).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from sure_vqa import naming
from sure_vqa.config import DataError, check_corruption, run_entry
from sure_vqa.images import load_image, to_rgb

CORRUPTIONS = naming.CORRUPTIONS  # ("blur", "brightness", "noise"): also the order of application
STRENGTHS = naming.STRENGTHS

# docs/method.md#corruptions, one entry per strength.
BLUR_KERNEL_SIZE = {"low": 5, "medium": 7, "high": 11}
BRIGHTNESS_FACTOR_RANGE = {"low": (1.1, 2.0), "medium": (2.5, 4.0), "high": (4.5, 6.0)}
NOISE_MEAN_RANGE = {"low": (0.0, 0.06), "medium": (0.09, 0.15), "high": (0.18, 0.25)}
NOISE_STD = 0.1
# The per-pixel noise gets its own seed, drawn below 2**53 so that it survives a round trip through any
# JSON reader (JavaScript numbers included).
_NOISE_SEED_BOUND = 2**53


# --- the corruptions themselves: uint8 HxWx3 in, uint8 HxWx3 out ----------------------------------------


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
    _check_image(image)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
    sigma = opencv_sigma(kernel_size) if sigma is None else float(sigma)
    radius = (kernel_size - 1) // 2
    blurred = ndimage.gaussian_filter(
        image.astype(np.float64), sigma=(sigma, sigma, 0), radius=(radius, radius, 0), mode="mirror"
    )
    return _to_uint8(blurred)


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiplies every pixel by `factor`, clipped to [0, 255]."""
    _check_image(image)
    return _to_uint8(image.astype(np.float64) * float(factor))


def noise_field(shape: Sequence[int], mean: float, noise_seed: int, std: float = NOISE_STD) -> np.ndarray:
    """255 * N(mean, std) per pixel (HxW), from its own seeded generator so that it can be replayed."""
    height, width = int(shape[0]), int(shape[1])
    return 255.0 * np.random.default_rng(int(noise_seed)).normal(float(mean), float(std), size=(height, width))


def add_noise(image: np.ndarray, mean: float, noise_seed: int, std: float = NOISE_STD) -> np.ndarray:
    """Adds 255 * N(mean, std), the same value on every channel of a pixel, clipped to [0, 255]."""
    _check_image(image)
    field = noise_field(image.shape, mean, noise_seed, std)
    return _to_uint8(image.astype(np.float64) + field[:, :, None])


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Clip to [0, 255] and round to the nearest integer (as OpenCV's saturate_cast does)."""
    return np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = (
            f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        )
        raise ValueError(f"corruptions take uint8 HxWx3 (RGB) arrays, got a {described}")


# --- drawing and applying parameters --------------------------------------------------------------------


def corruption_rng(seed: int, qid: str | int) -> np.random.Generator:
    """A generator seeded by (run seed, question id) through numpy's SeedSequence.

    The qid enters through SHA-256, not Python's hash(), which is salted per process.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    digest = hashlib.sha256(str(qid).encode("utf-8")).digest()
    qid_words = np.frombuffer(digest, dtype="<u4").tolist()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), *qid_words])))


def draw_parameters(
    seed: int,
    qid: str | int,
    probabilities: Mapping[str, float],
    strengths: Mapping[str, str],
    shape: Sequence[int],
) -> dict[str, Any]:
    """Draws which corruptions fire and their magnitudes for one image of `shape` (H, W[, C]).

    Each corruption fires independently with its probability; if none fired, one of the three, chosen
    uniformly, is applied (docs/method.md#corruptions), so every image is corrupted. Returns a JSON-serialisable dict:
    `applied` (names in the order they are applied), `fallback` (whether the pick was the random one),
    `shape`, and one entry per applied corruption with its strength and drawn values.
    """
    probs, levels = check_corruption(probabilities, strengths)
    if len(shape) < 2 or int(shape[0]) < 1 or int(shape[1]) < 1:
        raise ValueError(f"shape must be (height, width[, channels]) with positive sizes, got {tuple(shape)}")
    rng = corruption_rng(seed, qid)
    # Fixed draw order; everything is drawn even when unused (see the module docstring).
    fires = {name: bool(rng.random() < probs[name]) for name in CORRUPTIONS}
    fallback_choice = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
    brightness_factor = float(rng.uniform(*BRIGHTNESS_FACTOR_RANGE[levels["brightness"]]))
    noise_mean = float(rng.uniform(*NOISE_MEAN_RANGE[levels["noise"]]))
    noise_seed = int(rng.integers(_NOISE_SEED_BOUND))

    fallback = not any(fires.values())
    if fallback:
        fires[fallback_choice] = True
    kernel_size = BLUR_KERNEL_SIZE[levels["blur"]]
    drawn = {
        "blur": {"strength": levels["blur"], "kernel_size": kernel_size, "sigma": opencv_sigma(kernel_size)},
        "brightness": {"strength": levels["brightness"], "factor": brightness_factor},
        "noise": {"strength": levels["noise"], "mean": noise_mean, "std": NOISE_STD, "noise_seed": noise_seed},
    }
    params: dict[str, Any] = {
        "seed": int(seed),
        "qid": str(qid),
        "shape": [int(shape[0]), int(shape[1])],
        "applied": [name for name in CORRUPTIONS if fires[name]],
        "fallback": fallback,
    }
    params.update({name: drawn[name] for name in params["applied"]})
    return params


def apply_parameters(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Applies drawn (or stored) parameters: no randomness here, so the result is a pure function of both."""
    _check_image(image)
    try:
        applied = list(params["applied"])
        unknown = set(applied) - set(CORRUPTIONS)
        if unknown:
            raise DataError(
                f"corruption parameters name unknown corruptions {sorted(unknown)}; valid: {', '.join(CORRUPTIONS)}"
            )
        expected_shape = tuple(int(v) for v in params["shape"])
        if image.shape[:2] != expected_shape:
            raise DataError(
                f"corruption parameters were drawn for an image of shape {list(expected_shape)}, "
                f"but the image has shape {list(image.shape[:2])}"
            )
        out = image
        for name in CORRUPTIONS:  # always in the fixed order, whatever order the stored list has
            if name not in applied:
                continue
            values = params[name]
            if name == "blur":
                out = gaussian_blur(out, int(values["kernel_size"]), float(values["sigma"]))
            elif name == "brightness":
                out = adjust_brightness(out, float(values["factor"]))
            else:
                out = add_noise(out, float(values["mean"]), int(values["noise_seed"]), float(values["std"]))
    except (KeyError, TypeError) as err:
        raise DataError(f"corruption parameters are incomplete or malformed ({err!r}): {dict(params)}") from err
    return out


def corrupt(
    image: np.ndarray | Image.Image,
    seed: int,
    qid: str | int,
    probabilities: Mapping[str, float],
    strengths: Mapping[str, str],
) -> tuple[np.ndarray, dict[str, Any]]:
    """Draws parameters for this (seed, qid) and applies them: (corrupted uint8 HxWx3 array, parameters)."""
    array = as_rgb_array(image)
    params = draw_parameters(seed, qid, probabilities, strengths, array.shape)
    return apply_parameters(array, params), params


def as_rgb_array(image: np.ndarray | Image.Image) -> np.ndarray:
    """A PIL image (any mode) or a uint8 HxWx3 array as a uint8 HxWx3 array."""
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb(image), dtype=np.uint8)
    _check_image(image)
    return image


# --- the grid command ------------------------------------------------------------------------------------

_GRID_CELL = 256  # the longest side of a cell in the grid, in pixels (corrupted at full size, then shown smaller)
_LABEL_HEIGHT = 16


def grid_image(image: Image.Image, seed: int = 0, qid: str = "grid") -> Image.Image:
    """One row per corruption, one column per strength after the original; each cell is that corruption alone."""
    original = np.asarray(to_rgb(image), dtype=np.uint8)
    rows: list[list[tuple[str, np.ndarray]]] = []
    for name in CORRUPTIONS:
        row = [("original", original)]
        for level in STRENGTHS:
            probabilities = {other: float(other == name) for other in CORRUPTIONS}
            strengths = {other: level for other in CORRUPTIONS}
            corrupted, params = corrupt(original, seed, qid, probabilities, strengths)
            row.append((f"{name} {level}: {_describe(name, params[name])}", corrupted))
        rows.append(row)

    height, width = original.shape[:2]
    scale = min(1.0, _GRID_CELL / max(height, width))
    cell_w, cell_h = max(1, round(width * scale)), max(1, round(height * scale))
    cols = len(STRENGTHS) + 1
    pad = 4
    sheet = Image.new("RGB", (cols * (cell_w + pad) + pad, len(rows) * (cell_h + _LABEL_HEIGHT + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (label, array) in enumerate(row):
            x, y = pad + c * (cell_w + pad), pad + r * (cell_h + _LABEL_HEIGHT + pad)
            draw.text((x, y), label, fill="black")
            cell = Image.fromarray(array).resize((cell_w, cell_h), Image.Resampling.BILINEAR)
            sheet.paste(cell, (x, y + _LABEL_HEIGHT))
    return sheet


def _describe(name: str, values: Mapping[str, Any]) -> str:
    if name == "blur":
        return f"k={values['kernel_size']} s={values['sigma']:.2f}"
    if name == "brightness":
        return f"x{values['factor']:.2f}"
    return f"mu={values['mean']:.3f}"


def save_png_atomic(image: Image.Image, out_path: str | Path) -> Path:
    """Writes a PNG through a temporary file in the same folder, so a crash never leaves half a file."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG")
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


@run_entry
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sure_vqa.corruptions", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    grid = commands.add_parser("grid", help="write a PNG grid of IMAGE under each corruption and strength")
    grid.add_argument("image", type=Path, help="the image to corrupt (any format PIL reads)")
    grid.add_argument("out", type=Path, help="the PNG file to write")
    grid.add_argument("--seed", type=int, default=0, help="run seed for the drawn parameters (default 0)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    sheet = grid_image(load_image(args.image), seed=args.seed, qid=args.image.name)
    print(f"wrote {save_png_atomic(sheet, args.out)}")


if __name__ == "__main__":
    main()
