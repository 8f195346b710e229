"""Shared by the inference tests: composing the real configs, a spy on generation, the subprocess command."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sure_vqa.config import compose
from sure_vqa.infer.generation.backends import hf
from tests.helpers.training_fixtures import COLOURS, colour_row, write_colour_slake

# The demo's ood split for content_type=Size: 18 questions about 9 images.
SHIFT = ["dataset=demo", "data_shift=content_type", "ood_value=Size", "split=ood"]
NUM_QUESTIONS = 18
BATCH = 5
FAST = ["max_new_tokens=3", f"batch_size={BATCH}", "dtype=float32"]
RUN = "demo_test_ood_content_type_Size"
PRETRAINED = "inference/inference_pretrained_defaults"


def compose_cfg(dataset_root: Path, experiment_root: Path, model_path: Path, overrides=(), name: str = PRETRAINED):
    """The real inference config, with the tiny model as the base model (zero-shot unless name says otherwise)."""
    paths = [f"paths.dataset_root={dataset_root}", f"paths.experiment_root={experiment_root}",
             f"paths.model_path={model_path}"]
    return compose(config_name=name, overrides=[*SHIFT, *FAST, *paths, *overrides])


def inference_command(dataset_root: Path, experiment_root: Path, model_path: Path, eval_dir: Path, hydra_dir: Path,
                      *extra: str) -> list[str]:
    """`python inference.py ...` for the same run as compose_cfg (extra overrides win)."""
    paths = [f"paths.dataset_root={dataset_root}", f"paths.experiment_root={experiment_root}",
             f"paths.model_path={model_path}", f"eval_dir={eval_dir}", f"hydra.run.dir={hydra_dir}"]
    return [sys.executable, "inference.py", "--config-name", PRETRAINED, *SHIFT, *FAST, *paths, *extra]


ORIGINAL_GENERATE = hf.HFGenerator.generate


class GenerateSpy:
    """Wraps HFGenerator.generate (the real one still runs) and records what each call was given; with
    `fail_on_call=n` the n-th call raises KeyboardInterrupt instead, as a Ctrl-C would."""

    def __init__(self, monkeypatch, fail_on_call: int | None = None) -> None:
        self.calls: list[tuple[list[str], list[np.ndarray] | None]] = []
        spy = self

        def generate(generator, prompts, images=None):
            if fail_on_call is not None and len(spy.calls) + 1 == fail_on_call:
                raise KeyboardInterrupt("stopped by the test")
            spy.calls.append((list(prompts), None if images is None else [np.asarray(i) for i in images]))
            return ORIGINAL_GENERATE(generator, prompts, images)

        monkeypatch.setattr(hf.HFGenerator, "generate", generate)

    @property
    def images(self) -> list[np.ndarray]:
        return [image for _, images in self.calls for image in images or []]

    @property
    def questions_answered(self) -> int:
        return sum(len(prompts) for prompts, _ in self.calls)


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).hexdigest()


def many_colour_questions(root: Path, n_test: int) -> Path:
    """The colour dataset (tests/helpers/training_fixtures.py) with `n_test` more iid test questions, each with its own
    image, so that a run takes long enough to be stopped in the middle. Returns `root`."""
    folder = write_colour_slake(root, n_train=4)
    test = json.loads((folder / "test.json").read_text())
    test += [colour_row(3000 + i, "red" if i % 2 else "blue") for i in range(n_test)]
    (folder / "test.json").write_text(json.dumps(test))
    for row in test:
        path = folder / "imgs" / row["img_name"]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (36, 28), COLOURS[row["answer"]]).save(path)
    return root


def colour_inference_command(data_root: Path, experiments: Path, model: Path, *extra: str) -> list[str]:
    """inference.py with the zero-shot model on the colour dataset's iid test split, one question a batch."""
    return [sys.executable, "inference.py", "--config-name", PRETRAINED, "dataset=SLAKE", "data_shift=modality",
            "ood_value=X-Ray", "split=iid", f"paths.dataset_root={data_root}", f"paths.experiment_root={experiments}",
            f"paths.model_path={model}", "max_new_tokens=24", "batch_size=1", "dtype=float32",
            f"hydra.run.dir={experiments}/hydra", *extra]
