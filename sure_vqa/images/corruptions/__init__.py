"""Image corruptions for inference (docs/method.md#corruptions): one module per corruption, behind a registry.

Like torchvision's v2 transforms, corrupting is split in two pure steps: `draw_parameters` draws every random
value from a generator seeded by (run seed, question id) and `apply_parameters` applies them without any
randomness of its own. The drawn parameters are JSON-serialisable and are stored with each prediction, so a
corrupted image can be rebuilt exactly (`apply_parameters(image, stored)`), and the same question gets the same
corrupted image whatever the batch size, worker count or order.

Every value is always drawn, in a fixed order, whether or not the corruption fires: first whether each one
fires and the fallback pick, then each corruption's own values, corruptions in their application order
(`Corruption.order`). Changing one corruption's probability or strength never changes what is drawn for the
others.

Adding a corruption is one module in this package: a `Corruption` subclass with its name, its place in the
order, its per-strength values, `draw` and `apply`, registered with `register`. Every module here is loaded;
the settings check, folder names, the study and the report take the names from `names()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from sure_vqa import naming
from sure_vqa.config import ConfigError, DataError, check_choice
from sure_vqa.images.loading import to_rgb
from sure_vqa.registry import Registry

STRENGTHS = naming.STRENGTHS


class Corruption:
    """One corruption: uint8 HxWx3 in, uint8 HxWx3 out.

    `draw(rng, strength)` returns the JSON-serialisable values of one application (its strength included) and
    must draw the same number of random values whatever the strength; `apply(image, values)` uses those values
    and no randomness of its own; `describe(values)` is a short label for the grid command.
    """

    name: ClassVar[str]
    order: ClassVar[int]  # place in the application (and draw) order; blur 10, brightness 20, noise 30
    description: ClassVar[str] = ""

    def draw(self, rng: np.random.Generator, strength: str) -> dict[str, Any]:
        raise NotImplementedError

    def apply(self, image: np.ndarray, values: Mapping[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def describe(self, values: Mapping[str, Any]) -> str:
        return str(values["strength"])


def _check_name(corruption: Corruption, others: Mapping[str, Corruption]) -> None:
    if not corruption.name.isalnum() or not corruption.name.islower():
        raise ValueError(f"corruption name {corruption.name!r} must be lower-case letters and digits (it is written "
                         "into eval folder names as `{name}-{strength}-p{probability}`)")


REGISTRY: Registry[Corruption] = Registry("corruption", __name__, "corruption_strength entry", _check_name)
register = REGISTRY.register


def names() -> tuple[str, ...]:
    """Every corruption, in the order they are drawn and applied."""
    return tuple(c.name for c in sorted(REGISTRY, key=lambda c: (c.order, c.name)))


def get(name: str) -> Corruption:
    """The corruption called `name` (a stored parameter set that names an unknown one is bad data)."""
    if name not in REGISTRY:
        raise DataError(f"{name!r} is not a corruption; valid: {', '.join(names())}")
    return REGISTRY.get(name)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Clip to [0, 255] and round to the nearest integer (as OpenCV's saturate_cast does)."""
    return np.rint(np.clip(values, 0.0, 255.0)).astype(np.uint8)


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = (
            f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        )
        raise ValueError(f"corruptions take uint8 HxWx3 (RGB) arrays, got a {described}")


def check_settings(probabilities: Mapping[str, Any] | None, strengths: Mapping[str, Any] | None,
                   complete: bool = True) -> tuple[dict[str, float], dict[str, str]]:
    """corruption_probabilities in [0, 1] and corruption_strength in low/medium/high, for every corruption,
    returned in the application order (the order folder names list them in). With complete=False (a run
    without corruption) only the entries given are checked."""
    valid = names()
    probs: dict[str, float] = {}
    levels: dict[str, str] = {}
    for name in valid:
        if not complete and name not in (probabilities or {}) and name not in (strengths or {}):
            continue
        if probabilities is None or name not in probabilities:
            raise ConfigError(f"corruption_probabilities.{name} is missing; give a probability in [0, 1]")
        try:
            p = float(probabilities[name])
        except (TypeError, ValueError):
            raise ConfigError(
                f"corruption_probabilities.{name}={probabilities[name]!r} is not a number in [0, 1]"
            ) from None
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"corruption_probabilities.{name}={p} is outside [0, 1]")
        probs[name] = p
        if strengths is None or name not in strengths:
            raise ConfigError(f"corruption_strength.{name} is missing; valid values: {', '.join(STRENGTHS)}")
        levels[name] = check_choice(strengths[name], f"corruption_strength.{name}", STRENGTHS)
    for setting, given in (("corruption_probabilities", probabilities), ("corruption_strength", strengths)):
        for extra in sorted(set(given or {}) - set(valid)):
            raise ConfigError(f"{setting}.{extra} is not a corruption; valid: {', '.join(valid)}")
    return probs, levels


def uniform_settings(strength: str, probability: float) -> tuple[dict[str, float], dict[str, str]]:
    """Every corruption at one strength and probability (the study's `runs.corruptions: [medium]`)."""
    return check_settings({name: probability for name in names()}, {name: strength for name in names()})


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
    """Draws which corruptions fire and their values for one image of `shape` (H, W[, C]).

    Each corruption fires independently with its probability; if none fired, one of them, chosen uniformly,
    is applied (docs/method.md#corruptions), so every image is corrupted. Returns a JSON-serialisable dict:
    `applied` (names in the order they are applied), `fallback` (whether the pick was the random one),
    `shape`, and one entry per applied corruption with its strength and drawn values.
    """
    probs, levels = check_settings(probabilities, strengths)
    if len(shape) < 2 or int(shape[0]) < 1 or int(shape[1]) < 1:
        raise ValueError(f"shape must be (height, width[, channels]) with positive sizes, got {tuple(shape)}")
    order = names()
    rng = corruption_rng(seed, qid)
    # Fixed draw order; everything is drawn even when unused (see the module docstring).
    fires = {name: bool(rng.random() < probs[name]) for name in order}
    fallback_choice = order[int(rng.integers(len(order)))]
    drawn = {name: get(name).draw(rng, levels[name]) for name in order}
    fallback = not any(fires.values())
    if fallback:
        fires[fallback_choice] = True
    params: dict[str, Any] = {
        "seed": int(seed),
        "qid": str(qid),
        "shape": [int(shape[0]), int(shape[1])],
        "applied": [name for name in order if fires[name]],
        "fallback": fallback,
    }
    params.update({name: drawn[name] for name in params["applied"]})
    return params


def apply_parameters(image: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Applies drawn (or stored) parameters: no randomness here, so the result is a pure function of both."""
    check_image(image)
    order = names()
    try:
        applied = list(params["applied"])
        unknown = set(applied) - set(order)
        if unknown:
            raise DataError(
                f"corruption parameters name unknown corruptions {sorted(unknown)}; valid: {', '.join(order)}"
            )
        expected_shape = tuple(int(v) for v in params["shape"])
        if image.shape[:2] != expected_shape:
            raise DataError(
                f"corruption parameters were drawn for an image of shape {list(expected_shape)}, "
                f"but the image has shape {list(image.shape[:2])}"
            )
        out = image
        for name in order:  # always in the fixed order, whatever order the stored list has
            if name in applied:
                out = get(name).apply(out, params[name])
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
    check_image(image)
    return image
