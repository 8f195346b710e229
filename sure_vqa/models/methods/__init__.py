"""Fine-tuning methods behind one registry (docs/method.md#fine-tuning-defaults): adding a method is one module in
this package that calls `register` (every module here is loaded; nothing else lists the methods).

Each method module holds a documented settings dataclass (the only home of its defaults: `finetune_defaults` puts
them into the `finetune` config group, so `finetune.<method>.<key>=...` works with no other file touched), a `prepare`
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
from sure_vqa.settings import checked, defaults, setting

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

    `settings` is the method's settings dataclass (`finetune.<name>`; `config_from` checks it); `prepare(model,
    method_config, context)` returns the model to train (a peft
    model for adapter methods). `uses_adapter` says whether the experiment folder holds a peft adapter
    (and an `init_weight/` copy of it) or the whole model; `default_lr` is the learning rate when `finetune.lr`
    is null; `folder_settings` are the hyperparameters in the folder name, in order; `served_by_vllm` says
    whether the vLLM backend can load the folder as plain weights (merged or whole); `generation_revision` is
    part of every inference fingerprint of the method and is raised when a fix changes its answers, so that
    answers written before the fix are refused rather than reused.
    """

    name: str
    settings: type
    prepare: Callable[[nn.Module, Any, PrepareContext], nn.Module]
    uses_adapter: bool
    default_lr: float
    folder_settings: tuple[FolderSetting, ...] = ()
    served_by_vllm: bool = False
    generation_revision: int = 1
    description: str = ""

    def config_from(self, finetune_cfg: Mapping[str, Any] | None) -> Any:
        """`finetune.<name>` checked into the method's settings (an absent or null section: every default)."""
        node = (finetune_cfg or {}).get(self.name)
        return checked(self.settings, node, f"finetune.{self.name}")

    def folder_tags(self, method_config: Any) -> tuple[str, ...]:
        """`("rank16",)`: the folder-name parts of these settings (naming.finetune_tag joins them)."""
        return tuple(f"{s.tag}{getattr(method_config, s.key)}" for s in self.folder_settings)

    def folder_overrides(self, method_config: Any) -> tuple[str, ...]:
        """`("finetune.lora.rank=16",)`: the settings that locate the folder again from the command line."""
        return tuple(f"finetune.{self.name}.{s.key}={getattr(method_config, s.key)}" for s in self.folder_settings)


@dataclass(frozen=True)
class PrepareContext:
    """What a method may need besides the model: the base model folder (prompt tuning's text init reads the
    tokenizer from it) and the projectors' names as peft's `modules_to_save` takes them (the projector, and a
    family's side projectors: sure_vqa.models.parts)."""

    base_model_path: str
    projector_names: tuple[str, ...]


def _check_name(method: FinetuneMethod, others: Mapping[str, FinetuneMethod]) -> None:
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*", method.name) is None or method.name == PRETRAINED:
        raise ValueError(f"method name {method.name!r} must be lower-case words joined by _ (it is written into "
                         "folder names), and not 'pretrained'")


REGISTRY: Registry[FinetuneMethod] = Registry("fine-tuning method", __name__, "model_type", _check_name)
register, get, names = REGISTRY.register, REGISTRY.get, REGISTRY.names


def model_types() -> list[str]:
    """Every valid `model_type`: the methods and the zero-shot model."""
    return [*names(), PRETRAINED]


@dataclass(frozen=True)
class FinetuneSettings:
    """`finetune.lr` and `finetune.mm_projector_lr`, shared by every method; beside them, `finetune.<method>`
    holds each method's own settings."""

    lr: float | None = setting(None, above=0)  # null: the method's default (lora 3e-4, ia3 3e-2, prompt 3e-2, full 2e-5)
    mm_projector_lr: float = setting(2e-5, above=0)  # the projector trains in every method, at its own learning rate

    def learning_rate(self, model_type: str) -> float:
        return get(model_type).default_lr if self.lr is None else self.lr


def shared_settings(finetune_cfg: Mapping[str, Any] | None) -> FinetuneSettings:
    """The settings shared by every method, checked; a key that is neither one of them nor a method is an error."""
    node = dict(finetune_cfg or {})
    unknown = sorted(str(k) for k in node if k not in names() and k not in FinetuneSettings.__dataclass_fields__)
    if unknown:
        valid = [*FinetuneSettings.__dataclass_fields__, *names()]
        raise ConfigError(f"finetune.{unknown[0]} is not a setting; valid settings: {', '.join(valid)}")
    return checked(FinetuneSettings, node, "finetune", only_own=True)


def finetune_defaults() -> dict[str, Any]:
    """The `finetune` config group's node: the shared settings, then every registered method's defaults."""
    return {**defaults(FinetuneSettings), **{method.name: defaults(method.settings) for method in REGISTRY}}


def prepare_model(model: nn.Module, model_type: str, finetune_cfg: Mapping[str, Any] | None,
                  base_model_path: str) -> tuple[nn.Module, Any]:
    """(model to train, the method's config): the method applied, the vision tower frozen, the projector trainable."""
    from sure_vqa.models import parts

    method = get(model_type)
    method_config = method.config_from(finetune_cfg or {})
    model_parts = parts.model_parts(model)
    context = PrepareContext(base_model_path=str(base_model_path),
                             projector_names=tuple(parts.projector_save_names(model)))
    prepared = method.prepare(model, method_config, context)
    parts.freeze(parts.submodule(prepared, model_parts.vision_tower))
    for projector in parts.projector_modules(prepared):
        parts.set_trainable(projector)
    return prepared, method_config
