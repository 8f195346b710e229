"""Where the vision tower, projector and language model live inside a transformers VLM.

Fine-tuning methods, the trainer and the converter all need these names (the vision tower is frozen, the
projector always trains, adapters go on the language model only). The names come from the model's family entry
(sure_vqa.models.families), found from its config, so a new architecture is one registry entry, not a change in
every method.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sure_vqa.config import ConfigError
from sure_vqa.models import families


@dataclass(frozen=True)
class ModelParts:
    """Dotted module names (relative to the top-level model) of the three parts of a VLM."""

    vision_tower: str
    projector: str
    language_model: str
    side_projectors: tuple[str, ...] = ()

    @property
    def projectors(self) -> tuple[str, ...]:
        """The projector and the side projectors: every module that trains as the projector does."""
        return (self.projector, *self.side_projectors)


def model_parts(model: nn.Module) -> ModelParts:
    """The parts of a transformers VLM (plain or inside peft), as its family's entry names them; a family
    entry that does not match the model (a renamed module in another transformers version) is an error here,
    not a silently untrained projector later."""
    base = unwrap(model)
    family = families.for_model(base)
    found = ModelParts(vision_tower=family.vision_tower, projector=family.projector,
                       language_model=family.language_model, side_projectors=family.side_projectors)
    for what, name in (("vision tower", found.vision_tower), ("projector", found.projector),
                       ("language model", found.language_model),
                       *(("side projector", side) for side in found.side_projectors)):
        try:
            base.get_submodule(name)
        except AttributeError:
            raise ConfigError(f"{type(base).__name__} (family {family.name}) has no {what} at {name}; the family "
                              "entry in sure_vqa/models/families does not match this transformers version") from None
    return found


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def submodule(model: nn.Module, dotted: str) -> nn.Module:
    return unwrap(model).get_submodule(dotted)


def _in_use(module: nn.Module) -> nn.Module:
    """Inside a peft model, the trained copy that peft's `ModulesToSaveWrapper` keeps (the wrapper also holds the
    untouched original); otherwise the module itself."""
    copies = getattr(module, "modules_to_save", None)
    if isinstance(copies, nn.ModuleDict) and len(copies):
        active = module.active_adapters[0] if hasattr(module, "active_adapters") else next(iter(copies))
        return copies[active]
    return module


def projector_module(model: nn.Module) -> nn.Module:
    """The projector that is in use (the trained copy inside a peft model)."""
    return _in_use(submodule(model, model_parts(model).projector))


def projector_module_names(model: nn.Module) -> list[str]:
    """Dotted names of every module that trains as the projector: the projector, then each side projector, a
    module list by its entries (peft wraps modules, and the model indexes the list)."""
    found = model_parts(model)
    names = [found.projector]
    for side in found.side_projectors:
        module = submodule(model, side)
        if isinstance(module, nn.ModuleList):
            names.extend(f"{side}.{i}" for i in range(len(module)))
        else:
            names.append(side)
    return names


def projector_modules(model: nn.Module) -> list[nn.Module]:
    """The projector and the side projectors in use (the trained copies inside a peft model)."""
    return [_in_use(submodule(model, name)) for name in projector_module_names(model)]


def projector_save_names(model: nn.Module) -> list[str]:
    """What peft's `modules_to_save` lists for the projectors: their names from the last word on
    (`multi_modal_projector`, `merger`, `deepstack_merger_list.0`); peft matches them as name endings."""
    return [".".join(name.split(".")[-2:]) if name.split(".")[-1].isdigit() else name.split(".")[-1]
            for name in projector_module_names(model)]


def language_model_linear_names(model: nn.Module) -> list[str]:
    """The distinct leaf names of the language model's linear layers (q_proj, ..., down_proj), sorted."""
    lm = submodule(model, model_parts(model).language_model)
    return sorted({name.rsplit(".", 1)[-1] for name, module in lm.named_modules() if isinstance(module, nn.Linear)})


def language_model_regex(model: nn.Module, leaf_names: list[str] | tuple[str, ...]) -> str:
    """A peft `target_modules` regex (matched in full) for these leaf modules inside the language model only,
    so that the vision tower's and projector's layers of the same name are never adapted."""
    lm_prefix = model_parts(model).language_model.replace(".", r"\.")
    # a layer directly under the language model (Gemma 4's per_layer_model_projection) matches too
    return rf"{lm_prefix}\.(?:.*\.)?(?:{'|'.join(leaf_names)})"


def freeze(module: nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def set_trainable(module: nn.Module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(True)
