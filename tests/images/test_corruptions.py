"""Corruptions (docs/method.md#corruptions): strengths, hand-computed values, clipping, replay, and independence from order,
batch size and worker count."""

from __future__ import annotations

import json
import math
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sure_vqa.config import ConfigError, DataError
from sure_vqa.images.corruption_grid import grid_image
from sure_vqa.images.corruptions import apply_parameters, corrupt, draw_parameters
from sure_vqa.images.corruptions.blur import KERNEL_SIZE as BLUR_KERNEL_SIZE
from sure_vqa.images.corruptions.blur import gaussian_blur, opencv_sigma
from sure_vqa.images.corruptions.brightness import FACTOR_RANGE as BRIGHTNESS_FACTOR_RANGE
from sure_vqa.images.corruptions.brightness import adjust_brightness
from sure_vqa.images.corruptions.noise import MEAN_RANGE as NOISE_MEAN_RANGE
from sure_vqa.images.corruptions.noise import add_noise
from tests.conftest import PROJECT_ROOT, SURE_VQA

ALL = {"blur": 1.0, "brightness": 1.0, "noise": 1.0}
NONE = {"blur": 0.0, "brightness": 0.0, "noise": 0.0}
HALF = {"blur": 0.5, "brightness": 0.5, "noise": 0.5}
LOW = {"blur": "low", "brightness": "low", "noise": "low"}


def textured_image(height: int = 48, width: int = 40, seed: int = 0) -> np.ndarray:
    """Mid-grey texture: every corruption visibly changes it and nothing clips by accident."""
    return np.random.default_rng(seed).integers(60, 140, (height, width, 3), dtype=np.uint8)


# --- the numbers of the method ---------------------------------------------------------------------------


def test_kernel_sizes_and_sigmas_per_strength() -> None:
    assert BLUR_KERNEL_SIZE == {"low": 5, "medium": 7, "high": 11}
    # 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    assert opencv_sigma(5) == pytest.approx(1.1)
    assert opencv_sigma(7) == pytest.approx(1.4)
    assert opencv_sigma(11) == pytest.approx(2.0)
    for level, k in BLUR_KERNEL_SIZE.items():
        params = draw_parameters(1, "q", {"blur": 1, "brightness": 0, "noise": 0}, {**LOW, "blur": level}, (8, 8))
        assert params["applied"] == ["blur"]
        assert params["blur"]["kernel_size"] == k and params["blur"]["sigma"] == pytest.approx(opencv_sigma(k))


def column_impulse(value: int = 255) -> np.ndarray:
    """One bright column in the middle of a dark image: blurring it traces the 1-D kernel along each row."""
    image = np.zeros((9, 21, 3), dtype=np.uint8)
    image[:, 10] = value
    return image


def test_blur_kernel_taps_against_hand_computed_values() -> None:
    # k=5, sigma=1.1: exp(-x^2 / 2.42) for x = 0, 1, 2 is 1, 0.661514, 0.191493 (sum 2.706014),
    # so the taps are 0.369547, 0.244461, 0.070766 and 255 * taps = 94.23, 62.34, 18.05
    row = gaussian_blur(column_impulse(), 5)[4, :, 0]
    np.testing.assert_array_equal(row[7:14], [0, 18, 62, 94, 62, 18, 0])
    # k=11, sigma=2.0: exp(-x^2 / 8) for x = 0..5 is 1, .882497, .606531, .324652, .135335, .043937 (sum
    # 4.985904); 255 * taps = 51.14, 45.14, 31.02, 16.60, 6.92, 2.25. The kernel stops at x = 5: an untruncated
    # Gaussian would still put 255 * 0.011109 / 4.99 = 0.57 -> 1 at x = 6.
    row = gaussian_blur(column_impulse(), 11)[4, :, 2]
    np.testing.assert_array_equal(row[4:17], [0, 2, 7, 17, 31, 45, 51, 45, 31, 17, 7, 2, 0])
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(column_impulse(), 4)


