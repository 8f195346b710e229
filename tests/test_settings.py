"""Settings dataclasses (sure_vqa/settings.py): the one home of each default, checked once with one-line messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sure_vqa.config import ConfigError, compose
from sure_vqa.evaluate.judge.registry import check_judge_config
from sure_vqa.infer.settings import InferenceSettings
from sure_vqa.models import experiment_folder, methods
from sure_vqa.settings import checked, defaults, setting
from sure_vqa.train.settings import TrainSettings


@dataclass(frozen=True)
class Example:
    count: int = setting(2, minimum=1)
    ratio: float = setting(0.5, minimum=0, below=1)
    seconds: float = setting(60, above=0, must_be="a number of seconds > 0")
    kind: str = setting("a", choices=("a", "b"))
    names: tuple[str, ...] = ("x",)
    limit: int | None = None
    flag: bool = False


@pytest.mark.parametrize(("node", "message"), [
    ({"cuont": 3}, "ex.cuont is not a setting; valid settings: count, ratio, seconds, kind, names, limit, flag"),
    ({"count": 0}, "ex.count=0 is not valid; it must be an integer >= 1"),
    ({"count": 2.5}, "ex.count=2.5 is not valid; it must be an integer"),
    ({"count": True}, "ex.count=True is not valid; it must be an integer"),
    ({"ratio": 1.0}, r"ex.ratio=1.0 is not valid; it must be in \[0, 1\)"),
    ({"seconds": 0}, "ex.seconds=0.0 is not valid; it must be a number of seconds > 0"),
    ({"kind": "c"}, "ex.kind='c' is not valid; valid values: a, b"),
    ({"names": "x"}, "ex.names='x' is not valid; it must be a list"),
    ({"flag": "yes"}, "ex.flag='yes' is not valid; it must be true or false"),
    ({"count": None}, r"ex.count is null; give a value \(default 2\)"),
])
def test_a_bad_value_is_one_message_naming_the_setting(node: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}$"):
        checked(Example, node, "ex")


def test_values_are_typed_and_absent_keys_take_the_default() -> None:
    value = checked(Example, {"count": 3.0, "ratio": 0, "names": ["y", "z"], "limit": None}, "ex")
    assert value == Example(count=3, ratio=0.0, names=("y", "z"))
    assert type(value.count) is int and type(value.ratio) is float
    # a shared node (the global config): only the dataclass's keys are read
    assert checked(Example, {"count": 4, "dataset": "SLAKE"}, only_own=True).count == 4
    assert defaults(Example) == {"count": 2, "ratio": 0.5, "seconds": 60, "kind": "a", "names": ["x"],
                                 "limit": None, "flag": False}


def test_the_configs_take_their_defaults_from_the_dataclasses(tmp_path: Path) -> None:
    train = compose("train/training_defaults")
    assert dict(train.train) == defaults(TrainSettings)
    assert checked(TrainSettings, train.train, "train") == TrainSettings()
    inference = compose("inference/inference_defaults")
    assert {key: inference[key] for key in defaults(InferenceSettings)} == defaults(InferenceSettings)
    assert list(inference.finetune) == ["lr", "mm_projector_lr", *methods.names()]
    assert list(inference.finetune.ia3.target_modules) == ["k_proj", "v_proj", "down_proj"]
    # the judge: shared defaults, gemma's own values, and the hf backend's options
    judge = check_judge_config({**compose("eval/metrics_eval_defaults",
                                                      [f"paths.judge_model_path={tmp_path}"]).judge})
    assert (judge.name, judge.model, judge.batch_size, judge.options.device, judge.options.model_path) == (
        "gemma", "gemma-2-9b-it", 8, "auto", str(tmp_path))


@dataclass(frozen=True)
class ScaleSettings:
    scale: int = setting(3, minimum=1)


def test_a_new_methods_hyperparameter_is_a_setting_from_its_own_module() -> None:
    method = methods.FinetuneMethod(name="scaled", settings=ScaleSettings, prepare=lambda m, s, c: m,
                                    uses_adapter=False, default_lr=1e-3,
                                    folder_settings=(methods.FolderSetting("scale", "scale"),))
    with methods.REGISTRY.temporarily(method):
        assert compose("train/training_defaults").finetune.scaled.scale == 3
        cfg = compose("train/training_defaults", ["model_type=scaled", "finetune.scaled.scale=7"])
        assert method.folder_tags(method.config_from(cfg.finetune)) == ("scale7",)
        with pytest.raises(ConfigError, match="^finetune.scaled.scale=0 is not valid; it must be an integer >= 1$"):
            method.config_from(compose("train/training_defaults", ["finetune.scaled.scale=0"]).finetune)
    assert "scaled" not in compose("train/training_defaults").finetune


def test_a_folder_trained_before_the_ia3_defaults_were_written_out_is_the_same_run(tmp_path: Path) -> None:
    # a resolved config as the previous version wrote it: `ia3: {}`, no `full`
    old = {"model_type": "ia3", "finetune": {"lr": None, "mm_projector_lr": 2e-5, "ia3": {}}}
    (tmp_path / "resolved_config.yaml").write_text(yaml.safe_dump(old))
    now = {"model_type": "ia3", "finetune": {"lr": None, "mm_projector_lr": 2e-5, "full": {},
                                             "ia3": {"target_modules": ["k_proj", "v_proj", "down_proj"],
                                                     "feedforward_modules": ["down_proj"]}}}
    assert experiment_folder.differences_from_folder(tmp_path, now) == []
    now["finetune"]["ia3"]["target_modules"] = ["k_proj", "down_proj"]
    assert experiment_folder.differences_from_folder(tmp_path, now) == [
        "finetune.ia3.target_modules: None -> ['k_proj', 'down_proj']"]
