"""Full fine-tuning: every weight of the language model (embeddings and head included) and the projector
train; the vision tower stays frozen (docs/method.md#fine-tuning-defaults). The experiment folder then holds the whole model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sure_vqa.models.methods import FinetuneMethod, PrepareContext, check_keys, register, section

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FullSettings:
    """`finetune.full`: no settings of its own (the learning rate is `finetune.lr`)."""

    @classmethod
    def from_finetune(cls, finetune_cfg: Mapping[str, Any]) -> FullSettings:
        check_keys(section(finetune_cfg, "full"), "finetune.full", ())
        return cls()


def prepare(model: nn.Module, settings: FullSettings, context: PrepareContext) -> nn.Module:
    from sure_vqa.models import parts

    parts.set_trainable(model)
    return model


register(FinetuneMethod(
    name="full", config_from=FullSettings.from_finetune, prepare=prepare, uses_adapter=False, default_lr=2e-5,
    served_by_vllm=True, description="all weights of the language model and the projector"))
