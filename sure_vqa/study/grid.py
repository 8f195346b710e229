"""The study grid, defined once (docs/method.md#what-is-measured, #baselines-and-robustness): which inference runs
each model gets. The study runs them; the report expects them and lists what is missing.

Every model is run clean on iid and ood. A model fine-tuned with images adds, by `runs`: no image, each image
control (blank, shuffled) and each corruption setting, on both splits. A model trained without images gets the
four image/no-image combinations (clean and no image, on both splits). The zero-shot model gets the clean runs
and, with `runs.pretrained_no_image`, the no-image ones; the most frequent answer the clean runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from sure_vqa import naming
from sure_vqa.config import ConfigError, check_choice
from sure_vqa.runs import BASELINE_KINDS, MOST_FREQUENT, PRETRAINED, CorruptionSetting, InferenceSpec

SPLITS = ("iid", "ood")
BASELINE_METHODS = BASELINE_KINDS  # the study's `method` values that are not fine-tuning methods


@dataclass(frozen=True)
class RunSettings:
    """The `runs` settings that decide the grid, checked."""

    no_image: bool = True
    pretrained_no_image: bool = False
    image_controls: tuple[str, ...] = ()
    corruptions: tuple[CorruptionSetting, ...] = ()

    @classmethod
    def from_config(cls, runs: Mapping[str, Any]) -> RunSettings:
        plain = OmegaConf.to_container(runs, resolve=True) if OmegaConf.is_config(runs) else dict(runs)
        controls = tuple(check_choice(c, "runs.image_controls entry", naming.IMAGE_CONTROLS)
                         for c in plain.get("image_controls") or [])
        probability = float(plain.get("corruption_probability", 0.5))
        corruptions = tuple(corruption_setting(entry, probability) for entry in plain.get("corruptions") or [])
        return cls(no_image=bool(plain.get("no_image", True)),
                   pretrained_no_image=bool(plain.get("pretrained_no_image", False)),
                   image_controls=controls, corruptions=corruptions)


def corruption_setting(entry: Any, probability: float) -> CorruptionSetting:
    """A `runs.corruptions` entry: a strength for every corruption, or {probabilities, strength}."""
    from sure_vqa.images import corruptions

    if isinstance(entry, str):
        check_choice(entry, "runs.corruptions entry", naming.STRENGTHS)
        return CorruptionSetting.from_maps(*corruptions.uniform_settings(entry, probability))
    if isinstance(entry, Mapping) and set(entry) == {"probabilities", "strength"}:
        return CorruptionSetting.from_maps(*corruptions.check_settings(entry["probabilities"], entry["strength"]))
    raise ConfigError(f"runs.corruptions entry {entry!r} is not valid; give low, medium or high, or "
                      "{probabilities: {blur: p, brightness: p, noise: p}, strength: {blur: low, ...}}")


def model_runs(settings: RunSettings, method: str, train_no_image: bool = False) -> list[InferenceSpec]:
    """The inference runs of one model (a fine-tuning method, `pretrained` or `most_frequent`)."""
    specs = [InferenceSpec(split) for split in SPLITS]
    if method == MOST_FREQUENT:
        return specs
    if method == PRETRAINED:
        if settings.pretrained_no_image:
            specs += [InferenceSpec(split, no_image=True) for split in SPLITS]
        return specs
    if settings.no_image or train_no_image:
        specs += [InferenceSpec(split, no_image=True) for split in SPLITS]
    if train_no_image:
        return specs
    for control in settings.image_controls:
        specs += [InferenceSpec(split, image_control=control) for split in SPLITS]
    for corruption in settings.corruptions:
        specs += [InferenceSpec(split, corruption=corruption) for split in SPLITS]
    return specs
