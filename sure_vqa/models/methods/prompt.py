"""Prompt tuning: trained virtual tokens prepended to the input embeddings (docs/method.md#fine-tuning-defaults), random or text init."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sure_vqa.config import ConfigError
from sure_vqa.models.methods import FinetuneMethod, FolderSetting, PrepareContext, register
from sure_vqa.settings import setting

if TYPE_CHECKING:
    from torch import nn

INITS = ("random", "text")


@dataclass(frozen=True)
class PromptSettings:
    """`finetune.prompt`: number of virtual tokens (80 in the study) and their initialisation: `random`, or
    `text` (the embeddings of `init_text`'s tokens, repeated to fill the virtual tokens)."""

    num_virtual_tokens: int = setting(80, minimum=1)
    init: str = setting("random", choices=INITS)
    init_text: str = "Answer the medical question about the image."

    def __post_init__(self) -> None:
        if self.init == "text" and not self.init_text.strip():
            raise ConfigError("finetune.prompt.init_text is empty; text init needs a text (or set init=random)")


def prepare(model: nn.Module, settings: PromptSettings, context: PrepareContext) -> nn.Module:
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    text_init = settings.init == "text"
    config = PromptTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=settings.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if text_init else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=settings.init_text if text_init else None,
        tokenizer_name_or_path=context.base_model_path if text_init else None,
        modules_to_save=list(context.projector_names),
    )
    return get_peft_model(model, config)


register(FinetuneMethod(
    name="prompt", settings=PromptSettings, prepare=prepare, uses_adapter=True, default_lr=3e-2,
    folder_settings=(FolderSetting("num_virtual_tokens", "ntok"),),
    # 2: the virtual tokens are injected once in generation (sure_vqa/infer/generation/backends/hf.py, docs/inference.md)
    generation_revision=2,
    description="prompt tuning with trained virtual tokens"))
