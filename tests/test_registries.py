"""A fine-tuning method, a corruption, a metric, a dataset, a generation backend and a judge backend are each one
registration: a throwaway one of each, defined here and registered nowhere else, runs through the real stages
(train, inference, evaluation, report) and shows up in folder names, result rows, metrics files and the report,
with no other file edited."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sure_vqa import naming
from sure_vqa.config import ConfigError, compose
from sure_vqa.data import registry as data_registry
from sure_vqa.data.records import QARecord
from sure_vqa.data.registry import DatasetReader
from sure_vqa.evaluate.judge import backends as judge_backends
from sure_vqa.evaluate.judge.backends import JudgeBackendEntry
from sure_vqa.evaluate.metrics import registry as metric_registry
from sure_vqa.evaluate.metrics.normalize import normalize_tokens
from sure_vqa.evaluate.run import run_evaluation
from sure_vqa.images import corruptions
from sure_vqa.infer import generation
from sure_vqa.infer.generation import GenerationBackend, LoadRequest
from sure_vqa.infer.run import run_inference
from sure_vqa.listing import listing
from sure_vqa.models import methods
from sure_vqa.settings import setting
from sure_vqa.study.report import build_report
from sure_vqa.train.run import train_model
from tests.helpers.judge_helpers import row_input
from tests.helpers.training_fixtures import write_colour_slake

pytestmark = pytest.mark.slow


# --- the throwaway method: only the projector trains (prepare_model trains it for every method) -----------------


@dataclass(frozen=True)
class ProjectorOnlySettings:
    scale: int = setting(3, minimum=1)  # a hyperparameter that only exists to be written into the folder name


def _freeze_everything(model: Any, settings: ProjectorOnlySettings, context: methods.PrepareContext) -> Any:
    for parameter in model.parameters():
        parameter.requires_grad = False
    return model


PROJECTOR_ONLY = methods.FinetuneMethod(
    name="projector_only", settings=ProjectorOnlySettings, prepare=_freeze_everything,
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
              "model_type=projector_only", "finetune.projector_only.scale=5"]

    outcome = train_model(compose("train/training_defaults", [
        *common, "train.max_steps=2", "train.batch_size=2", "train.per_device_batch_size=2",
        "train.save_steps=1000", "train.dataloader_num_workers=0"]))
    # the method's default learning rate and its folder hyperparameter, set on the command line from nothing but
    # the method's own settings class, name the folder
    assert outcome.model_dir.name == "llava-SLAKE_train_iid_modality_X-Ray-finetune_projector_only_scale5_lr1e-3_seed123"
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
    mine = summary[summary["label"] == "projector_only_scale5_lr1e-3"]
    assert "answer_words" in set(mine["metric"])
    corruption_table = pd.read_csv(files.corruption_csv)
    assert not corruption_table[corruption_table["label"].str.startswith("projector_only")].empty


# --- a throwaway dataset, generation backend and judge backend, each defined here alone ------------------------


def read_colour_csv(dataset_dir: Path) -> list[QARecord]:
    """One CSV of questions beside an images/ folder (no published layout): id, file, question, answer, split,
    scanner (the shift field, fixed per image)."""
    with (dataset_dir / "questions.csv").open(encoding="utf-8") as handle:
        return [QARecord(qid=row["id"], image=f"images/{row['file']}", img_name=row["file"], question=row["question"],
                         answer=row["answer"], answer_type="OPEN", source=row["split"],
                         fields={"scanner": row["scanner"]})
                for row in csv.DictReader(handle)]


COLOUR_CSV = DatasetReader(name="colour_csv", read=read_colour_csv, image_level_fields=frozenset({"scanner"}),
                           description="colour questions in one CSV", raw_files=("questions.csv",))


def write_colour_csv(root: Path) -> None:
    folder = root / "colour_csv"
    (folder / "images").mkdir(parents=True)
    rows = []
    for index in range(12):
        colour, split = ("red", "blue")[index % 2], ("train",) * 8 + ("val", "test", "test", "test")
        scanner = "B" if index in (3, 10) else "A"
        Image.new("RGB", (20, 16), {"red": (220, 20, 20), "blue": (20, 20, 220)}[colour]).save(
            folder / "images" / f"img{index}.png")
        rows.append({"id": f"q{index}", "file": f"img{index}.png", "question": "What colour is the image?",
                     "answer": colour, "split": split[index], "scanner": scanner})
    with (folder / "questions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


class PixelColour:
    """A generation backend that answers from the pixels (red or blue), with the model's real processor."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.calls = 0

    def generate(self, prompts: list[str], images: list[Any] | None = None) -> list[str]:
        self.calls += 1
        if images is None:
            return ["unknown"] * len(prompts)
        return ["red" if np.asarray(image)[..., 0].mean() > np.asarray(image)[..., 2].mean() else "blue"
                for image in images]


def _load_pixel_colour(request: LoadRequest) -> PixelColour:
    from transformers import AutoProcessor

    return PixelColour(AutoProcessor.from_pretrained(request.base_model_path))


