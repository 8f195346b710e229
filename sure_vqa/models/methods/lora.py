"""LoRA on every linear layer of the language model (docs/method.md#fine-tuning-defaults): not the vision tower, projector or head."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sure_vqa.config import ConfigError
from sure_vqa.models.methods import (
    FinetuneMethod,
    FolderSetting,
    PrepareContext,
    check_keys,
    register,
    section,
)

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LoraSettings:
    """`finetune.lora`: rank (r), alpha (null: 2·rank, as in LLaVA-Med's recipe) and dropout (0.05)."""

    rank: int = 16
    alpha: float | None = None
    dropout: float = 0.05

    @property
    def effective_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else 2.0 * self.rank

    @classmethod
    def from_finetune(cls, finetune_cfg: Mapping[str, Any]) -> LoraSettings:
        node = section(finetune_cfg, "lora")
        check_keys(node, "finetune.lora", ("rank", "alpha", "dropout"))
        settings = cls(**{k: v for k, v in node.items() if v is not None})
        if not isinstance(settings.rank, int) or isinstance(settings.rank, bool) or settings.rank < 1:
            raise ConfigError(f"finetune.lora.rank={settings.rank!r} is not valid; it must be a positive integer")
        if not 0.0 <= float(settings.dropout) < 1.0:
            raise ConfigError(f"finetune.lora.dropout={settings.dropout!r} is not valid; it must be in [0, 1)")
        if settings.alpha is not None and float(settings.alpha) <= 0:
            raise ConfigError(f"finetune.lora.alpha={settings.alpha!r} is not valid; give a positive number or null")
        return settings


def prepare(model: nn.Module, settings: LoraSettings, context: PrepareContext) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    from sure_vqa.models import parts

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.effective_alpha,
        lora_dropout=float(settings.dropout),
        target_modules=parts.language_model_regex(model, parts.language_model_linear_names(model)),
        modules_to_save=[context.projector_name],
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


register(FinetuneMethod(
    name="lora", config_from=LoraSettings.from_finetune, prepare=prepare, uses_adapter=True, default_lr=3e-4,
    folder_settings=(FolderSetting("rank", "rank"),), served_by_vllm=True,
    description="LoRA on every linear layer of the language model"))
