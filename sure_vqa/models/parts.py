"""Where the vision tower, projector and language model live inside a LLaVA-style transformers model.

Fine-tuning methods, the trainer and the converter all need these names (the vision tower is frozen, the
projector always trains, adapters go on the language model only). Keeping the lookup in one place means a
new LLaVA-family architecture needs one entry here, not a change in every method.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sure_vqa.config import ConfigError

# Attribute names of transformers' LLaVA family (llava, llava_next, llava_onevision, vipllava, ...) under
# `model.model`; other image-text-to-text architectures use the alternatives listed after them.
VISION_TOWER_NAMES = ("vision_tower", "visual", "vision_model")
PROJECTOR_NAMES = ("multi_modal_projector", "mm_projector", "connector")
LANGUAGE_MODEL_NAMES = ("language_model", "text_model")


@dataclass(frozen=True)
class ModelParts:
    """Dotted module names (relative to the top-level model) of the three parts of a VLM."""

    vision_tower: str
    projector: str
    language_model: str


def _find(inner: nn.Module, prefix: str, candidates: tuple[str, ...], what: str, model: nn.Module) -> str:
    for name in candidates:
        if isinstance(getattr(inner, name, None), nn.Module):
            return f"{prefix}{name}"
    raise ConfigError(
        f"{type(model).__name__} has no {what} under any of the names {', '.join(candidates)}; "
        "SURE-VQA fine-tunes LLaVA-style models (vision tower + projector + language model)"
    )


def model_parts(model: nn.Module) -> ModelParts:
    """The parts of a transformers VLM (`LlavaForConditionalGeneration` and relatives), unwrapped from peft."""
    base = unwrap(model)
    inner, prefix = (base.model, "model.") if isinstance(getattr(base, "model", None), nn.Module) else (base, "")
    return ModelParts(
        vision_tower=_find(inner, prefix, VISION_TOWER_NAMES, "vision tower", base),
        projector=_find(inner, prefix, PROJECTOR_NAMES, "multimodal projector", base),
        language_model=_find(inner, prefix, LANGUAGE_MODEL_NAMES, "language model", base),
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def submodule(model: nn.Module, dotted: str) -> nn.Module:
    return unwrap(model).get_submodule(dotted)


def projector_module(model: nn.Module) -> nn.Module:
    """The projector that is in use: inside a peft model it is the trained copy that peft's
    `ModulesToSaveWrapper` keeps (the wrapper also holds the untouched original)."""
    module = submodule(model, model_parts(model).projector)
    copies = getattr(module, "modules_to_save", None)
    if isinstance(copies, nn.ModuleDict) and len(copies):
        active = module.active_adapters[0] if hasattr(module, "active_adapters") else next(iter(copies))
        return copies[active]
    return module


def language_model_linear_names(model: nn.Module) -> list[str]:
    """The distinct leaf names of the language model's linear layers (q_proj, ..., down_proj), sorted."""
    lm = submodule(model, model_parts(model).language_model)
    return sorted({name.rsplit(".", 1)[-1] for name, module in lm.named_modules() if isinstance(module, nn.Linear)})


def language_model_regex(model: nn.Module, leaf_names: list[str] | tuple[str, ...]) -> str:
    """A peft `target_modules` regex (matched in full) for these leaf modules inside the language model only,
    so that the vision tower's and projector's layers of the same name are never adapted."""
    lm_prefix = model_parts(model).language_model.replace(".", r"\.")
    return rf"{lm_prefix}\..*\.(?:{'|'.join(leaf_names)})"


def freeze(module: nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def set_trainable(module: nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(True)
