"""Stage: fine-tune a VLM on the train split of a shift and write its experiment folder (docs/method.md#experiment-folders, #fine-tuning-defaults).

`train(cfg)` checks every setting before any heavy work, skips a run whose folder is finished, resumes a killed
run from its last complete checkpoint, and writes the final files so that a folder looks finished only when it
is (see sure_vqa.models.experiment_folder). The loop is the Hugging Face Trainer, so `accelerate launch`
(DDP, DeepSpeed) works unchanged; only rank 0 writes the folder's own files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sure_vqa import graceful_stop, naming, runs, system_errors
from sure_vqa.atomic_io import write_text_atomic
from sure_vqa.config import ConfigError, check_choice, check_flag
from sure_vqa.models import experiment_folder as folder
from sure_vqa.models import families, methods
from sure_vqa.run_lock import run_lock
from sure_vqa.runs import legacy_flags, resolve_model_type
from sure_vqa.settings import checked
from sure_vqa.train.settings import TrainSettings

log = logging.getLogger(__name__)

LOCK_STAGE = "train"
TRAIN_SPLITS = ("iid", "all", "sample")  # training never sees the ood split (docs/method.md#shifts-and-splits)


@dataclass(frozen=True)
class TrainPlan:
    """Everything `train` decided from the config before loading anything heavy."""

    model_type: str
    learning_rate: float
    projector_lr: float
    base_model_path: Path
    dataset_root: Path
    dataset: str
    train_split: str
    data_shift: str | None
    ood_value: Any
    no_image: bool
    seed: int
    settings: TrainSettings
    method_config: Any
    model_dir: Path
    world_size: int
    resolved: dict[str, Any]
    wait_for_lock: bool = False


def _world_size() -> int:
    """Processes of this run (set by `accelerate launch`/torchrun; 1 for a plain `sure-vqa train`)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def plan(cfg: Mapping[str, Any]) -> TrainPlan:
    """Validates the whole configuration (ConfigError on the first bad setting) and resolves the run."""
    from sure_vqa.data.splits import check_shift

    model_type = resolve_model_type(cfg)
    if model_type == runs.PRETRAINED:
        raise ConfigError("model_type=pretrained is the zero-shot model and is not trained; "
                          f"valid values for train.py: {', '.join(methods.names())}")
    finetune_cfg = cfg.get("finetune") or {}
    shared = methods.shared_settings(finetune_cfg)
    method_config = methods.get(model_type).config_from(finetune_cfg)
    learning_rate, projector_lr = shared.learning_rate(model_type), shared.mm_projector_lr
    settings = checked(TrainSettings, cfg.get("train"), "train")
    world_size = _world_size()
    settings.gradient_accumulation(world_size)
    settings.resolved_precision()
    base_model_path = runs.base_model_path(cfg)
    family = families.for_folder(base_model_path)  # from config.json: no weights are loaded before the checks
    family.check_method(model_type, methods.names())
    if settings.pad_to_square is None:  # the family's own way (docs/models.md); recorded in the resolved config
        settings = dataclasses.replace(settings, pad_to_square=family.pad_to_square)
    dataset_root = runs.dataset_root(cfg)
    dataset = str(cfg.get("dataset"))
    train_split = check_choice(cfg.get("train_split", "iid"), "train_split", TRAIN_SPLITS)
    data_shift, ood_value = runs.shift_of(cfg, train_split)
    if train_split == "iid":
        check_shift(dataset_root, dataset, data_shift, ood_value)
    identity = runs.ModelIdentity.from_config(cfg, training=True)  # what names the folder, checked once
    seed, model_dir = identity.seed, identity.model_dir()
    resolved = _resolved_config(cfg, model_type, learning_rate, settings, world_size)
    return TrainPlan(model_type=model_type, learning_rate=learning_rate, projector_lr=projector_lr,
                     base_model_path=base_model_path, dataset_root=dataset_root, dataset=dataset,
                     train_split=train_split, data_shift=data_shift, ood_value=ood_value,
                     no_image=identity.trained_without_images, seed=seed, settings=settings,
                     method_config=method_config, model_dir=model_dir, world_size=world_size, resolved=resolved,
                     wait_for_lock=check_flag(cfg, "wait_for_lock"))


def _resolved_config(cfg: Mapping[str, Any], model_type: str, learning_rate: float, settings: TrainSettings,
                     world_size: int) -> dict[str, Any]:
    """The config as run: interpolations resolved, the legacy flags and the learning rate filled in, every
    train setting (with its default) listed, and how the run was executed under `runtime`."""
    import peft
    import transformers

    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    plain = dict(plain)  # type: ignore[arg-type]
    plain.update(model_type=model_type, **legacy_flags(model_type))
    plain["finetune"] = {**(plain.get("finetune") or {}), "lr": learning_rate}
    plain["train"] = dataclasses.asdict(settings)
    plain["runtime"] = {
        "world_size": world_size,
        "gradient_accumulation_steps": settings.gradient_accumulation(world_size),
        "precision": settings.resolved_precision(),
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }
    return plain


