"""Model families behind one registry: what differs between the VLM architectures SURE-VQA fine-tunes and runs.

Every family is served by transformers' own model and processor classes; what SURE-VQA must know on top of them
lives in the family's entry (one module per family in this package, each calling `register`): where the
language model, the vision tower and the projector sit, whether images are padded to a square before the
processor (LLaVA-1.5 style) or go to it as they are (dynamic resolution, tiling), how the processor wants the
images of a batch, and the fine-tuning methods the family cannot take, with the reason. The family of a model
is found from its config's `model_type` (docs/models.md).

Nothing here imports torch: naming, the study and the report consult the registry without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sure_vqa.config import ConfigError
from sure_vqa.models import folders
from sure_vqa.registry import Registry


@dataclass(frozen=True)
class ModelFamily:
    """One VLM architecture family.

    `vision_tower`, `projector` and `language_model` are dotted module names from the top-level
    `...ForConditionalGeneration` model: the tower is frozen, the projector trains with every method, adapters go
    on the language model's linear layers only (docs/method.md#fine-tuning-defaults). `pad_to_square` is the
    family's default for `train.pad_to_square` (LLaVA-1.5 and LLaVA-Med were trained on padded images; the
    others resize and tile images themselves). `images_per_prompt_lists`: the processor takes one list of images
    per prompt (`[[img], [img]]`) instead of a flat list. `video_free_processor`: the family's processor class
    also expects a video processor, which needs torchvision; SURE-VQA builds the processor without it
    (sure_vqa.models.loading). `unsupported_methods` maps a fine-tuning method to why the family cannot take it;
    training and the study refuse it before loading any weights. `checkpoints` are published models of the
    family (docs/models.md lists them; a test keeps the two in step); `description` is what `sure-vqa ls` says.

    `side_projectors` are further modules that carry vision features into the language model besides the
    projector (Qwen3-VL's DeepStack mergers, which feed features of the tower's middle layers into the first
    language-model layers); they train with the projector, at its learning rate. A module list stands for its
    entries. `unused_config_parts` maps sub-configs that are set to None before loading, so that transformers
    never builds those parts (Gemma 4's audio tower: SURE-VQA shows no sound), to the pattern of the weights
    that are then left in the folder unread (and not reported as unexpected).
    """

    name: str
    model_types: tuple[str, ...]
    model_class: str
    processor_class: str
    vision_tower: str
    projector: str
    language_model: str
    pad_to_square: bool = False
    images_per_prompt_lists: bool = False
    video_free_processor: bool = False
    unsupported_methods: Mapping[str, str] = field(default_factory=dict)
    checkpoints: tuple[str, ...] = ()
    description: str = ""
    side_projectors: tuple[str, ...] = ()
    unused_config_parts: Mapping[str, str] = field(default_factory=dict)

    def check_method(self, model_type: str, known_methods: list[str]) -> None:
        """Refuses a fine-tuning method the family cannot take, naming family, method, reason and the methods
        (of `known_methods`, the methods' registry) that it takes."""
        reason = self.unsupported_methods.get(model_type)
        if reason is not None:
            supported = [m for m in known_methods if m not in self.unsupported_methods]
            raise ConfigError(f"model_type={model_type} is not supported for the {self.name} family "
                              f"({self.model_class}): {reason}; methods this family supports: {', '.join(supported)}")

    def processor_images(self, images: list[Any]) -> list[Any]:
        """The images of a batch (one per prompt) in the shape the family's processor takes them."""
        return [[image] for image in images] if self.images_per_prompt_lists else list(images)


def _check_model_types(family: ModelFamily, others: Mapping[str, ModelFamily]) -> None:
    taken = {t: f.name for f in others.values() for t in f.model_types}
    clash = sorted(set(family.model_types) & set(taken))
    if clash:
        raise ValueError(f"model_type {clash[0]!r} already belongs to family {taken[clash[0]]!r}")


REGISTRY: Registry[ModelFamily] = Registry("model family", __name__, "family", _check_model_types)
register, get, names = REGISTRY.register, REGISTRY.get, REGISTRY.names


def for_model_type(model_type: str, where: str = "the model") -> ModelFamily:
    """The family whose entry lists this config `model_type`."""
    for family in REGISTRY:
        if model_type in family.model_types:
            return family
    known = ", ".join(f"{t} ({f.name})" for f in REGISTRY for t in f.model_types)
    raise ConfigError(f"{where} has model_type={model_type!r}, which no SURE-VQA model family covers; "
                      f"supported model types: {known} (docs/models.md says how to add a family)")


def for_model(model: Any) -> ModelFamily:
    """The family of a transformers model (plain or inside a peft wrapper)."""
    get_base = getattr(model, "get_base_model", None)
    base = get_base() if callable(get_base) else model
    model_type = getattr(getattr(base, "config", None), "model_type", None)
    if not isinstance(model_type, str):
        raise ConfigError(f"{type(base).__name__} has no transformers config with a model_type; SURE-VQA fine-tunes "
                          "and runs transformers VLMs of the families in docs/models.md")
    return for_model_type(model_type, type(base).__name__)


def for_folder(folder: str | Path) -> ModelFamily:
    """The family of the model in a folder, from its config.json (no torch, no weights)."""
    return for_model_type(folders.read_model_type(folder), str(folder))
