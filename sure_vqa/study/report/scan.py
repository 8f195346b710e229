"""Finding every eval run under an experiment root, and what each one is, from folder names alone.

The layout is the one `sure_vqa.naming` builds (docs/method.md#experiment-folders): fine-tuned models
`{base model}-{train split}-finetune_...` (`llava-` for LLaVA-Med), the zero-shot model
`{dataset}/pretrained[-{base model}]`, the most-frequent baseline `most_frequent-{train split}`, each with
`eval/{run}/`. A folder that looks like a run but cannot be placed is kept in `ScanResult.unplaced` with the
reason, so the report can say what it did not use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sure_vqa import naming

FINETUNED, PRETRAINED, MOST_FREQUENT = "finetuned", "pretrained", "most_frequent"
IMAGE = "image"
NO_IMAGE = "no image"


@dataclass(frozen=True, order=True)
class Shift:
    """A test setting: dataset, shift field and ood value (as written in names), and the test mod."""

    dataset: str
    data_shift: str
    ood_value: str
    mod: str = "test"

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.data_shift}={self.ood_value}" + ("" if self.mod == "test" else f" ({self.mod})")

    def split_name(self, split: str) -> str:
        return naming.split_name(self.dataset, self.mod, split, self.data_shift, self.ood_value)


@dataclass(frozen=True)
class Model:
    """One model folder: what it is and how its name was built (for computing the names of missing runs)."""

    path: Path
    kind: str  # finetuned | pretrained | most_frequent
    dataset: str
    method: str  # `lora_rank16_lr3e-4` (finetune tag without seed), `pretrained`, `most_frequent`
    seed: int | None = None
    train_images: bool = True
    train_split_name: str | None = None
    name_parts: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Run:
    """One eval folder of one model on one split of one shift."""

    model: Model
    path: Path
    shift: Shift
    split: str  # iid | ood
    condition: str  # image | no image | blank image | shuffled image
    corruption: dict[str, dict[str, Any]] | None
    files: frozenset[str]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ScanResult:
    root: Path
    models: list[Model] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    unplaced: list[tuple[Path, str]] = field(default_factory=list)


def method_name(parsed_experiment: dict[str, Any]) -> str:
    """The finetune tag without `finetune_` and the seed: what stays the same across a method's seeds."""
    tag = parsed_experiment["finetune_tag"].removeprefix("finetune_")
    method = tag.rsplit("_seed", 1)[0]
    base_model = parsed_experiment.get("base_model", naming.DEFAULT_BASE_MODEL)
    if base_model != naming.DEFAULT_BASE_MODEL:  # rows of one base model stay together, apart from LLaVA-Med's
        method = f"[{base_model}] {method}"
    if parsed_experiment["split"] != "iid":
        method += f" [train {parsed_experiment['split']}]"
    return method


def pretrained_method(base_model: str) -> str:
    """The zero-shot model's method name: `pretrained` for LLaVA-Med, `[base model] pretrained` otherwise."""
    return PRETRAINED if base_model == naming.DEFAULT_BASE_MODEL else f"[{base_model}] {PRETRAINED}"


def _zero_shot_models(dataset_dir: Path) -> list[Model]:
    """The zero-shot folders (`pretrained`, `pretrained-{base model}`) under a dataset's folder."""
    models = []
    for folder in sorted(p for p in dataset_dir.iterdir() if p.is_dir()):
        base_model = naming.parse_pretrained_dir_name(folder.name)
        if base_model is not None:
            models.append(Model(folder, PRETRAINED, dataset_dir.name, pretrained_method(base_model),
                                name_parts={"base_model": base_model}))
    return models


def _model_of(path: Path) -> tuple[Model | None, str | None]:
    name = path.name
    if "-finetune_" in name:
        try:
            parsed = naming.parse_experiment_name(name)
        except ValueError as err:
            return None, str(err)
        return Model(path, FINETUNED, parsed["dataset"], method_name(parsed), parsed["seed"],
                     not parsed["no_image"], parsed["train_split_name"], parsed), None
    if name.startswith(naming.MOST_FREQUENT_PREFIX):
        try:
            parsed = naming.parse_most_frequent_name(name)
        except ValueError as err:
            return None, str(err)
        return Model(path, MOST_FREQUENT, parsed["dataset"], MOST_FREQUENT, None, True,
                     parsed["train_split_name"], parsed), None
    return None, None


def _run_of(model: Model, path: Path) -> tuple[Run | None, str | None]:
    try:
        parsed = naming.parse_eval_run_name(path.name)
    except ValueError as err:
        return None, str(err)
    if parsed["split"] not in ("iid", "ood"):
        return None, f"split {parsed['split']} is not part of an iid/ood comparison"
    if parsed["dataset"] != model.dataset:
        return None, f"tests dataset {parsed['dataset']} but the model is of {model.dataset}"
    train = model.name_parts
    if train.get("split") in ("iid", "ood") and (train["data_shift"], train["ood_value"]) != (
        parsed["data_shift"], parsed["ood_value"]
    ):
        return None, (f"tests shift {parsed['data_shift']}={parsed['ood_value']} but the model was trained on "
                      f"{train['data_shift']}={train['ood_value']}")
    if parsed["no_image"] and parsed["image_control"]:
        return None, "a run both without images and with an image control"
    condition = NO_IMAGE if parsed["no_image"] else (f"{parsed['image_control']} image" if parsed["image_control"]
                                                     else IMAGE)
    shift = Shift(parsed["dataset"], parsed["data_shift"], parsed["ood_value"], parsed["mod"])
    files = frozenset(p.name for p in path.iterdir() if p.is_file())
    return Run(model, path, shift, parsed["split"], condition, parsed["corruption"], files), None


def scan(root: str | Path) -> ScanResult:
    """Every model folder and eval run under `root` (fine-tuned, zero-shot, most frequent)."""
    root = Path(root)
    result = ScanResult(root)
    if not root.is_dir():
        return result
    model_dirs: list[Model] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry == naming.report_dir(root):
            continue
        model, problem = _model_of(entry)
        if model is not None:
            model_dirs.append(model)
        elif problem is not None:
            result.unplaced.append((entry, problem))
        elif zero_shot := _zero_shot_models(entry):
            model_dirs.extend(zero_shot)
        elif (entry / naming.EVAL_DIR).is_dir():
            result.unplaced.append((entry, "has eval/ but its name is not a model folder name"))
    for model in model_dirs:
        result.models.append(model)
        eval_root = model.path / naming.EVAL_DIR
        if not eval_root.is_dir():
            continue
        for run_dir in sorted(p for p in eval_root.iterdir() if p.is_dir()):
            run, problem = _run_of(model, run_dir)
            if run is not None:
                result.runs.append(run)
            else:
                result.unplaced.append((run_dir, problem or "not a run"))
    return result
