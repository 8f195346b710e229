"""Loading images for the VLM: always 8-bit RGB through PIL, optionally padded to a square.

Training and inference both load images through `load_image`, so a model never sees an image prepared
differently from the way it was trained (docs/method.md#prompting). Medical images come in many PIL modes: grayscale
(`L`), palette (`P`), with alpha (`RGBA`, `LA`), 16-bit (`I;16`) and 32-bit integer or float (`I`, `F`)
from DICOM/PNG exports. The deep modes are rescaled to 8 bits by the image's own value range, because their
absolute range differs from file to file (12-bit CT in 16-bit containers, raw MR intensities) and PIL's own
conversion of them clips everything above 255 to white.

Padding follows LLaVA's `expand2square`: the image is centred on a square canvas filled with the image
processor's mean colour, which becomes ~0 after the processor's normalisation, so the padding carries no signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sure_vqa.config import DataError

# CLIP's (and so LLaVA-Med's) image mean, as LLaVA computes the padding colour:
# tuple(int(x * 255) for x in image_processor.image_mean).
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_MEAN_FILL: tuple[int, int, int] = tuple(int(x * 255) for x in CLIP_IMAGE_MEAN)  # (122, 116, 104)

# Modes whose values do not fit 8 bits: rescaled by their range instead of PIL's clipping conversion.
_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


# PIL raises OSError for truncated data, SyntaxError/ValueError from some broken headers.
_UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError)


def _missing_reason(path: Path) -> str | None:
    if path.is_file():
        return None
    return "is a folder, not an image file" if path.is_dir() else "does not exist"


def load_image(path: str | Path, pad_to_square: bool = False, fill: Sequence[int] = CLIP_MEAN_FILL) -> Image.Image:
    """Reads an image file as 8-bit RGB; with `pad_to_square`, pads it as `expand_to_square` does.

    A missing or unreadable file raises DataError naming the file.
    """
    path = Path(path)
    missing = _missing_reason(path)
    if missing is not None:
        raise DataError(f"image file {path} {missing}")
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now, inside the try, so a truncated file fails here and not later
            image = to_rgb(ImageOps.exif_transpose(opened))
    except _UNREADABLE as err:
        raise DataError(f"image file {path} cannot be read as an image: {err}") from err
    return expand_to_square(image, fill) if pad_to_square else image


def image_file_problem(path: str | Path) -> str | None:
    """Why `path` cannot be an image (missing, a folder, an unreadable header), or None; cheap: a stat and the
    header, no decoding, so a whole split is checked before a model loads."""
    path = Path(path)
    missing = _missing_reason(path)
    if missing is not None:
        return missing
    try:
        with Image.open(path) as opened:
            opened.size  # noqa: B018 - parsing the header is the check
    except _UNREADABLE as err:
        return f"cannot be read as an image ({err})"
    return None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: deep modes rescaled by their range, alpha composited onto black."""
    if image.mode in _DEEP_MODES:
        image = Image.fromarray(rescale_to_uint8(np.asarray(image)))  # 2-D uint8 -> mode L
    if image.mode == "P":
        # A palette may carry transparency; go through RGBA so it is handled like any alpha channel.
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        # Medical images have black backgrounds, so transparent pixels become black rather than
        # showing whatever colour happens to be stored under the alpha channel.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def rescale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Linearly maps the array's [min, max] onto [0, 255]; a constant image becomes all zeros."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values - low) * 255.0 / (high - low)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def expand_to_square(image: Image.Image, fill: Sequence[int] = CLIP_MEAN_FILL) -> Image.Image:
    """LLaVA's expand2square: centre the image on a square canvas of colour `fill` (RGB)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), tuple(int(c) for c in fill))
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def processor_fill(image_processor: object) -> tuple[int, int, int]:
    """The padding colour LLaVA uses for a given image processor: its mean, scaled to 0-255."""
    mean = getattr(image_processor, "image_mean", None)
    if mean is None:
        return CLIP_MEAN_FILL
    if isinstance(mean, int | float):
        mean = [mean] * 3
    return tuple(int(float(x) * 255) for x in mean)  # type: ignore[return-value]
