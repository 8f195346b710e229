"""Fine-tuning methods behind one registry (docs/method.md#fine-tuning-defaults): adding a method is one module in
this package that calls `register` (every module here is loaded; nothing else lists the methods).

Each method module holds a documented config dataclass (read from the `finetune` config group), a `prepare`
function that turns the pretrained VLM into the model to train, and what the rest of the project must know of
it: its default learning rate, the hyperparameters its experiment folder name carries, whether the folder holds
an adapter, whether vLLM can serve it. Whatever the method, `prepare_model` then freezes the vision tower and
trains the projector (peft methods carry it as a `modules_to_save` module, so it is saved in the adapter and
restored with it, in checkpoints too).

Nothing here imports torch at module level: naming, the study and the report consult the registry without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sure_vqa.config import ConfigError
from sure_vqa.registry import Registry

if TYPE_CHECKING:
    from torch import nn

# The zero-shot model: a model_type of inference and evaluation, not a method (nothing is trained).
PRETRAINED = "pretrained"


@dataclass(frozen=True)
class FolderSetting:
    """A hyperparameter of the method that the experiment folder name carries as `{tag}{value}` (LoRA's
    `rank16`), read from `finetune.<method>.<key>` (docs/method.md#experiment-folders)."""

    key: str
    tag: str


@dataclass(frozen=True)
class FinetuneMethod:
    """One fine-tuning method.

    `config_from(finetune_cfg)` reads and validates the method's settings from the `finetune` config group and
    returns its config dataclass; `prepare(model, method_config, context)` returns the model to train (a peft
    model for adapter methods). `uses_adapter` says whether the experiment folder holds a peft adapter
    (and an `init_weight/` copy of it) or the whole model; `default_lr` is the learning rate when `finetune.lr`
    is null; `folder_settings` are the hyperparameters in the folder name, in order; `served_by_vllm` says
    whether the vLLM backend can load the folder as plain weights (merged or whole); `generation_revision` is
    part of every inference fingerprint of the method and is raised when a fix changes its answers, so that
    answers written before the fix are refused rather than reused.
    """

    name: str
    config_from: Callable[[Mapping[str, Any]], Any]
    prepare: Callable[[nn.Module, Any, PrepareContext], nn.Module]
    uses_adapter: bool
    default_lr: float
    folder_settings: tuple[FolderSetting, ...] = ()
    served_by_vllm: bool = False
    generation_revision: int = 1
    description: str = ""

    def folder_tags(self, method_config: Any) -> tuple[str, ...]:
        """`("rank16",)`: the folder-name parts of these settings (naming.finetune_tag joins them)."""
        return tuple(f"{s.tag}{getattr(method_config, s.key)}" for s in self.folder_settings)

    def folder_overrides(self, method_config: Any) -> tuple[str, ...]:
        """`("finetune.lora.rank=16",)`: the settings that locate the folder again from the command line."""
        return tuple(f"finetune.{self.name}.{s.key}={getattr(method_config, s.key)}" for s in self.folder_settings)


@dataclass(frozen=True)
class PrepareContext:
    """What a method may need besides the model: the base model folder (prompt tuning's text init reads the
    tokenizer from it) and the projector's module name (peft methods list it in `modules_to_save`)."""

    base_model_path: str
    projector_name: str


def _check_name(method: FinetuneMethod, others: Mapping[str, FinetuneMethod]) -> None:
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*", method.name) is None or method.name == PRETRAINED:
        raise ValueError(f"method name {method.name!r} must be lower-case words joined by _ (it is written into "
                         "folder names), and not 'pretrained'")


REGISTRY: Registry[FinetuneMethod] = Registry("fine-tuning method", __name__, "model_type", _check_name)
register, get, names = REGISTRY.register, REGISTRY.get, REGISTRY.names


def model_types() -> list[str]:
    """Every valid `model_type`: the methods and the zero-shot model."""
    return [*names(), PRETRAINED]


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
    from sure_vqa.models import parts

    method = get(model_type)
    method_config = method.config_from(finetune_cfg or {})
    model_parts = parts.model_parts(model)
    context = PrepareContext(base_model_path=str(base_model_path),
                             projector_name=model_parts.projector.rsplit(".", 1)[-1])
    prepared = method.prepare(model, method_config, context)
    parts.freeze(parts.submodule(prepared, model_parts.vision_tower))
    parts.set_trainable(parts.projector_module(prepared))
    return prepared, method_config
