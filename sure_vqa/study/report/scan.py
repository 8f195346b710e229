"""Finding every eval run under an experiment root, and what each one is, from folder names alone.

The layout is the one `sure_vqa.naming` builds (docs/method.md#experiment-folders): fine-tuned models
`{base model}-{train split}-finetune_...` (`llava-` for LLaVA-Med), the zero-shot model
`{dataset}/pretrained[-{base model}]`, the most-frequent baseline `most_frequent-{train split}`, each with
`eval/{run}/`. A folder that looks like a run but cannot be placed is kept in `ScanResult.unplaced` with the
reason, so the report can say what it did not use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sure_vqa import naming
from sure_vqa.runs import (
    FINETUNED,
    IMAGE,
    MOST_FREQUENT,
    NO_IMAGE,
    PRETRAINED,
    CorruptionSetting,
    InferenceSpec,
    ModelIdentity,
    parse_run_name,
)

__all__ = ["FINETUNED", "IMAGE", "MOST_FREQUENT", "NO_IMAGE", "PRETRAINED", "Model", "Run", "ScanResult", "Shift",
           "pretrained_method", "scan"]


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
    """One model folder and its identity, read back from the folder's name (sure_vqa.runs.ModelIdentity)."""

    path: Path
    identity: ModelIdentity

    @property
    def kind(self) -> str:  # finetuned | pretrained | most_frequent
        return self.identity.kind

    @property
    def dataset(self) -> str:
        return self.identity.dataset

    @property
    def seed(self) -> int | None:
        """The training seed; None for the seed-independent baselines."""
        return self.identity.seed if self.kind == FINETUNED else None

    @property
    def train_images(self) -> bool:
        return not self.identity.trained_without_images

    @property
    def method(self) -> str:
        """What stays the same across a method's seeds: `lora_rank16_lr3e-4`, `pretrained`, `most_frequent`."""
        identity = self.identity
        if self.kind == PRETRAINED:
            return pretrained_method(identity.base_model)
        if self.kind == MOST_FREQUENT:
            return MOST_FREQUENT
        method = identity.finetune_tag().removeprefix("finetune_").rsplit("_seed", 1)[0]
        if identity.base_model != naming.DEFAULT_BASE_MODEL:  # one base model's rows stay together
            method = f"[{identity.base_model}] {method}"
        if identity.train_split != "iid":
            method += f" [train {identity.train_split}]"
        return method

    def trained_on(self, shift: Shift) -> bool:
        """Whether the model was trained on this shift's iid (or ood) split, or on a split without a shift."""
        identity = self.identity
        return identity.data_shift is None or (identity.data_shift, identity.ood_value) == (
            shift.data_shift, shift.ood_value)


@dataclass(frozen=True)
class Run:
    """One eval folder of one model on one split of one shift."""

    model: Model
    path: Path
    shift: Shift
    spec: InferenceSpec
    files: frozenset[str]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def split(self) -> str:  # iid | ood
        return self.spec.split

    @property
    def condition(self) -> str:  # image | no image | blank image | shuffled image
        return self.spec.condition

    @property
    def corruption(self) -> CorruptionSetting | None:
        return self.spec.corruption


@dataclass
class ScanResult:
    root: Path
    models: list[Model] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    unplaced: list[tuple[Path, str]] = field(default_factory=list)


def pretrained_method(base_model: str) -> str:
    """The zero-shot model's method name: `pretrained` for LLaVA-Med, `[base model] pretrained` otherwise."""
    return PRETRAINED if base_model == naming.DEFAULT_BASE_MODEL else f"[{base_model}] {PRETRAINED}"


def _zero_shot_models(dataset_dir: Path, fields: Sequence[str]) -> list[Model]:
    """The zero-shot folders (`pretrained`, `pretrained-{base model}`) under a dataset's folder."""
    return [Model(folder, ModelIdentity.from_folder(folder, fields)) for folder in sorted(dataset_dir.iterdir())
            if folder.is_dir() and naming.parse_pretrained_dir_name(folder.name) is not None]


def _model_of(path: Path, fields: Sequence[str]) -> tuple[Model | None, str | None]:
    if "-finetune_" not in path.name and not path.name.startswith(naming.MOST_FREQUENT_PREFIX):
        return None, None
    try:
        return Model(path, ModelIdentity.from_folder(path, fields)), None
    except ValueError as err:
        return None, str(err)


def _run_of(model: Model, path: Path, fields: Sequence[str]) -> tuple[Run | None, str | None]:
    try:
        split, spec = parse_run_name(path.name, fields)
    except ValueError as err:
        return None, str(err)
    if spec.split not in ("iid", "ood"):
        return None, f"split {spec.split} is not part of an iid/ood comparison"
    if split["dataset"] != model.dataset:
        return None, f"tests dataset {split['dataset']} but the model is of {model.dataset}"
    shift = Shift(split["dataset"], split["data_shift"], split["ood_value"], split["mod"])
    if not model.trained_on(shift):
        identity = model.identity
        return None, (f"tests shift {shift.data_shift}={shift.ood_value} but the model was trained on "
                      f"{identity.data_shift}={identity.ood_value}")
    files = frozenset(p.name for p in path.iterdir() if p.is_file())
    return Run(model, path, shift, spec, files), None


def scan(root: str | Path, dataset_root: str | Path | None = None) -> ScanResult:
    """Every model folder and eval run under `root` (fine-tuned, zero-shot, most frequent). Names are read with
    the registered datasets' shift fields, and with `dataset_root` those of its dataset.yaml files too."""
    from sure_vqa.data.registry import known_shift_fields

    fields = known_shift_fields(dataset_root)
    root = Path(root)
    result = ScanResult(root)
    if not root.is_dir():
        return result
    model_dirs: list[Model] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry == naming.report_dir(root):
            continue
        model, problem = _model_of(entry, fields)
        if model is not None:
            model_dirs.append(model)
        elif problem is not None:
            result.unplaced.append((entry, problem))
        elif zero_shot := _zero_shot_models(entry, fields):
            model_dirs.extend(zero_shot)
        elif (entry / naming.EVAL_DIR).is_dir():
            result.unplaced.append((entry, "has eval/ but its name is not a model folder name"))
    for model in model_dirs:
        result.models.append(model)
        eval_root = model.path / naming.EVAL_DIR
        if not eval_root.is_dir():
            continue
        for run_dir in sorted(p for p in eval_root.iterdir() if p.is_dir()):
            run, problem = _run_of(model, run_dir, fields)
            if run is not None:
                result.runs.append(run)
            else:
                result.unplaced.append((run_dir, problem or "not a run"))
    return result
