"""Start-up validation of train.py, the train settings, the optimiser grouping and the experiment folder's rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from sure_vqa import naming
from sure_vqa.config import ConfigError, compose
from sure_vqa.models import experiment_folder as folder
from sure_vqa.settings import checked
from sure_vqa.train.run import plan
from sure_vqa.train.settings import TrainSettings
from sure_vqa.train.trainer import parameter_groups
from tests.conftest import PROJECT_ROOT
from tests.helpers.training_fixtures import write_colour_slake


def training_cfg(tmp_path: Path, model_path: Path, *overrides: str):
    base = [f"paths.dataset_root={tmp_path / 'data'}", f"paths.experiment_root={tmp_path / 'exp'}",
            f"paths.model_path={model_path}", "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray"]
    return compose(config_name="train/training_defaults", overrides=[*base, *overrides])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_colour_slake(tmp_path / "data", n_train=4)
    return tmp_path


def test_defaults_are_the_study_settings() -> None:
    cfg = compose(config_name="train/training_defaults")
    settings = checked(TrainSettings, cfg.train, "train")
    assert (settings.epochs, settings.batch_size, settings.lr_scheduler, settings.warmup_ratio,
            settings.weight_decay, settings.max_length, settings.gradient_checkpointing, settings.group_by_length,
            settings.pad_to_square, settings.precision) == (1, 32, "cosine", 0.03, 0.0, 2048, True, True, None, "auto")
    assert settings.gradient_accumulation(world_size=1) == 8 and settings.gradient_accumulation(world_size=4) == 2
    args = settings.training_arguments(Path("/tmp/x"), seed=124, learning_rate=3e-4, world_size=1,
                                       find_unused_parameters=False)
    assert (args.per_device_train_batch_size * args.gradient_accumulation_steps, args.lr_scheduler_type.value,
            args.warmup_steps, args.seed, args.train_sampling_strategy) == (32, "cosine", 0.03, 124, "group_by_length")
    assert args.get_warmup_steps(100) == 3  # ceil(0.03 x 100)


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"epocs": 2}, r"train.epocs is not a setting; valid settings: epochs, "),
        ({"batch_size": "large"}, r"train.batch_size='large' is not valid; it must be an integer"),
        ({"warmup_ratio": 1.5}, r"train.warmup_ratio=1.5 is not valid; it must be in \[0, 1\)"),
        ({"precision": "fp8"}, r"train.precision='fp8' is not valid; valid values: auto, bf16, fp16, fp32"),
        ({"gradient_checkpointing": "yes"}, r"train.gradient_checkpointing='yes' is not valid; it must be true or false"),
        ({"save_total_limit": 0}, r"train.save_total_limit=0 is not valid; it must be at least 1: keep a checkpoint, or a killed run cannot resume"),
        ({"max_length": None}, r"train.max_length is null; give a value \(default 2048\)"),
    ],
)
def test_train_settings_errors(node: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        checked(TrainSettings, node, "train")


def test_batch_must_split_evenly_over_devices() -> None:
    settings = TrainSettings(batch_size=32, per_device_batch_size=6)
    with pytest.raises(ConfigError, match=r"train.batch_size=32 is not a multiple of train.per_device_batch_size=6 "
                                          r"x 1 device\(s\)"):
        settings.gradient_accumulation(1)


def test_precision_follows_the_hardware() -> None:
    if torch.cuda.is_available():
        assert TrainSettings().resolved_precision() == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
        assert TrainSettings(precision="fp16").resolved_precision() == "fp16"
    else:
        assert TrainSettings().resolved_precision() == "fp32"
        with pytest.raises(ConfigError, match="train.precision=bf16 needs a GPU"):
            TrainSettings(precision="bf16").resolved_precision()


def test_plan_resolves_the_run(data: Path, tiny_llava_dir: Path) -> None:
    p = plan(training_cfg(data, tiny_llava_dir, "model_type=ia3", "seed=124"))
    assert p.model_dir == data / "exp" / "llava-SLAKE_train_iid_modality_X-Ray-finetune_ia3_lr3e-2_seed124"
    assert (p.learning_rate, p.projector_lr) == (3e-2, 2e-5)
    assert (p.resolved["ia3_enable"], p.resolved["lora_enable"], p.resolved["prompt_enable"]) == (True, False, False)
    assert p.resolved["finetune"]["lr"] == 3e-2 and p.resolved["runtime"]["gradient_accumulation_steps"] == 8
    # train.pad_to_square=null resolves to the family's way (LLaVA pads) and is recorded for inference
    assert p.settings.pad_to_square is True and p.resolved["train"]["pad_to_square"] is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model_type=pretrained"], "model_type=pretrained is the zero-shot model and is not trained"),
        (["model_type=lora", "lora_enable=false"], "lora_enable=false contradicts model_type=lora"),
        (["train_split=ood"], r"train_split='ood' is not valid; valid values: iid, all, sample"),
        (["+train.learning_rate=1e-4"], "train.learning_rate is not a setting"),
        (["finetune.lora.rank=0"], "finetune.lora.rank=0 is not valid"),
        (["finetune.lr=-1"], r"finetune.lr=-1.0 is not valid; it must be a number > 0"),
        (["train.per_device_batch_size=5"], "train.batch_size=32 is not a multiple"),
        (["data_shift=colour"], "colour"),
        (["ood_value=PET"], "PET"),
    ],
)
def test_plan_rejects_bad_settings(data: Path, tiny_llava_dir: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(training_cfg(data, tiny_llava_dir, *overrides))


def test_plan_rejects_missing_model(data: Path) -> None:
    with pytest.raises(ConfigError, match=r"paths.model_path \(set LLAVA_MED_MODEL_PATH in .env or the environment\)"
                                          r" = .*nowhere does not exist"):
        plan(training_cfg(data, data / "nowhere"))
    with pytest.raises(ConfigError, match="is not a transformers model folder"):
        plan(training_cfg(data, data / "data"))


def test_train_entry_exits_2_with_one_message(data: Path, tiny_llava_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "train.py", f"paths.dataset_root={data / 'data'}", f"paths.experiment_root={data / 'exp'}",
         f"paths.model_path={tiny_llava_dir}", "model_type=pretrained", f"hydra.run.dir={data / 'hydra'}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: model_type=pretrained is the zero-shot model")
    assert not (data / "exp").exists()


def test_parameter_groups_by_hand() -> None:
    model = nn.ModuleDict({"lm": nn.Linear(2, 2), "proj": nn.Linear(2, 2), "frozen": nn.Linear(2, 2)})
    model["frozen"].requires_grad_(False)
    named = list(model.named_parameters())
    decay = {"lm.weight", "proj.weight", "frozen.weight"}
    projector = {id(p) for p in model["proj"].parameters()}
    groups = parameter_groups(named, decay, projector, weight_decay=0.1, projector_lr=2e-5)
    as_names = [({n for n, p in named if any(p is q for q in g["params"])}, g["weight_decay"], g.get("lr"))
                for g in groups]
    assert as_names == [({"lm.bias"}, 0.0, None), ({"lm.weight"}, 0.1, None), ({"proj.bias"}, 0.0, 2e-5),
                        ({"proj.weight"}, 0.1, 2e-5)]


def test_checkpoints_count_once_their_state_is_written(tmp_path: Path) -> None:
    for step, complete in ((2, True), (4, True), (6, False)):
        checkpoint = tmp_path / f"{naming.CHECKPOINT_PREFIX}{step}"
        checkpoint.mkdir()
        if complete:
            (checkpoint / naming.TRAINER_STATE_FILE).write_text("{}")
    (tmp_path / "checkpoint-best").mkdir()
    assert folder.last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert folder.last_checkpoint(tmp_path / "absent") is None


def test_install_files_marks_the_folder_finished_last(tmp_path: Path) -> None:
    staging = folder.staging_dir(tmp_path)
    (staging / "adapter_config.json").write_text("{}")
    (staging / "sub").mkdir()
    (staging / "sub" / "x.txt").write_text("x")
    with pytest.raises(RuntimeError, match="refusing to mark the run finished"):
        folder.install_files(staging, tmp_path)
    assert not folder.is_finished(tmp_path)
    (staging / naming.TRAINER_STATE_FILE).write_text("{}")
    folder.install_files(staging, tmp_path)
    assert folder.is_finished(tmp_path) and (tmp_path / "sub" / "x.txt").read_text() == "x"
    assert not staging.exists()


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    old = {"seed": 123, "train": {"epochs": 1.0, "dataloader_num_workers": 2}, "paths": {"dataset_root": "/a"}}
    folder.write_resolved_config(tmp_path, old)
    moved = {"seed": 123, "train": {"epochs": 1.0, "dataloader_num_workers": 8}, "paths": {"dataset_root": "/b"}}
    folder.check_resumable(tmp_path, moved)  # where data lives and how fast it loads may change
    with pytest.raises(ConfigError, match=r"other settings \(train.epochs: 1.0 -> 2.0\)"):
        folder.check_resumable(tmp_path, {**moved, "train": {"epochs": 2.0, "dataloader_num_workers": 2}})


def test_projector_tensors_from_any_saved_layout() -> None:
    weights = {"base_model.model.model.multi_modal_projector.linear_1.weight": 1,
               "multi_modal_projector.linear_2.bias": 2, "model.language_model.layers.0.mlp.up_proj.weight": 3}
    assert folder.projector_tensors(weights, "multi_modal_projector") == {
        "multi_modal_projector.linear_1.weight": 1, "multi_modal_projector.linear_2.bias": 2}
