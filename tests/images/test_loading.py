"""Image loading: every PIL mode becomes 8-bit RGB, padding is LLaVA's expand2square, bad files name themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sure_vqa.config import DataError
from sure_vqa.images.loading import (
    CLIP_MEAN_FILL,
    expand_to_square,
    load_image,
    processor_fill,
    rescale_to_uint8,
)


def test_grayscale_becomes_rgb_with_equal_channels(tmp_path: Path) -> None:
    values = np.array([[0, 50, 100], [150, 200, 255]], dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "gray.png")
    image = load_image(tmp_path / "gray.png")
    assert image.mode == "RGB" and image.size == (3, 2)
    pixels = np.asarray(image)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[:, :, channel], values)


def test_palette_colours_are_looked_up(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "palette.png")), [[[10, 20, 30], [200, 100, 50]]])


def test_palette_transparency_becomes_black(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette_alpha.png", transparency=0)  # palette entry 0 is fully transparent
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "palette_alpha.png")), [[[0, 0, 0], [200, 100, 50]]])


def test_rgba_is_composited_onto_black(tmp_path: Path) -> None:
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [200, 100, 50, 51]]], dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    pixels = np.asarray(load_image(tmp_path / "rgba.png")).astype(int)
    np.testing.assert_array_equal(pixels[0, 0], [200, 100, 50])  # opaque: unchanged
    np.testing.assert_array_equal(pixels[0, 1], [0, 0, 0])  # transparent: the black background
    # 20 % opaque: 0.2 * colour (40, 20, 10), allowing PIL's fixed-point rounding of one level
    assert np.abs(pixels[0, 2] - np.array([40, 20, 10])).max() <= 1


def test_16bit_is_rescaled_by_its_range(tmp_path: Path) -> None:
    values = np.array([[1000, 1510], [2020, 3000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    pixels = np.asarray(load_image(tmp_path / "deep.png"))
    # (v - 1000) / 2000 * 255: 0, 65.025 -> 65, 130.05 -> 130, 255
    np.testing.assert_array_equal(pixels[:, :, 0], [[0, 65], [130, 255]])
    assert (pixels[:, :, 0] == pixels[:, :, 2]).all()


@pytest.mark.parametrize(("dtype", "mode"), [(np.int32, "I"), (np.float32, "F")])
def test_32bit_integer_and_float_are_rescaled(tmp_path: Path, dtype: type, mode: str) -> None:
    values = np.array([[-100, 0], [120, 300]], dtype=dtype)
    Image.fromarray(values).save(tmp_path / "deep.tif")
    assert Image.open(tmp_path / "deep.tif").mode == mode
    # (v + 100) * 255 / 400: 0, 63.75 -> 64, 140.25 -> 140, 255
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "deep.tif"))[:, :, 1], [[0, 64], [140, 255]])


def test_constant_deep_image_is_black() -> None:
    np.testing.assert_array_equal(rescale_to_uint8(np.full((2, 2), 4000, dtype=np.uint16)), np.zeros((2, 2)))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "rotated.png", exif=exif)
    assert load_image(tmp_path / "rotated.png").size == (2, 4)


def test_pad_to_square_centres_on_the_mean_colour() -> None:
    image = Image.fromarray(np.full((2, 5, 3), 255, dtype=np.uint8))  # 5 wide, 2 high
    padded = np.asarray(expand_to_square(image))
    assert padded.shape == (5, 5, 3)
    # expand2square pastes at ((5 - 2) // 2) = row 1: rows 1-2 are the image, 0 and 3-4 the fill
    assert (padded[1:3] == 255).all()
    for row in (0, 3, 4):
        assert (padded[row] == CLIP_MEAN_FILL).all()
    assert CLIP_MEAN_FILL == (122, 116, 104)


def test_pad_to_square_tall_image_and_custom_fill() -> None:
    image = Image.fromarray(np.zeros((4, 2, 3), dtype=np.uint8))
    padded = np.asarray(expand_to_square(image, fill=(1, 2, 3)))
    assert padded.shape == (4, 4, 3)
    assert (padded[:, 1:3] == 0).all() and (padded[:, 0] == (1, 2, 3)).all() and (padded[:, 3] == (1, 2, 3)).all()


def test_square_image_is_not_changed() -> None:
    image = Image.new("RGB", (3, 3))
    assert expand_to_square(image) is image


def test_load_with_padding_equals_padding_after_load(tmp_path: Path) -> None:
    Image.fromarray(np.arange(24, dtype=np.uint8).reshape(4, 6)).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(
        np.asarray(load_image(tmp_path / "wide.png", pad_to_square=True)),
        np.asarray(expand_to_square(load_image(tmp_path / "wide.png"))),
    )


def test_processor_fill_of_a_real_clip_processor() -> None:
    from transformers import CLIPImageProcessorPil

    assert processor_fill(CLIPImageProcessorPil()) == CLIP_MEAN_FILL
    assert processor_fill(CLIPImageProcessorPil(image_mean=[0.5, 0.5, 0.5])) == (127, 127, 127)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.png does not exist"):
        load_image(tmp_path / "nope.png")


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        load_image(tmp_path)


def test_garbage_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "garbage.png").write_bytes(b"this is not an image at all")
    with pytest.raises(DataError, match=r"garbage\.png cannot be read as an image"):
        load_image(tmp_path / "garbage.png")


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"truncated\.png cannot be read"):
        load_image(tmp_path / "truncated.png")
