"""Fine-tuning methods behind one registry (docs/method.md#fine-tuning-defaults): adding a method is one module that calls `register`.

Each method module holds a documented config dataclass (read from the `finetune` config group) and a `prepare`
function that turns the pretrained VLM into the model to train. Whatever the method, `prepare_model` then
freezes the vision tower and trains the projector (peft methods carry it as a `modules_to_save` module, so it is
saved in the adapter and restored with it, in checkpoints too).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from sure_vqa.config import ConfigError
from sure_vqa.models import parts

BUILTIN_METHODS = (
    "sure_vqa.models.methods.lora",
    "sure_vqa.models.methods.ia3",
    "sure_vqa.models.methods.prompt",
    "sure_vqa.models.methods.full",
)


@dataclass(frozen=True)
class FinetuneMethod:
    """One fine-tuning method.

    `config_from(finetune_cfg)` reads and validates the method's settings from the `finetune` config group and
    returns its config dataclass; `prepare(model, method_config, context)` returns the model to train (a peft
    model for adapter methods). `uses_adapter` says whether the experiment folder holds a peft adapter
    (and an `init_weight/` copy of it) or the whole model.
    """

    name: str
    config_from: Callable[[Mapping[str, Any]], Any]
    prepare: Callable[[nn.Module, Any, PrepareContext], nn.Module]
    uses_adapter: bool
    description: str = ""


@dataclass(frozen=True)
class PrepareContext:
    """What a method may need besides the model: the base model folder (prompt tuning's text init reads the
    tokenizer from it) and the projector's module name (peft methods list it in `modules_to_save`)."""

    base_model_path: str
    projector_name: str


_METHODS: dict[str, FinetuneMethod] = {}


def register(method: FinetuneMethod) -> FinetuneMethod:
    _METHODS[method.name] = method
    return method


def _load_builtins() -> None:
    for module in BUILTIN_METHODS:
        importlib.import_module(module)


def names() -> list[str]:
    _load_builtins()
    return sorted(_METHODS)


def get(name: str) -> FinetuneMethod:
    _load_builtins()
    if name not in _METHODS:
        raise ConfigError(f"model_type={name!r} cannot be trained; valid methods: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def section(finetune_cfg: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    """`finetune.<name>` as a mapping (an absent or null section means every default)."""
    node = (finetune_cfg or {}).get(name)
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"finetune.{name} must be a mapping of settings, got {node!r}")
    return node


def check_keys(node: Mapping[str, Any], setting: str, valid: tuple[str, ...]) -> None:
    """A misspelt key must not be silently ignored."""
    unknown = sorted(set(node) - set(valid))
    if unknown:
        raise ConfigError(f"{setting}.{unknown[0]} is not a setting; valid settings: {', '.join(valid)}")


def prepare_model(model: nn.Module, model_type: str, finetune_cfg: Mapping[str, Any] | None,
                  base_model_path: str) -> tuple[nn.Module, Any]:
    """(model to train, the method's config): the method applied, the vision tower frozen, the projector trainable."""
    method = get(model_type)
    method_config = method.config_from(finetune_cfg or {})
    model_parts = parts.model_parts(model)
    context = PrepareContext(base_model_path=str(base_model_path),
                             projector_name=model_parts.projector.rsplit(".", 1)[-1])
    prepared = method.prepare(model, method_config, context)
    parts.freeze(parts.submodule(prepared, model_parts.vision_tower))
    parts.set_trainable(parts.projector_module(prepared))
    return prepared, method_config
