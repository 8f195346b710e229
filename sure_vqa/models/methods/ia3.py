"""IA3 on the language model's k_proj, v_proj and down_proj, down_proj scaled as feed-forward (docs/method.md#fine-tuning-defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sure_vqa.config import ConfigError
from sure_vqa.models.methods import FinetuneMethod, PrepareContext, register

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class IA3Settings:
    """`finetune.ia3`: the scaled layers (leaf names inside the language model) and which of them are
    feed-forward (IA3 scales their input instead of their output)."""

    target_modules: tuple[str, ...] = ("k_proj", "v_proj", "down_proj")
    feedforward_modules: tuple[str, ...] = ("down_proj",)

    def __post_init__(self) -> None:
        if not self.target_modules:
            raise ConfigError("finetune.ia3.target_modules is empty; name at least one layer, e.g. [k_proj, v_proj]")
        extra = sorted(set(self.feedforward_modules) - set(self.target_modules))
        if extra:
            raise ConfigError(f"finetune.ia3.feedforward_modules has {extra[0]!r}, which is not in "
                              f"finetune.ia3.target_modules ({', '.join(self.target_modules)})")


def prepare(model: nn.Module, settings: IA3Settings, context: PrepareContext) -> nn.Module:
    from peft import IA3Config, get_peft_model

    from sure_vqa.models import parts

    available = parts.language_model_linear_names(model)
    missing = sorted(set(settings.target_modules) - set(available))
    if missing:
        raise ConfigError(f"finetune.ia3.target_modules has {missing[0]!r}, which is not a linear layer of the "
                          f"language model; its linear layers: {', '.join(available)}")
    config = IA3Config(
        target_modules=parts.language_model_regex(model, settings.target_modules),
        feedforward_modules=(parts.language_model_regex(model, settings.feedforward_modules)
                             if settings.feedforward_modules else []),
        modules_to_save=list(context.projector_names),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


register(FinetuneMethod(
    name="ia3", settings=IA3Settings, prepare=prepare, uses_adapter=True, default_lr=3e-2,
    description="IA3 on k_proj, v_proj and down_proj (feed-forward) of the language model"))