PIXEL_COLOUR = GenerationBackend("pixel_colour", "answers the colour of the image's pixels", _load_pixel_colour)


@dataclass(frozen=True)
class ExactSettings:
    """The backend's own `judge.` setting: it joins the judge config group from here alone."""

    stars_for_exact: int = setting(5, minimum=2)


class ExactJudge:
    """A judge backend that gives `stars_for_exact` stars to an answer that starts with the ground truth and 1 to
    any other (generate mode). An exact answer never reaches it: the exact-match shortcut gives full marks."""

    batch_size = 4

    def __init__(self, stars: int) -> None:
        self.requests, self.stars = 0, stars

    def generate(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        self.requests += len(conversations)
        rows = [row_input(conversation) for conversation in conversations]
        return [f'{{"score": {self.stars if row["pred"].startswith(row["gt"]) else 1}}}' for row in rows]


def _refuse_score_mode(settings: Any) -> None:
    if settings.mode != "generate":
        raise ConfigError(f"judge.mode={settings.mode} is not valid for the exact backend; it only generates")


EXACT_JUDGE = JudgeBackendEntry("exact", "N stars for an exact answer, 1 otherwise",
                                build=lambda settings: ExactJudge(settings.options.stars_for_exact),
                                settings=ExactSettings, check=_refuse_score_mode)


def test_a_registered_dataset_generation_backend_and_judge_backend_run_through_every_stage(
        tiny_llava_dir: Path, tmp_path: Path) -> None:
    write_colour_csv(tmp_path / "data")
    common = [f"paths.dataset_root={tmp_path / 'data'}", f"paths.experiment_root={tmp_path / 'exp'}",
              f"paths.model_path={tiny_llava_dir}", "dataset=colour_csv", "data_shift=scanner", "ood_value=B",
              "model_type=lora"]
    with data_registry.REGISTRY.temporarily(COLOUR_CSV), generation.REGISTRY.temporarily(PIXEL_COLOUR), \
            judge_backends.REGISTRY.temporarily(EXACT_JUDGE):
        assert {"colour_csv", "pixel_colour", "exact"} <= set(listing().split())
        outcome = train_model(compose("train/training_defaults", [
            *common, "train.max_steps=2", "train.batch_size=2", "train.per_device_batch_size=2",
            "train.save_steps=1000", "train.dataloader_num_workers=0"]))
        # the dataset's iid train split: its 8 train rows but the scanner-B one (ood)
        assert "colour_csv_train_iid_scanner_B" in outcome.model_dir.name
        judge = ["judge.backend=exact", "judge.name=exact", "judge.model=exact-match", "judge.mode=generate",
                 "judge.stars_for_exact=4"]
        eval_dirs = []
        for split in ("iid", "ood"):
            results = run_inference(compose("inference/inference_defaults", [
                *common, f"split={split}", "backend=pixel_colour", "batch_size=2"]))
            eval_dirs.append(results.parent)
            rows = json.loads(results.read_text())
            assert all(row["pred"] == row["gt"] for row in rows)  # the backend read each image's pixels
            # answers that are right but not exact, so that the judge is asked (an exact one takes the shortcut)
            results.write_text(json.dumps([{**row, "pred": row["pred"] + " colour"} for row in rows]))
            run_evaluation(compose("eval/metrics_eval_defaults", [
                *common, f"split={split}", "metric_type=[traditional_metrics,exact]", *judge]))
        with pytest.raises(ConfigError, match="judge.mode=score is not valid for the exact backend"):
            run_evaluation(compose("eval/metrics_eval_defaults", [
                *common, "split=iid", "metric_type=[exact]", *judge, "judge.mode=score"]))
        with pytest.raises(ConfigError, match="^judge.stars_for_exact=1 is not valid; it must be an integer >= 2$"):
            run_evaluation(compose("eval/metrics_eval_defaults", [
                *common, "split=iid", "metric_type=[exact]", *judge, "judge.stars_for_exact=1"]))

    # scanner B is ood: its test question, and its train question too (an image-level field's ood train records
    # join the ood test split, docs/method.md#shifts-and-splits)
    for folder, questions in zip(eval_dirs, (["q11", "q9"], ["q10", "q3"]), strict=True):
        rows = json.loads((folder / naming.TEST_RESULTS_FILE).read_text())
        assert sorted(row["qid"] for row in rows) == questions
        scores = json.loads((folder / "exact_metrics.json").read_text())
        # the judge was asked for every row (no shortcut) and answered with the setting given on the command line
        assert [row["score"] for row in scores[1:]] == [4] * len(questions)
        assert [row["shortcut"] for row in scores[1:]] == [False] * len(questions)
    summary = pd.read_csv(build_report(tmp_path / "exp", progress=False).summary_csv)
    exact = summary[(summary["metric"] == "exact") & (summary["role"] == "model")]
    assert exact[["iid_mean", "ood_mean"]].values.tolist() == [[4.0, 4.0]]
    assert "colour_csv" not in data_registry.names()  # gone with the block
