"""train.py as a user runs it: a real process killed after its first checkpoint resumes from that checkpoint,
a finished run is skipped, and an unfinished folder is never continued with other settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sure_vqa import naming
from sure_vqa.models.experiment_folder import is_finished, last_checkpoint
from tests.conftest import PROJECT_ROOT
from tests.helpers.training_fixtures import confident_copy, train_command, write_colour_slake

pytestmark = pytest.mark.slow

FOLDER = "llava-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank4_lr3e-3_seed123"


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_killed_run_resumes_from_its_checkpoint(tmp_path: Path, tiny_llava_dir: Path) -> None:
    data_root = tmp_path / "data"
    write_colour_slake(data_root, n_train=24)
    model_path = confident_copy(tiny_llava_dir, tmp_path / "model")
    experiments = tmp_path / "experiments"
    model_dir = experiments / FOLDER
    command = train_command(data_root, model_path, experiments)

    # 1. start training and kill it (SIGKILL: no clean-up of any kind) as soon as a checkpoint is complete
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        while last_checkpoint(model_dir) is None:
            assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL
    checkpoint = last_checkpoint(model_dir)
    assert checkpoint is not None and not is_finished(model_dir)
    steps_before = json.loads((checkpoint / naming.TRAINER_STATE_FILE).read_text())["global_step"]
    assert 2 <= steps_before < 24

    # 2. other settings on an unfinished folder: refused with exit code 2, nothing touched
    changed = subprocess.run([*command, "train.epochs=3"], cwd=PROJECT_ROOT, env=env(), capture_output=True,
                             text=True)
    assert changed.returncode == 2, changed.stderr[-2000:]
    assert "holds an unfinished run with other settings (train.epochs: 2.0 -> 3.0)" in changed.stderr
    assert last_checkpoint(model_dir) == checkpoint

    # 3. the same command again resumes from the checkpoint and finishes
    resumed = subprocess.run(command, cwd=PROJECT_ROOT, env=env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoint}" in resumed.stdout
    assert is_finished(model_dir)
    state = json.loads((model_dir / naming.TRAINER_STATE_FILE).read_text())
    assert state["global_step"] == 24
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == list(range(1, 25))  # the first run's steps kept, the rest continued, none repeated
    assert not list(model_dir.glob(f"{naming.CHECKPOINT_PREFIX}*"))

    # 4. a finished run is skipped
    again = subprocess.run(command, cwd=PROJECT_ROOT, env=env(), capture_output=True, text=True)
    assert again.returncode == 0 and f"already trained: {model_dir}" in again.stdout

    # 5. ... but not when the settings differ from those it was trained with (its name does not encode them all)
    before = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}
    other = subprocess.run([*command, "train.max_steps=9"], cwd=PROJECT_ROOT, env=env(), capture_output=True,
                           text=True)
    assert other.returncode == 2, other.stderr[-2000:]
    assert "is already trained, with other settings (train.max_steps: -1 -> 9)" in other.stderr
    assert {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()} == before
    # ... where the files are does not count (a base model copied to a job's local disk): still finished
    import shutil

    moved = shutil.copytree(model_path, tmp_path / "local-disk" / "model")
    elsewhere = subprocess.run([*command, f"paths.model_path={moved}"], cwd=PROJECT_ROOT, env=env(),
                               capture_output=True, text=True)
    assert elsewhere.returncode == 0 and f"already trained: {model_dir}" in elsewhere.stdout, elsewhere.stderr[-2000:]

    # 6. the resumed run reports the loss of the whole run: the same train_loss as an uninterrupted run
    uninterrupted_root = tmp_path / "uninterrupted"
    clean = subprocess.run(train_command(data_root, model_path, uninterrupted_root), cwd=PROJECT_ROOT, env=env(),
                           capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr[-3000:]
    clean_state = json.loads((uninterrupted_root / FOLDER / naming.TRAINER_STATE_FILE).read_text())

    def final_train_loss(trainer_state: dict) -> float:
        return next(e["train_loss"] for e in reversed(trainer_state["log_history"]) if "train_loss" in e)

    step_losses = [e["loss"] for e in state["log_history"] if "loss" in e]  # logged every step, 4 decimals
    assert final_train_loss(state) == pytest.approx(final_train_loss(clean_state), abs=1e-4)
    assert final_train_loss(state) == pytest.approx(sum(step_losses) / len(step_losses), abs=1e-3)
    after_resume = step_losses[steps_before:]
    assert abs(final_train_loss(state) - sum(after_resume) / len(after_resume)) > 1e-3  # not the resumed part only
    readme_loss = f"| final training loss | {round(final_train_loss(clean_state), 4)} |"
    assert readme_loss in (model_dir / naming.MODEL_README_FILE).read_text()


def test_sweep_with_the_submitit_local_launcher(tmp_path: Path, tiny_llava_dir: Path) -> None:
    """`python train.py -m hydra/launcher=submitit_local model_type=lora,ia3`: one job (process) per run; the
    same launcher plugin submits to Slurm with hydra/launcher=submitit_slurm."""
    data_root = tmp_path / "data"
    write_colour_slake(data_root, n_train=4)
    experiments = tmp_path / "experiments"
    command = [
        sys.executable, "train.py", "-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={tmp_path}/sweep",
        f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}",
        f"paths.model_path={tiny_llava_dir}", "data_shift=modality", "ood_value=X-Ray", "model_type=lora,ia3",
        "train.max_steps=2", "train.batch_size=2", "train.per_device_batch_size=2",
        "train.dataloader_num_workers=0",
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    folders = sorted(p.name for p in experiments.iterdir())
    assert folders == ["llava-SLAKE_train_iid_modality_X-Ray-finetune_ia3_lr3e-2_seed123",
                       "llava-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank16_lr3e-4_seed123"]
    assert all(is_finished(experiments / name) for name in folders)
    job_logs = list((tmp_path / "sweep" / ".submitit").rglob("*_log.out"))
    assert len(job_logs) == 2  # two separate processes


def test_data_parallel_run_with_two_processes(tmp_path: Path, tiny_llava_dir: Path) -> None:
    """`torchrun --nproc_per_node 2 train.py` (what `accelerate launch` does with a DDP config), here on CPUs:
    the global batch splits over the processes and rank 0 alone writes the folder."""
    data_root = tmp_path / "data"
    write_colour_slake(data_root, n_train=16)
    experiments = tmp_path / "experiments"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "train.py",
        f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}",
        f"paths.model_path={tiny_llava_dir}", "data_shift=modality", "ood_value=X-Ray", "model_type=lora",
        "train.epochs=1", "train.batch_size=4", "train.per_device_batch_size=2", "train.dataloader_num_workers=0",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = experiments / "llava-SLAKE_train_iid_modality_X-Ray-finetune_lora_rank16_lr3e-4_seed123"
    assert is_finished(model_dir) and result.stdout.count("trained: ") == 1
    state = json.loads((model_dir / naming.TRAINER_STATE_FILE).read_text())
    # 16 questions / (2 per process x 2 processes x 1 accumulation step) = 4 optimiser steps for one epoch
    assert (state["global_step"], state["train_batch_size"]) == (4, 2)
    resolved = (model_dir / naming.RESOLVED_CONFIG_FILE).read_text()
    assert "world_size: 2\n" in resolved and "gradient_accumulation_steps: 1\n" in resolved
