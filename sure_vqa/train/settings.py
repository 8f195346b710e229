"""The `train:` section of config/train/training_defaults.yaml, validated, and its mapping onto the HF Trainer.

Every key is checked at start-up (type, range, spelling), so a typo stops the run before the model loads
instead of being silently ignored. The global batch size is a setting of the method (32 in the study); the
per-device batch and the number of devices decide the gradient accumulation, so the optimisation is the same on
one GPU or eight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa.config import ConfigError
from sure_vqa.settings import setting

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")


@dataclass(frozen=True)
class TrainSettings:
    """The `train:` settings (docs/method.md#fine-tuning-defaults defaults; each key explained in docs/training.md).
    Their defaults live here only; config/train/training_defaults.yaml takes them from the ConfigStore."""

    epochs: float = 1
    max_steps: int = -1  # > 0: stop after this many optimiser steps (overrides epochs; for smoke tests)
    batch_size: int = setting(32, minimum=1)  # global: per_device_batch_size x devices x gradient accumulation
    per_device_batch_size: int = setting(4, minimum=1)  # lower it if a GPU runs out of memory; the global batch stays
    optim: str = "adamw_torch"  # AdamW; any transformers optimizer name
    lr_scheduler: str = setting("cosine", choices=SCHEDULERS)
    warmup_ratio: float = setting(0.03, minimum=0, below=1)
    weight_decay: float = setting(0.0, minimum=0)
    max_grad_norm: float = setting(1.0, minimum=0)
    precision: str = setting("auto", choices=PRECISIONS)  # auto: bf16 where the GPU has it, else fp32
    max_length: int = setting(2048, minimum=1)  # tokens per example (image tokens included)
    gradient_checkpointing: bool = True
    group_by_length: bool = True  # batches of questions of similar length
    # None: the model family's way (LLaVA-Med pads to a square; docs/models.md); inference reads the value used
    pad_to_square: bool | None = None
    save_steps: int = setting(50, minimum=1)  # a resumable checkpoint every N optimiser steps
    save_total_limit: int = setting(1, minimum=1, must_be="at least 1: keep a checkpoint, or a killed run "
                                                          "cannot resume")
    keep_checkpoints: bool = False  # false: delete checkpoint-N/ once the run has finished
    logging_steps: int = setting(10, minimum=1)
    dataloader_num_workers: int = setting(2, minimum=0)
    max_samples: int | None = setting(None, minimum=1)  # train on the first N records only (debugging)
    report_to: str = "none"  # none | tensorboard | wandb | ... (transformers integrations)
    deepspeed: str | None = None  # a DeepSpeed JSON config (or launch with an accelerate config, docs/training.md)

    def __post_init__(self) -> None:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError(f"train.epochs={self.epochs} is not valid; it must be > 0 (or set train.max_steps)")
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
        import torch

        has_cuda = torch.cuda.is_available()
        if self.precision == "auto":
            return "bf16" if has_cuda and torch.cuda.is_bf16_supported() else "fp32"
        if self.precision != "fp32" and not has_cuda:
            raise ConfigError(f"train.precision={self.precision} needs a GPU; use train.precision=auto or fp32")
        return self.precision

    def training_arguments(self, output_dir: Path, seed: int, learning_rate: float, world_size: int,
                           find_unused_parameters: bool) -> Any:
        """The HF TrainingArguments for these settings (checkpoints go to `output_dir/checkpoint-N`)."""
        import torch
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
