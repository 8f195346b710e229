"""LoRA on every linear layer of the language model (docs/method.md#fine-tuning-defaults): not the vision tower, projector or head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sure_vqa.models.methods import FinetuneMethod, FolderSetting, PrepareContext, register
from sure_vqa.settings import setting

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LoraSettings:
    """`finetune.lora`: rank (r), alpha (null: 2·rank, as in LLaVA-Med's recipe) and dropout (0.05)."""

    rank: int = setting(16, minimum=1)
    alpha: float | None = setting(None, above=0)
    dropout: float = setting(0.05, minimum=0, below=1)

    @property
    def effective_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else 2.0 * self.rank


def prepare(model: nn.Module, settings: LoraSettings, context: PrepareContext) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    from sure_vqa.models import parts

    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.effective_alpha,
        lora_dropout=float(settings.dropout),
        target_modules=parts.language_model_regex(model, parts.language_model_linear_names(model)),
        modules_to_save=list(context.projector_names),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


register(FinetuneMethod(
    name="lora", settings=LoraSettings, prepare=prepare, uses_adapter=True, default_lr=3e-4,
    folder_settings=(FolderSetting("rank", "rank"),), served_by_vllm=True,
    description="LoRA on every linear layer of the language model"))
