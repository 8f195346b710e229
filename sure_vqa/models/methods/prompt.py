"""Prompt tuning: trained virtual tokens prepended to the input embeddings (docs/method.md#fine-tuning-defaults), random or text init."""

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

INITS = ("random", "text")


@dataclass(frozen=True)
class PromptSettings:
    """`finetune.prompt`: number of virtual tokens (80 in the study) and their initialisation: `random`, or
    `text` (the embeddings of `init_text`'s tokens, repeated to fill the virtual tokens)."""

    num_virtual_tokens: int = 80
    init: str = "random"
    init_text: str = "Answer the medical question about the image."

    @classmethod
    def from_finetune(cls, finetune_cfg: Mapping[str, Any]) -> PromptSettings:
        node = section(finetune_cfg, "prompt")
        check_keys(node, "finetune.prompt", ("num_virtual_tokens", "init", "init_text"))
        settings = cls(**{k: v for k, v in node.items() if v is not None})
        n = settings.num_virtual_tokens
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"finetune.prompt.num_virtual_tokens={n!r} is not valid; it must be a positive integer")
        if settings.init not in INITS:
            raise ConfigError(f"finetune.prompt.init={settings.init!r} is not valid; valid values: {', '.join(INITS)}")
        if settings.init == "text" and not str(settings.init_text).strip():
            raise ConfigError("finetune.prompt.init_text is empty; text init needs a text (or set init=random)")
        return settings


def prepare(model: nn.Module, settings: PromptSettings, context: PrepareContext) -> nn.Module:
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    text_init = settings.init == "text"
    config = PromptTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=settings.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if text_init else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=settings.init_text if text_init else None,
        tokenizer_name_or_path=context.base_model_path if text_init else None,
        modules_to_save=[context.projector_name],
    )
    return get_peft_model(model, config)


register(FinetuneMethod(
    name="prompt", config_from=PromptSettings.from_finetune, prepare=prepare, uses_adapter=True, default_lr=3e-2,
    folder_settings=(FolderSetting("num_virtual_tokens", "ntok"),),
    # 2: the virtual tokens are injected once in generation (sure_vqa/infer/generation/backends/hf.py, docs/inference.md)
    generation_revision=2,
    description="prompt tuning with trained virtual tokens"))