def _inference_overrides(p: TrainPlan) -> str:
    """The inference.py settings that locate this folder again."""
    parts = [f"dataset={p.dataset}", f"model_type={p.model_type}", f"seed={p.seed}",
             f"finetune.lr={naming.format_lr(p.learning_rate)}"]
    if p.train_split != "iid":
        parts.append(f"train_split={p.train_split}")
    if p.data_shift is not None:
        value = p.ood_value if isinstance(p.ood_value, str | int) else "'[" + ",".join(map(str, p.ood_value)) + "]'"
        parts += [f"data_shift={p.data_shift}", f"ood_value={value}"]
    parts += methods.get(p.model_type).folder_overrides(p.method_config)
    if p.no_image:
        parts.append("train_no_image=true")
    return " ".join(parts)


def _upcast_trainable(model: Any) -> None:
    """Trainable weights in float32 (frozen ones may be bf16): optimiser updates in bf16 lose small steps."""
    import torch

    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()


def build_model(p: TrainPlan) -> tuple[Any, Any]:
    """(model to train, processor): the base model with the method applied, seeded for a reproducible init."""
    from transformers import set_seed

    from sure_vqa.models.loading import load_base_model, load_processor

    processor = load_processor(p.base_model_path)
    set_seed(p.seed)
    # Frozen weights of adapter methods can stay in bf16 under bf16 autocast; full fine-tuning keeps float32
    # master weights.
    half_base = p.settings.resolved_precision() == "bf16" and methods.get(p.model_type).uses_adapter
    model = load_base_model(p.base_model_path, dtype="bfloat16" if half_base else "float32")
    model.config.use_cache = False
    model, _ = methods.prepare_model(model, p.model_type, p.resolved.get("finetune"), str(p.base_model_path))
    _upcast_trainable(model)
    return model, processor


def build_dataset(p: TrainPlan, processor: Any) -> Any:
    from sure_vqa.data.splits import record_image_path, split_records
    from sure_vqa.train.data import ImageSettings, VQATrainDataset

    # No seed: split=sample uses the data seed, so every training seed sees the same sampled questions.
    records = split_records(p.dataset_root, p.dataset, "train", p.train_split, p.data_shift, p.ood_value)
    if p.settings.max_samples is not None:
        records = records[: p.settings.max_samples]
    images = None if p.no_image else ImageSettings(partial(record_image_path, p.dataset_root, p.dataset),
                                                  pad_to_square=p.settings.pad_to_square)
    return VQATrainDataset(records, processor, images, max_length=p.settings.max_length)


def _save_init_weight(model: Any, model_dir: Path) -> None:
    """The untrained adapter, as the original code keeps it (`init_weight/`), written once."""
    target = model_dir / naming.INIT_WEIGHT_DIR
    if target.exists():
        return
    tmp = model_dir / f".{naming.INIT_WEIGHT_DIR}.tmp"
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp))
    folder.install_dir(tmp, target)


def _finish(p: TrainPlan, trainer: Any, model: Any, processor: Any, train_loss: float, num_records: int) -> None:
    """Writes the final files into a staging folder and moves them into place, trainer_state.json last."""
    from sure_vqa.models import parts
    from sure_vqa.models.loading import save_processor

    staging = p.model_dir / folder.STAGING_DIR
    if trainer.is_world_process_zero():
        folder.staging_dir(p.model_dir)
    trainer.accelerator.wait_for_everyone()
    parts.unwrap(model).config.use_cache = True
    trainer.save_model(str(staging))  # every rank: DeepSpeed/FSDP gather the weights here
    if not trainer.is_world_process_zero():
        return
    base = parts.unwrap(model)
    if methods.get(p.model_type).uses_adapter:
        base.config.save_pretrained(str(staging))  # config.json of the base model, as the original folders have
    folder.write_projector_file(staging, parts.projector_save_names(model))
    save_processor(processor, staging)
    folder.write_resolved_config(staging, p.resolved)
    summary = {
        "train_split_name": runs.train_split_name(p.resolved, no_image=p.no_image),
        "num_records": num_records,
        "global_step": trainer.state.global_step,
        "train_loss": round(train_loss, 4),  # the mean over every step of the run, resumed or not
        "inference_overrides": _inference_overrides(p),
    }
    write_text_atomic(staging / naming.MODEL_README_FILE, folder.readme_text(p.model_dir, p.resolved, summary))
    trainer.state.save_to_json(str(staging / naming.TRAINER_STATE_FILE))
    folder.install_files(staging, p.model_dir)
    if not p.settings.keep_checkpoints:
        folder.remove_checkpoints(p.model_dir)


