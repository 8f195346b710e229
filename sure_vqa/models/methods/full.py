"""Full fine-tuning: every weight of the language model (embeddings and head included) and the projector
train; the vision tower stays frozen (docs/method.md#fine-tuning-defaults). The experiment folder then holds the whole model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sure_vqa.models.methods import FinetuneMethod, PrepareContext, register

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class FullSettings:
    """`finetune.full`: no settings of its own (the learning rate is `finetune.lr`)."""


def prepare(model: nn.Module, settings: FullSettings, context: PrepareContext) -> nn.Module:
    from sure_vqa.models import parts

    parts.set_trainable(model)
    return model


register(FinetuneMethod(
    name="full", settings=FullSettings, prepare=prepare, uses_adapter=False, default_lr=2e-5,
    served_by_vllm=True, description="all weights of the language model and the projector"))
