"""The `train:` section of config/train/training_defaults.yaml, validated, and its mapping onto the HF Trainer.

Every key is checked at start-up (type, range, spelling), so a typo stops the run before the model loads
instead of being silently ignored. The global batch size is a setting of the method (32 in the study); the
per-device batch and the number of devices decide the gradient accumulation, so the optimisation is the same on
one GPU or eight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sure_vqa.config import ConfigError, check_choice

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")


@dataclass(frozen=True)
class TrainSettings:
    """Training loop settings (docs/method.md#fine-tuning-defaults defaults). See docs/training.md for each key."""

    epochs: float = 1.0
    max_steps: int = -1  # > 0: stop after this many optimiser steps (overrides epochs; for smoke tests)
    batch_size: int = 32  # global: per_device_batch_size x devices x gradient accumulation
    per_device_batch_size: int = 4
    optim: str = "adamw_torch"
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto: bf16 where the GPU has it, else fp32
    max_length: int = 2048
    gradient_checkpointing: bool = True
    group_by_length: bool = True
    pad_to_square: bool | None = None  # None: the model family's way (LLaVA pads; docs/models.md)
    save_steps: int = 50
    save_total_limit: int = 1
    keep_checkpoints: bool = False
    logging_steps: int = 10
    dataloader_num_workers: int = 2
    max_samples: int | None = None  # train on the first N records only (debugging)
    report_to: str = "none"
    deepspeed: str | None = None  # a DeepSpeed JSON config (or use an accelerate config, docs/training.md)

    @classmethod
    def from_cfg(cls, node: Mapping[str, Any] | None) -> TrainSettings:
        node = dict(node or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(node) - set(fields))
        if unknown:
            raise ConfigError(f"train.{unknown[0]} is not a setting; valid settings: {', '.join(fields)}")
        values = {}
        for name, value in node.items():
            default = fields[name].default
            if value is None and default is not None:
                raise ConfigError(f"train.{name} is null; give a value (default {default!r})")
            values[name] = _coerce(name, value, default)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = ("batch_size", "per_device_batch_size", "max_length", "save_steps", "logging_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}={getattr(self, name)} is not valid; it must be a positive integer")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError(f"train.epochs={self.epochs} is not valid; it must be > 0 (or set train.max_steps)")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"train.warmup_ratio={self.warmup_ratio} is not valid; it must be in [0, 1)")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ConfigError("train.weight_decay and train.max_grad_norm must be >= 0")
        if self.save_total_limit < 1:
            raise ConfigError(f"train.save_total_limit={self.save_total_limit} is not valid; keep at least 1 "
                              "checkpoint, or a killed run cannot resume")
        if self.dataloader_num_workers < 0:
            raise ConfigError("train.dataloader_num_workers must be >= 0")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"train.max_samples={self.max_samples} is not valid; a positive integer or null")
        check_choice(self.precision, "train.precision", PRECISIONS)
        check_choice(self.lr_scheduler, "train.lr_scheduler", SCHEDULERS)
        if self.deepspeed is not None and not Path(self.deepspeed).expanduser().is_file():
            raise ConfigError(f"train.deepspeed={self.deepspeed} does not exist; give a DeepSpeed JSON file or null")

    def gradient_accumulation(self, world_size: int) -> int:
        """batch_size / (per_device_batch_size x world_size), which must divide evenly."""
        per_step = self.per_device_batch_size * max(1, world_size)
        if self.batch_size % per_step:
            raise ConfigError(
                f"train.batch_size={self.batch_size} is not a multiple of train.per_device_batch_size="
                f"{self.per_device_batch_size} x {max(1, world_size)} device(s); change one of them"
            )
        return self.batch_size // per_step

    def resolved_precision(self) -> str:
        """auto -> bf16 on a GPU that has it, else fp32; an explicit half precision needs a GPU."""
        has_cuda = torch.cuda.is_available()
        if self.precision == "auto":
            return "bf16" if has_cuda and torch.cuda.is_bf16_supported() else "fp32"
        if self.precision != "fp32" and not has_cuda:
            raise ConfigError(f"train.precision={self.precision} needs a GPU; use train.precision=auto or fp32")
        return self.precision

    def training_arguments(self, output_dir: Path, seed: int, learning_rate: float, world_size: int,
                           find_unused_parameters: bool) -> Any:
        """The HF TrainingArguments for these settings (checkpoints go to `output_dir/checkpoint-N`)."""
        from transformers import TrainingArguments

        precision = self.resolved_precision()
        return TrainingArguments(
            output_dir=str(output_dir),
            num_train_epochs=self.epochs,
            max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation(world_size),
            learning_rate=learning_rate,
            lr_scheduler_type=self.lr_scheduler,
            warmup_steps=self.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
            weight_decay=self.weight_decay,
            max_grad_norm=self.max_grad_norm,
            optim=self.optim,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            activation_checkpointing=self.gradient_checkpointing,
            activation_checkpointing_kwargs={"use_reentrant": False} if self.gradient_checkpointing else None,
            train_sampling_strategy="group_by_length" if self.group_by_length else "random",
            save_strategy="steps",
            save_steps=self.save_steps,
            save_total_limit=self.save_total_limit,
            logging_steps=self.logging_steps,
            dataloader_num_workers=self.dataloader_num_workers,
            dataloader_pin_memory=torch.cuda.is_available(),
            remove_unused_columns=False,  # the collator builds exactly the model's inputs
            ddp_find_unused_parameters=find_unused_parameters,
            report_to=self.report_to,
            deepspeed=str(Path(self.deepspeed).expanduser()) if self.deepspeed else None,
            seed=seed,
            data_seed=seed,
            use_cpu=not torch.cuda.is_available(),  # without it, CPU processes of one launch train apart
        )


def _coerce(name: str, value: Any, default: Any) -> Any:
    """YAML/CLI values to the field's type; a wrong type is a ConfigError naming the key."""
    if value is None:
        return None
    optional_kinds: dict[str, type] = {"max_samples": int, "pad_to_square": bool}
    kind = type(default) if default is not None else optional_kinds.get(name, str)
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"train.{name}={value!r} is not valid; it must be {kind.__name__}") from None