def test_blur_of_an_impulse_and_of_a_constant() -> None:
    image = np.zeros((21, 21, 3), dtype=np.uint8)
    image[10, 10] = 255
    blurred = gaussian_blur(image, 5)
    # the centre keeps 255 * 0.369547^2 = 34.82 -> 35; its neighbour 255 * 0.369547 * 0.244461 = 23.04 -> 23
    assert blurred[10, 10, 0] == 35 and blurred[10, 11, 1] == 23 and blurred[9, 10, 2] == 23
    assert blurred[10, 13, 0] == 0  # outside the 5x5 kernel
    assert blurred.sum(axis=(0, 1))[0] == pytest.approx(255, abs=6)  # mass preserved up to rounding
    flat = np.full((9, 7, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(gaussian_blur(flat, 11), flat)  # reflect-101 border keeps a constant


def test_blur_border_is_reflect_101() -> None:
    # one bright column at the left edge. Reflect-101 mirrors about the edge pixel (column -1 is column 1,
    # -2 is 2), so the bright column is not repeated outside: column j gets 200 * k[2 - j] and nothing else.
    # (Plain reflect would repeat it, giving column 0 200 * (k[2] + k[1]).)
    image = np.zeros((5, 9, 3), dtype=np.uint8)
    image[:, 0] = 200
    # 200 * (0.369547, 0.244461, 0.070766) = 73.9, 48.9, 14.2; plain reflect would give column 0 122.8
    np.testing.assert_array_equal(gaussian_blur(image, 5)[2, :4, 0], [74, 49, 14, 0])


def test_brightness_multiplies_and_clips() -> None:
    image = np.array([[[0, 100, 200]]], dtype=np.uint8)
    np.testing.assert_array_equal(adjust_brightness(image, 1.5), [[[0, 150, 255]]])
    np.testing.assert_array_equal(adjust_brightness(image, 1.1), [[[0, 110, 220]]])


def test_noise_is_the_same_on_every_channel_with_the_drawn_mean() -> None:
    image = np.full((200, 200, 3), 128, dtype=np.uint8)
    noisy = add_noise(image, mean=0.05, noise_seed=7).astype(float)
    assert (noisy[:, :, 0] == noisy[:, :, 1]).all() and (noisy[:, :, 1] == noisy[:, :, 2]).all()
    delta = noisy[:, :, 0] - 128  # 255 * N(0.05, 0.1): mean 12.75, std 25.5; none clips at 128 +- 5 std
    assert delta.mean() == pytest.approx(12.75, abs=0.5)
    assert delta.std() == pytest.approx(25.5, abs=0.5)


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_drawn_values_stay_in_their_ranges(level: str) -> None:
    factors, means = [], []
    for i in range(300):
        params = draw_parameters(5, f"q{i}", ALL, {"blur": level, "brightness": level, "noise": level}, (4, 4))
        factors.append(params["brightness"]["factor"])
        means.append(params["noise"]["mean"])
        assert params["noise"]["std"] == 0.1
    for values, (low, high) in ((factors, BRIGHTNESS_FACTOR_RANGE[level]), (means, NOISE_MEAN_RANGE[level])):
        assert low <= min(values) and max(values) <= high
        spread = high - low  # uniform draws fill the range: 300 draws reach within 5 % of both ends
        assert min(values) < low + 0.05 * spread and max(values) > high - 0.05 * spread
    assert BRIGHTNESS_FACTOR_RANGE == {"low": (1.1, 2.0), "medium": (2.5, 4.0), "high": (4.5, 6.0)}
    assert NOISE_MEAN_RANGE == {"low": (0.0, 0.06), "medium": (0.09, 0.15), "high": (0.18, 0.25)}


# --- which corruptions fire --------------------------------------------------------------------------------


def test_order_and_certain_probabilities() -> None:
    params = draw_parameters(0, "a", ALL, LOW, (3, 3))
    assert params["applied"] == ["blur", "brightness", "noise"] and params["fallback"] is False


def test_nothing_fired_means_one_at_random() -> None:
    picks = []
    for i in range(300):
        params = draw_parameters(0, str(i), NONE, LOW, (3, 3))
        assert params["fallback"] is True and len(params["applied"]) == 1
        picks.append(params["applied"][0])
    counts = {name: picks.count(name) for name in ("blur", "brightness", "noise")}
    assert all(70 <= c <= 130 for c in counts.values()), counts  # ~100 each


def test_independent_probabilities() -> None:
    fired = {"blur": 0, "brightness": 0, "noise": 0}
    probabilities = {"blur": 0.2, "brightness": 0.5, "noise": 0.8}
    n = 1000
    for i in range(n):
        params = draw_parameters(3, str(i), probabilities, LOW, (3, 3))
        if not params["fallback"]:
            for name in params["applied"]:
                fired[name] += 1
    for name, p in probabilities.items():  # within 4 binomial standard deviations
        assert abs(fired[name] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (name, fired[name])


def test_every_image_is_corrupted_at_least_once() -> None:
    image = textured_image()
    for i in range(100):
        out, params = corrupt(image, 9, f"img{i}", {"blur": 0.1, "brightness": 0.1, "noise": 0.1}, LOW)
        assert params["applied"]
        assert not np.array_equal(out, image), params


def test_one_probability_does_not_change_the_other_draws() -> None:
    a = draw_parameters(11, "x", {"blur": 1.0, "brightness": 1.0, "noise": 1.0}, LOW, (3, 3))
    b = draw_parameters(11, "x", {"blur": 0.0, "brightness": 1.0, "noise": 1.0}, LOW, (3, 3))
    assert "blur" not in b["applied"]
    assert a["brightness"] == b["brightness"] and a["noise"] == b["noise"]


# --- clipping and dtype ------------------------------------------------------------------------------------


def test_clipping_at_both_ends() -> None:
    white = np.full((30, 30, 3), 250, dtype=np.uint8)
    bright, _ = corrupt(white, 1, "w", {"blur": 0, "brightness": 1, "noise": 0}, {**LOW, "brightness": "high"})
    assert bright.dtype == np.uint8 and (bright == 255).all()
    noisy, params = corrupt(white, 1, "w", {"blur": 0, "brightness": 0, "noise": 1}, {**LOW, "noise": "high"})
    assert noisy.dtype == np.uint8 and noisy.max() == 255  # +255*N(0.2, 0.1) is mostly positive: clipped, not wrapped
    assert (noisy >= 200).mean() > 0.95
    black = np.zeros((30, 30, 3), dtype=np.uint8)
    dark, _ = corrupt(black, 1, "b", {"blur": 0, "brightness": 0, "noise": 1}, LOW)
    assert dark.min() == 0 and dark.dtype == np.uint8


# --- determinism and replay -------------------------------------------------------------------------------


def test_same_seed_and_qid_give_the_same_image_and_params() -> None:
    image = textured_image()
    first = corrupt(image, 123, "42", HALF, LOW)
    second = corrupt(image.copy(), 123, 42, HALF, LOW)  # an int qid is the same question as its string
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]
    assert draw_parameters(124, "42", HALF, LOW, (3, 3)) != draw_parameters(123, "42", HALF, LOW, (3, 3))
    assert draw_parameters(123, "43", HALF, LOW, (3, 3)) != draw_parameters(123, "42", HALF, LOW, (3, 3))


def test_draw_is_the_same_in_other_processes() -> None:
    # SeedSequence + SHA-256 of the qid, not the salted hash(): other hash seeds give the same draw
    code = (
        "from sure_vqa.images.corruptions import draw_parameters as d; import json; "
        "print(json.dumps(d(123, 'q-7', {'blur': .5, 'brightness': .5, 'noise': .5}, "
        "{'blur': 'low', 'brightness': 'low', 'noise': 'low'}, (8, 8)), sort_keys=True))"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == json.loads(json.dumps(draw_parameters(123, "q-7", HALF, LOW, (8, 8))))


def test_replay_from_stored_parameters() -> None:
    image = textured_image()
    corrupted, params = corrupt(image, 5, "replay", ALL, {"blur": "high", "brightness": "low", "noise": "medium"})
    stored = json.loads(json.dumps(params))  # what an inference run keeps with each prediction
    np.testing.assert_array_equal(apply_parameters(image, stored), corrupted)
    assert set(stored) >= {"seed", "qid", "shape", "applied", "fallback", "blur", "brightness", "noise"}
    assert isinstance(stored["noise"]["noise_seed"], int) and stored["noise"]["noise_seed"] < 2**53


def test_pil_input_is_the_same_as_its_array() -> None:
    image = textured_image()
    from_pil, _ = corrupt(Image.fromarray(image), 2, "p", HALF, LOW)
    from_array, _ = corrupt(image, 2, "p", HALF, LOW)
    np.testing.assert_array_equal(from_pil, from_array)


def _corrupt_indexed(index: int) -> tuple[int, np.ndarray]:
    """Module-level, so that worker processes can run it."""
    return index, corrupt(textured_image(seed=index), 77, f"qid-{index}", HALF, LOW)[0]


class CorruptedImages:
    """A map-style dataset as inference would use it: each item is corrupted from (seed, its qid)."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> tuple[int, np.ndarray]:
        return _corrupt_indexed(index)


def _by_index(pairs) -> dict[int, np.ndarray]:
    return {int(i): np.asarray(a) for i, a in pairs}


def test_same_output_whatever_the_order_batch_size_or_workers() -> None:
    import torch
    from torch.utils.data import DataLoader

    reference = _by_index(_corrupt_indexed(i) for i in range(12))

    def collect(loader: DataLoader) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for indices, arrays in loader:
            out.update(_by_index(zip(indices.tolist(), arrays.numpy(), strict=True)))
        return out

    reversed_order = list(range(11, -1, -1))
    runs = {
        "workers=0 batch=1": collect(DataLoader(CorruptedImages(), batch_size=1, num_workers=0)),
        "workers=2 batch=5 reversed": collect(
            DataLoader(CorruptedImages(), batch_size=5, num_workers=2, sampler=reversed_order)
        ),
        "workers=2 batch=3 shuffled": collect(
            DataLoader(CorruptedImages(), batch_size=3, num_workers=2, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
        ),
    }
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs["spawned pool, reversed"] = _by_index(pool.map(_corrupt_indexed, reversed_order, chunksize=2))
    for name, result in runs.items():
        assert set(result) == set(reference), name
        for index, array in reference.items():
            np.testing.assert_array_equal(result[index], array, err_msg=name)


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probabilities", "strengths", "message"),
    [
        ({**HALF, "noise": 1.5}, LOW, r"corruption_probabilities.noise=1.5 is outside \[0, 1\]"),
        (HALF, {**LOW, "blur": "extreme"}, "corruption_strength.blur='extreme'"),
        ({"blur": 0.5, "brightness": 0.5}, LOW, "corruption_probabilities.noise is missing"),
    ],
)
def test_bad_settings_are_config_errors(probabilities, strengths, message) -> None:
    with pytest.raises(ConfigError, match=message):
        corrupt(textured_image(), 0, "q", probabilities, strengths)


def test_bad_arrays_and_seeds() -> None:
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        corrupt(textured_image().astype(np.float32), 0, "q", HALF, LOW)
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        corrupt(textured_image()[:, :, 0], 0, "q", HALF, LOW)
    with pytest.raises(ValueError, match="non-negative integer"):
        draw_parameters(-1, "q", HALF, LOW, (3, 3))


def test_replay_refuses_parameters_that_do_not_fit() -> None:
    params = draw_parameters(0, "q", ALL, LOW, (10, 10))
    with pytest.raises(DataError, match=r"drawn for an image of shape \[10, 10\]"):
        apply_parameters(textured_image(), params)
    broken = {**params, "noise": {"strength": "low"}}
    with pytest.raises(DataError, match="incomplete or malformed"):
        apply_parameters(textured_image(10, 10), broken)
    with pytest.raises(DataError, match="unknown corruptions"):
        apply_parameters(textured_image(10, 10), {**params, "applied": ["blur", "fog"]})


# --- the grid command --------------------------------------------------------------------------------------


def test_grid_layout() -> None:
    sheet = grid_image(Image.fromarray(textured_image(48, 40)), seed=3)
    # 4 columns (original + 3 strengths) and 3 rows of 40x48 cells, 4 px gaps, 16 px labels
    assert sheet.size == (4 * (40 + 4) + 4, 3 * (48 + 16 + 4) + 4)


def test_grid_command_writes_a_png(tmp_path: Path) -> None:
    source = tmp_path / "scan.png"
    Image.fromarray(textured_image(48, 40)).save(source)
    out = tmp_path / "grid" / "out.png"
    result = subprocess.run(
        [*SURE_VQA, "corruptions", f"image={source}", f"out={out}", "seed=3"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    written = Image.open(out)
    assert written.format == "PNG" and written.size == (180, 208)
    expected = grid_image(Image.open(source), seed=3, qid="scan.png")  # the qid is the image's file name
    np.testing.assert_array_equal(np.asarray(written), np.asarray(expected))
    assert [p.name for p in out.parent.iterdir()] == ["out.png"]  # no temporary file left behind


def test_grid_command_missing_image_exits_2_and_keeps_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    result = subprocess.run(
        [*SURE_VQA, "corruptions", f"image={tmp_path / 'missing.png'}", f"out={out}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "missing.png does not exist" in result.stderr
    assert out.read_bytes() == b"keep me"
