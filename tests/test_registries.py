"""A fine-tuning method, a corruption and a metric are each one registration: a throwaway one of each, defined
here and registered nowhere else, runs through the real stages (train, inference, evaluation, report) and
shows up in folder names, result rows, metrics files and the report, with no other file edited."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sure_vqa import naming
from sure_vqa.config import compose
from sure_vqa.evaluate.metrics import registry as metric_registry
from sure_vqa.evaluate.metrics.normalize import normalize_tokens
from sure_vqa.evaluate.run import run_evaluation
from sure_vqa.images import corruptions
from sure_vqa.infer.run import run_inference
from sure_vqa.models import methods
from sure_vqa.study.report import build_report
from sure_vqa.train.run import train_model
from tests.training_fixtures import write_colour_slake

pytestmark = pytest.mark.slow


# --- the throwaway method: only the projector trains (prepare_model trains it for every method) -----------------


@dataclass(frozen=True)
class ProjectorOnlySettings:
    scale: int = 3  # a hyperparameter that only exists to be written into the folder name

    @classmethod
    def from_finetune(cls, finetune_cfg: Mapping[str, Any]) -> ProjectorOnlySettings:
        node = methods.section(finetune_cfg, "projector_only")
        methods.check_keys(node, "finetune.projector_only", ("scale",))
        return cls(**node)


def _freeze_everything(model: Any, settings: ProjectorOnlySettings, context: methods.PrepareContext) -> Any:
    for parameter in model.parameters():
        parameter.requires_grad = False
    return model


PROJECTOR_ONLY = methods.FinetuneMethod(
    name="projector_only", config_from=ProjectorOnlySettings.from_finetune, prepare=_freeze_everything,
    uses_adapter=False, default_lr=1e-3, folder_settings=(methods.FolderSetting("scale", "scale"),))


# --- the throwaway corruption: colours inverted by a fixed amount per strength ---------------------------------


class Invert(corruptions.Corruption):
    name = "invert"
    order = 40
    AMOUNT = {"low": 0.25, "medium": 0.5, "high": 1.0}

    def draw(self, rng: np.random.Generator, strength: str) -> dict[str, Any]:
        return {"strength": strength, "amount": self.AMOUNT[strength]}

    def apply(self, image: np.ndarray, values: Mapping[str, Any]) -> np.ndarray:
        amount = float(values["amount"])
        return corruptions.to_uint8(image * (1 - amount) + (255.0 - image) * amount)


# --- the throwaway metric: the answer's length in words --------------------------------------------------------

ANSWER_WORDS = metric_registry.OpenMetric(
    name="answer_length", columns=(metric_registry.Column("answer_words", "answer words"),), order=200, extra=True,
    score_row=lambda gt, pred, gt_tokens, pred_tokens: (float(len(pred_tokens)),))


@pytest.fixture
def throwaway_registrations() -> Iterator[None]:
    """Registered for this test only (Registry.temporarily takes them out again)."""
    with methods.REGISTRY.temporarily(PROJECTOR_ONLY), corruptions.REGISTRY.temporarily(Invert()), \
            metric_registry.REGISTRY.temporarily(ANSWER_WORDS):
        yield


def test_a_registered_method_corruption_and_metric_run_through_every_stage(
        throwaway_registrations: None, tiny_llava_dir: Path, tmp_path: Path) -> None:
    assert "projector_only" in methods.model_types() and corruptions.names()[-1] == "invert"
    write_colour_slake(tmp_path / "data")
    common = [f"paths.dataset_root={tmp_path / 'data'}", f"paths.experiment_root={tmp_path / 'exp'}",
              f"paths.model_path={tiny_llava_dir}", "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray",
              "model_type=projector_only"]

    outcome = train_model(compose("train/training_defaults", [
        *common, "train.max_steps=2", "train.batch_size=2", "train.per_device_batch_size=2",
        "train.save_steps=1000", "train.dataloader_num_workers=0"]))
    # the method's default learning rate and its folder hyperparameter name the folder
    assert outcome.model_dir.name == "llava-SLAKE_train_iid_modality_X-Ray-finetune_projector_only_scale3_lr1e-3_seed123"
    trainable = {n for n, p in outcome.trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("multi_modal_projector" in n for n in trainable)

    # a new corruption's settings are added on the command line (`+key=value`: the config lists the built-ins)
    corrupted = ["corruption=true", "corruption_probabilities.blur=0", "corruption_probabilities.brightness=0",
                 "corruption_probabilities.noise=0", "+corruption_probabilities.invert=1",
                 "+corruption_strength.invert=high"]
    eval_dirs = []
    for split in ("iid", "ood"):
        for extra in ([], corrupted):
            cfg = compose("inference/inference_defaults", [*common, f"split={split}", "max_new_tokens=3",
                                                           "batch_size=2", "dtype=float32", *extra])
            eval_dirs.append(run_inference(cfg).parent)
            run_evaluation(compose("eval/metrics_eval_defaults", [
                *common, f"split={split}", *extra, "metric_type=[traditional_metrics]",
                "extra_metrics=[answer_length]"]))

    corrupted_dir = eval_dirs[1]
    assert corrupted_dir.name.endswith("_corruption_blur-low-p0_brightness-low-p0_noise-low-p0_invert-high-p1")
    parsed = naming.parse_eval_run_name(corrupted_dir.name)["corruption"]
    assert parsed["strengths"]["invert"] == "high" and parsed["probabilities"]["invert"] == 1.0
    rows = json.loads((corrupted_dir / naming.TEST_RESULTS_FILE).read_text())
    assert all(row["corruption"]["applied"] == ["invert"] and row["corruption"]["invert"]["amount"] == 1.0
               for row in rows)

    open_metrics = json.loads((eval_dirs[0] / naming.OPEN_METRICS_FILE).read_text())
    words = [len(normalize_tokens(row["pred"])) for row in open_metrics[1:]]
    assert [row["answer_words"] for row in open_metrics[1:]] == words
    assert open_metrics[0]["avg_answer_words"] == pytest.approx(sum(words) / len(words))

    files = build_report(tmp_path / "exp", progress=False)
    summary = pd.read_csv(files.summary_csv)
    mine = summary[summary["label"] == "projector_only_scale3_lr1e-3"]
    assert "answer_words" in set(mine["metric"])
    corruption_table = pd.read_csv(files.corruption_csv)
    assert not corruption_table[corruption_table["label"].str.startswith("projector_only")].empty