@dataclass
class TrainingOutcome:
    """What `train_model` leaves behind: the experiment folder and, unless the run was already finished,
    the trained model (in memory, as saved) and its Trainer."""

    model_dir: Path
    model: Any = None
    trainer: Any = None


def train_model(cfg: Mapping[str, Any], callbacks: Sequence[Any] = ()) -> TrainingOutcome:
    """Fine-tunes the model described by `cfg` (config/train/training_defaults.yaml).

    `callbacks` are extra transformers `TrainerCallback`s (logging, early inspection of the model).
    """
    p = plan(cfg)
    if folder.is_finished(p.model_dir):
        return _already_trained(p)
    rank = int(os.environ.get("RANK", "0"))
    with system_errors.writing_to(p.model_dir), graceful_stop.stoppable(), \
            run_lock(p.model_dir, LOCK_STAGE, rank, wait=p.wait_for_lock):  # before the model loads
        if folder.is_finished(p.model_dir):  # finished by the run this one waited for
            return _already_trained(p)
        return _train_locked(p, callbacks)


def _already_trained(p: TrainPlan) -> TrainingOutcome:
    """A finished folder is not trained again; one trained with other settings is reported, not taken as done."""
    folder.check_finished_settings(p.model_dir, p.resolved)
    print(f"already trained: {p.model_dir} (delete the folder to train again)", flush=True)
    return TrainingOutcome(model_dir=p.model_dir)


def _train_locked(p: TrainPlan, callbacks: Sequence[Any]) -> TrainingOutcome:
    from sure_vqa.train.data import VQACollator, pad_token_id
    from sure_vqa.train.trainer import StopOnSignal, VLMTrainer

    folder.check_resumable(p.model_dir, p.resolved)
    model, processor = build_model(p)
    dataset = build_dataset(p, processor)
    if _is_main_process():
        p.model_dir.mkdir(parents=True, exist_ok=True)
        folder.write_resolved_config(p.model_dir, p.resolved)
        if methods.get(p.model_type).uses_adapter:
            _save_init_weight(model, p.model_dir)

    args = p.settings.training_arguments(
        p.model_dir, seed=p.seed, learning_rate=p.learning_rate, world_size=p.world_size,
        # without images the projector gets no gradient, which DDP must be told about
        find_unused_parameters=p.no_image,
    )
    if args.world_size != p.world_size:
        raise ConfigError(f"the launcher started {p.world_size} processes (WORLD_SIZE) but the Trainer joined "
                          f"{args.world_size}; launch with accelerate launch or torchrun (docs/training.md)")
    stop = StopOnSignal()
    trainer = VLMTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=VQACollator(pad_token_id(processor)),
        callbacks=[*callbacks, stop], projector_lr=p.projector_lr, lengths=dataset.lengths, sampler_seed=p.seed,
    )
    checkpoint = folder.last_checkpoint(p.model_dir)
    if checkpoint is not None:
        print(f"resuming from {checkpoint}", flush=True)
        trainer.resume_loss_total(checkpoint)
    graceful_stop.check(lambda: _kept(p, checkpoint))  # asked to stop while the model loaded
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if stop.stopped_at is not None:
        trainer.accelerator.wait_for_everyone()
        graceful_stop.check(lambda: _kept(p, folder.last_checkpoint(p.model_dir), trainer.state.max_steps))
    train_loss = trainer.whole_run_train_loss(float(output.training_loss))
    _finish(p, trainer, model, processor, train_loss, num_records=len(dataset))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        print(f"trained: {p.model_dir}", flush=True)
    return TrainingOutcome(model_dir=p.model_dir, model=model, trainer=trainer)


def _kept(p: TrainPlan, checkpoint: Path | None, max_steps: int | None = None) -> str:
    """What a stopped training run leaves for the rerun."""
    if checkpoint is None:
        return f"no step was trained since the start; rerun the same command to train {p.model_dir.name}"
    step = json.loads((checkpoint / naming.TRAINER_STATE_FILE).read_text(encoding="utf-8"))["global_step"]
    of = f" of {max_steps}" if max_steps else ""
    return f"training reached step {step}{of}, saved in {checkpoint}; rerun the same command to resume from it"


def train(cfg: Mapping[str, Any]) -> Path:
    """The train.py stage: fine-tunes (or skips a finished run) and returns the experiment folder."""
    return train_model(cfg).model_dir
