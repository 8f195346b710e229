"""Each fine-tuning method, trained through the real config and train stage on the colour task (the answer is
only in the image): the loss falls, the model answers from the image, the folder reloads to the same logits,
the projector trains and the vision tower does not. A no-image run never passes pixel values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from sure_vqa import naming
from sure_vqa.config import compose
from sure_vqa.models import parts
from sure_vqa.models.experiment_folder import is_finished
from sure_vqa.models.loading import load_base_model, load_for_inference
from sure_vqa.train.run import train_model
from tests.helpers.training_fixtures import TEST_LR, colour_batches, confident_copy, write_colour_slake

pytestmark = pytest.mark.slow

METHODS = ["lora", "ia3", "prompt", "full"]


@pytest.fixture(scope="module")
def colour_setup(tmp_path_factory: pytest.TempPathFactory, tiny_llava_dir: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("colour")
    write_colour_slake(root / "data")
    return root / "data", confident_copy(tiny_llava_dir, root / "model")


def training_cfg(data_root: Path, model_path: Path, experiments: Path, model_type: str, *extra: str):
    overrides = [
        f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}", f"paths.model_path={model_path}",
        "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray", f"model_type={model_type}",
        f"finetune.lr={TEST_LR[model_type]}", "finetune.mm_projector_lr=1e-3", "finetune.lora.rank=8",
        "finetune.prompt.num_virtual_tokens=4",
        # 16 questions, global batch 4 from 2 per device x 2 accumulation steps, 5 epochs = 20 optimiser steps
        "train.epochs=5", "train.batch_size=4", "train.per_device_batch_size=2", "train.logging_steps=1",
        "train.save_steps=1000", "train.dataloader_num_workers=0", "train.warmup_ratio=0.1", *extra,
    ]
    return compose(config_name="train/training_defaults", overrides=overrides)


def answer_loss(model, batch: dict) -> float:
    with torch.no_grad():
        return float(model(**batch).loss)


@pytest.mark.parametrize("model_type", METHODS)
def test_method_learns_from_the_image_and_reloads(model_type: str, colour_setup, tmp_path: Path) -> None:
    data_root, model_path = colour_setup
    outcome = train_model(training_cfg(data_root, model_path, tmp_path, model_type))
    model_dir = outcome.model_dir
    assert model_dir.name == (f"llava-SLAKE_train_iid_modality_X-Ray-finetune_{model_type}"
                              + {"lora": "_rank8", "prompt": "_ntok4"}.get(model_type, "")
                              + f"_lr{naming.format_lr(TEST_LR[model_type])}_seed123")

    # the loss falls (mean of the first and of the last two logged steps)
    losses = [h["loss"] for h in outcome.trainer.state.log_history if "loss" in h]
    assert outcome.trainer.state.global_step == 20 and len(losses) == 20
    assert sum(losses[-2:]) / 2 < 0.6 * sum(losses[:2]) / 2

    # the experiment folder of docs/method.md#experiment-folders, finished, without leftovers
    assert is_finished(model_dir)
    for name in (naming.MODEL_CONFIG_FILE, naming.RESOLVED_CONFIG_FILE, naming.MODEL_README_FILE,
                 naming.PROJECTOR_WEIGHTS_FILE, "processor_config.json", "chat_template.jinja"):
        assert (model_dir / name).is_file(), name
    adapter = model_type != "full"
    assert (model_dir / naming.ADAPTER_CONFIG_FILE).is_file() == adapter
    assert (model_dir / naming.INIT_WEIGHT_DIR / naming.ADAPTER_CONFIG_FILE).is_file() == adapter
    assert not list(model_dir.glob(f"{naming.CHECKPOINT_PREFIX}*")) and not list(model_dir.glob(".*tmp*"))

    # the folder reloads to the very model that was trained
    trained = outcome.model.eval()
    reloaded, processor = load_for_inference(model_path, model_dir)
    right, swapped = colour_batches(data_root, processor)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**right).logits, trained(**right).logits, atol=1e-4, rtol=1e-4)

    # it answers from the image: the right colour is far more likely than the other one, on unseen questions
    assert answer_loss(reloaded, right) + 1.0 < answer_loss(reloaded, swapped)

    # the projector trained (saved apart too); the vision tower did not move
    base = load_base_model(model_path)
    projector_file = load_file(model_dir / naming.PROJECTOR_WEIGHTS_FILE)
    base_projector = {f"multi_modal_projector.{k}": v for k, v in base.model.multi_modal_projector.state_dict().items()}
    assert sorted(projector_file) == sorted(base_projector)
    assert all((projector_file[k] - base_projector[k]).abs().max() > 1e-4 for k in base_projector)
    reloaded_projector = parts.projector_module(reloaded).state_dict()
    for key, value in reloaded_projector.items():
        torch.testing.assert_close(value, projector_file[f"multi_modal_projector.{key}"])
    base_vision = base.model.vision_tower.state_dict()
    for key, value in parts.submodule(reloaded, parts.model_parts(reloaded).vision_tower).state_dict().items():
        assert torch.equal(value, base_vision[key]), key


class PixelSpy(TrainerCallback):
    """Records, for every forward pass of the LLaVA model during training, whether pixel_values were passed."""

    def __init__(self) -> None:
        self.pixel_values_seen: list[bool] = []
        self.image_tokens_seen: list[bool] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        inner = parts.unwrap(model).model  # LlavaModel: every route to the vision tower goes through it
        image_token = parts.unwrap(model).config.image_token_id

        def spy(module, inputs, kw):
            self.pixel_values_seen.append(kw.get("pixel_values") is not None)
            ids = kw.get("input_ids")
            self.image_tokens_seen.append(bool(ids is not None and (ids == image_token).any()))

        inner.register_forward_pre_hook(spy, with_kwargs=True)


@pytest.mark.parametrize("model_type", ["lora", "prompt"])
def test_no_image_training_never_passes_pixel_values(model_type: str, colour_setup, tmp_path: Path) -> None:
    data_root, model_path = colour_setup
    spy = PixelSpy()
    cfg = training_cfg(data_root, model_path, tmp_path, model_type, "no_image=true", "train.epochs=1")
    outcome = train_model(cfg, callbacks=[spy])
    assert "_no_image-finetune_" in outcome.model_dir.name and is_finished(outcome.model_dir)
    assert len(spy.pixel_values_seen) == outcome.trainer.state.global_step * 2  # 2 micro-batches per step
    assert not any(spy.pixel_values_seen) and not any(spy.image_tokens_seen)
    # without images the projector never receives a gradient, so it stays as it was
    projector = load_file(outcome.model_dir / naming.PROJECTOR_WEIGHTS_FILE)
    base = load_base_model(model_path).model.multi_modal_projector.state_dict()
    assert all(torch.equal(projector[f"multi_modal_projector.{k}"], v) for k, v in base.items())
