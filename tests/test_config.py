"""The real Hydra configs compose, and bad settings give one message and exit code 2."""

import subprocess
import sys

import pytest

from sure_vqa import runs
from sure_vqa.config import ConfigError, compose
from sure_vqa.images.corruptions import check_settings as check_corruption
from sure_vqa.runs import resolve_model_type
from tests.conftest import PROJECT_ROOT

CONFIGS = ["train/training_defaults", "inference/inference_defaults", "inference/inference_pretrained_defaults",
           "eval/metrics_eval_defaults"]


def compose_cfg(name, overrides=()):
    return compose(config_name=name, overrides=list(overrides))


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_compose_with_user_keys(name):
    cfg = compose_cfg(name)
    for key in ("dataset", "data_shift", "ood_value", "model_type", "seed"):
        assert key in cfg


def test_train_and_inference_agree_on_the_experiment_folder(tmp_path):
    over = [f"paths.experiment_root={tmp_path}", "model_type=lora", "seed=124", "dataset=SLAKE",
            "data_shift=content_type", "ood_value=Size", "finetune.lora.rank=128", "finetune.lr=3e-5"]
    train_dir = runs.model_dir(compose_cfg("train/training_defaults", over), training=True)
    infer_dir = runs.model_dir(compose_cfg("inference/inference_defaults", over))
    assert train_dir == infer_dir == tmp_path / "llava-SLAKE_train_iid_content_type_Size-finetune_lora_rank128_lr3e-5_seed124"
    pre = compose_cfg("inference/inference_pretrained_defaults", [f"paths.experiment_root={tmp_path}"])
    assert runs.eval_dir(pre) == tmp_path / "SLAKE" / "pretrained" / "eval" / "SLAKE_test_ood_modality_X-Ray"


def test_no_image_training_is_found_by_train_no_image(tmp_path):
    over = [f"paths.experiment_root={tmp_path}"]
    trained = runs.model_dir(compose_cfg("train/training_defaults", [*over, "no_image=true"]), training=True)
    found = runs.model_dir(compose_cfg("inference/inference_defaults", [*over, "train_no_image=true"]))
    assert trained == found and "_no_image-finetune" in trained.name


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"model_type": "qlora"}, "model_type='qlora' is not valid"),
        ({"model_type": "lora", "lora_enable": False}, "lora_enable=false contradicts model_type=lora"),
        ({"model_type": "ia3", "prompt_enable": True}, "prompt_enable=true contradicts model_type=ia3"),
    ],
)
def test_model_type_errors(cfg, message):
    with pytest.raises(ConfigError, match=message):
        resolve_model_type(cfg)


def test_legacy_flags_that_agree_are_accepted():
    assert resolve_model_type({"model_type": "ia3", "ia3_enable": True, "lora_enable": False}) == "ia3"


@pytest.mark.parametrize(
    ("probs", "levels", "message"),
    [
        ({"blur": 1.5, "brightness": 0.5, "noise": 0.5}, None, r"corruption_probabilities.blur=1.5 is outside \[0, 1\]"),
        ({"blur": 0.5, "brightness": -0.1, "noise": 0.5}, None, "corruption_probabilities.brightness"),
        (None, {"blur": "low", "brightness": "extreme", "noise": "low"}, "corruption_strength.brightness='extreme'"),
    ],
)
def test_corruption_errors(probs, levels, message):
    probs = probs or {"blur": 0.5, "brightness": 0.5, "noise": 0.5}
    levels = levels or {"blur": "low", "brightness": "low", "noise": "low"}
    with pytest.raises(ConfigError, match=message):
        check_corruption(probs, levels)


def test_entry_point_exits_2_with_one_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "inference.py", "model_type=qlora", f"paths.experiment_root={tmp_path}"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "model_type='qlora' is not valid" in result.stderr
    assert "full, ia3, lora, prompt, pretrained" in result.stderr
