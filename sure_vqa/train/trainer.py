"""The Hugging Face Trainer with the two things VLM fine-tuning adds: the projector's own learning rate
(LLaVA's `mm_projector_lr`) and length grouping from lengths computed once (without reading every image)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from sure_vqa import graceful_stop, naming
from sure_vqa.atomic_io import write_json_atomic
from sure_vqa.models import parts
from sure_vqa.worker_processes import DieWithParent

log = logging.getLogger(__name__)
# In each checkpoint: the sum of the step losses so far (a resumed run's mean loss counts every step).
LOSS_TOTAL_FILE = "loss_total.json"


def parameter_groups(named_parameters: Iterable[tuple[str, nn.Parameter]], decay_names: set[str],
                     projector_ids: set[int], weight_decay: float, projector_lr: float | None) -> list[dict[str, Any]]:
    """AdamW parameter groups over the trainable parameters: (decay, no decay) x (projector, the rest).

    Biases and norms get no weight decay (as the Trainer does); projector groups carry `projector_lr` (None: the
    base learning rate). Empty groups are left out.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        key = (id(parameter) in projector_ids, name in decay_names)
        groups.setdefault(key, []).append(parameter)
    result = []
    for (is_projector, decays), params in sorted(groups.items()):
        group: dict[str, Any] = {"params": params, "weight_decay": weight_decay if decays else 0.0}
        if is_projector and projector_lr is not None:
            group["lr"] = projector_lr
        result.append(group)
    return result


class VLMTrainer(Trainer):
    """`Trainer` with a projector learning rate, precomputed lengths for `group_by_length`, and a training loss
    that is the mean over the whole run, resumed or not.

    transformers averages the loss over the steps of the current process only, so after a resume it reports the
    steps since the last checkpoint. Each checkpoint here also records the sum of the losses of every step up to
    it (`LOSS_TOTAL_FILE`), and `resume_loss_total` reads it back.
    """

    def __init__(self, *args: Any, projector_lr: float | None = None, lengths: list[int] | None = None,
                 sampler_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.projector_lr = projector_lr
        self.lengths = lengths
        self.sampler_seed = sampler_seed
        # Sum of the losses of the steps before this process resumed; None when the checkpoint did not record it.
        self.loss_sum_before: float | None = 0.0

    def _running_loss_sum(self) -> float:
        """Sum of the per-step losses up to now: earlier processes' plus this one's (as the Trainer sums them)."""
        return (self.loss_sum_before or 0.0) + self._total_loss_scalar + float(self._tr_loss.item())

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if self.is_world_process_zero() and self.loss_sum_before is not None:
            checkpoint = Path(self.args.output_dir) / f"{naming.CHECKPOINT_PREFIX}{self.state.global_step}"
            write_json_atomic(checkpoint / LOSS_TOTAL_FILE,
                              {"global_step": self.state.global_step, "loss_sum": self._running_loss_sum()})

    def resume_loss_total(self, checkpoint: Path) -> None:
        """Continues the loss sum of the checkpoint a run resumes from (a checkpoint without the file, written by
        an older version, leaves the mean over this process's steps, as transformers computes it)."""
        path = Path(checkpoint) / LOSS_TOTAL_FILE
        try:
            self.loss_sum_before = float(json.loads(path.read_text(encoding="utf-8"))["loss_sum"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s is missing or unreadable: train_loss will average only the steps after the resume",
                        path)
            self.loss_sum_before = None

    def whole_run_train_loss(self, session_loss: float) -> float:
        """The mean loss per optimiser step over the whole run (the value `log` printed and recorded)."""
        if self.loss_sum_before is None:  # the resumed checkpoint had no loss sum
            return session_loss
        return (self.loss_sum_before + self._total_loss_scalar) / max(self.state.global_step, 1)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # The final `train_loss` as the whole run's mean before it is printed on the console and kept in
        # log_history: transformers' value covers only the steps since a resume.
        if "train_loss" in logs and self.loss_sum_before is not None:
            logs = {**logs, "train_loss": self.whole_run_train_loss(float(logs["train_loss"]))}
        super().log(logs, start_time)

    def get_train_dataloader(self) -> Any:
        loader = super().get_train_dataloader()
        if self.args.dataloader_num_workers:  # workers end with this process, even on SIGKILL
            # accelerate wraps the torch DataLoader (DataLoaderShard.base_dataloader), which starts the workers
            torch_loader = getattr(loader, "base_dataloader", loader)
            torch_loader.worker_init_fn = DieWithParent(then=torch_loader.worker_init_fn)
        return loader

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            decay_names = set(self.get_decay_parameter_names(opt_model))
            projector_ids = {id(p) for module in parts.projector_modules(opt_model) for p in module.parameters()}
            groups = parameter_groups(opt_model.named_parameters(), decay_names, projector_ids,
                                      self.args.weight_decay, self.projector_lr)
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        # The Trainer would compute lengths by loading every example (every image); ours come from the text.
        if self.args.train_sampling_strategy == "group_by_length" and self.lengths is not None:
            return LengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=self.lengths,
                generator=torch.Generator().manual_seed(self.sampler_seed),
            )
        return super()._get_train_sampler(train_dataset)


class StopOnSignal(TrainerCallback):
    """On SIGTERM/SIGINT (sure_vqa.graceful_stop), ends training after the optimiser step in hand and has the
    Trainer save a checkpoint at that step, so a rerun resumes there (docs/training.md#stopping-and-resuming)."""

    def __init__(self) -> None:
        self.stopped_at: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if graceful_stop.requested() is not None:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control
