"""The inference stage's settings: every setting checked and resolved into one `InferenceRun`, before a model
is loaded or the dataset read (docs/inference.md). The run itself is sure_vqa.infer.run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa import naming, runs
from sure_vqa.config import ConfigError, check_choice, check_dtype
from sure_vqa.infer import generation as generation_backends
from sure_vqa.infer.generation import GenerationSettings
from sure_vqa.settings import checked, setting

INFERENCE_MODS = ("test", "val")


@dataclass(frozen=True)
class InferenceRun:
    """The validated settings of one inference run and where it reads and writes."""

    dataset: str
    mod: str
    split: str
    data_shift: str | None
    ood_value: Any
    seed: int
    model_type: str
    no_image: bool
    image_control: str | None
    corruption: runs.CorruptionSetting | None
    pad_to_square: bool
    generation: GenerationSettings
    batch_size: int
    num_workers: int
    backend: str
    dtype: str
    dataset_root: Path
    base_model_path: Path
    model_dir: Path
    eval_dir: Path
    test_split_name: str
    run_name: str
    max_samples: int | None = None
    wait_for_lock: bool = False

    @property
    def pretrained(self) -> bool:
        return self.model_type == runs.PRETRAINED

    @property
    def results_file(self) -> Path:
        return self.eval_dir / naming.TEST_RESULTS_FILE

    @property
    def info_file(self) -> Path:
        return self.eval_dir / naming.INFERENCE_INFO_FILE


# --- settings ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferenceSettings:
    """How inference generates (docs/inference.md): the only home of these defaults; config/inference/ takes
    them from the ConfigStore (/settings/inference) and `sure-vqa infer --cfg job` shows them."""

    batch_size: int = setting(8, minimum=1)  # questions per generate call (per process); answers do not depend on it
    max_new_tokens: int = setting(128, minimum=1)
    do_sample: bool = False  # greedy by default
    backend: str = setting("hf", registry=lambda: generation_backends.REGISTRY)  # hf (batched) | vllm (GPU extra)
    dtype: str = "auto"  # auto (bfloat16 on GPU, float32 on CPU) | float32 | bfloat16 | float16
    num_workers: int = setting(0, minimum=0)  # DataLoader worker processes that load (and corrupt) images
    max_samples: int | None = setting(None, minimum=1)  # null: every question; N: N evenly spaced (demo, smoke tests)
    # null: as the model was trained (its resolved config; else the model family's way: LLaVA pads) | true | false
    pad_to_square: bool | None = None
    # Another process already running this run (a second shell, a duplicate Slurm job): false exits and names
    # it, true waits for it to finish and then continues (a run it finished is skipped).
    wait_for_lock: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", check_dtype(self.dtype))


def _trained_pad_to_square(model_dir: Path) -> bool | None:
    """How training prepared images (docs/method.md#prompting), from the experiment folder's resolved config."""
    from sure_vqa.models.loading import training_config

    config = training_config(model_dir)
    if config is None:
        return None
    for key in ("train.pad_to_square", "pad_to_square"):
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if hasattr(node, "get") else None
        if isinstance(node, bool):
            return node
    return None


def check_finished_training(model_dir: Path) -> None:
    """An experiment folder that training completed (its trainer_state.json, written last, marks that)."""
    from sure_vqa.models.experiment_folder import is_finished
    from sure_vqa.models.loading import finetuned_kind

    if not model_dir.is_dir():
        raise ConfigError(
            f"model folder {model_dir} does not exist; train it first (sure-vqa train with the same dataset, "
            "data_shift, ood_value, model_type, finetune.* and seed), or set experiment_dir=PATH"
        )
    if not is_finished(model_dir):
        raise ConfigError(f"model folder {model_dir} has no {naming.TRAINER_STATE_FILE}: its training did not "
                          "finish; rerun sure-vqa train with the same settings to resume it")
    finetuned_kind(model_dir)  # DataError when it holds neither an adapter nor weights


def resolve_run(cfg: Mapping[str, Any]) -> InferenceRun:
    """Every inference setting checked and resolved, without loading a model or reading the dataset."""
    from sure_vqa.data.splits import check_shift

    check_choice(cfg.get("mod", "test"), "mod", INFERENCE_MODS)
    options = checked(InferenceSettings, cfg, only_own=True)
    identity = runs.TestRunIdentity.from_config(cfg)  # every setting that names the run, checked once
    model_type, dataset = identity.model.model_type, identity.model.dataset
    data_shift, ood_value = identity.data_shift, identity.ood_value
    dataset_root = runs.dataset_root(cfg)
    if data_shift is not None:  # split=all / sample use no shift
        check_shift(dataset_root, dataset, data_shift, ood_value)
    no_image, corruption, image_control = identity.no_image, identity.corruption, identity.image_control
    if no_image and (corruption is not None or image_control is not None):
        what = "corruption=true" if corruption is not None else f"image_control={image_control}"
        raise ConfigError(f"no_image=true shows no image, so {what} has nothing to act on; set one of them off")
    backend = options.backend
    if backend == "vllm":
        from sure_vqa.infer.generation.backends.vllm_backend import check_available

        check_available(model_type)
    generation = GenerationSettings(max_new_tokens=options.max_new_tokens, do_sample=options.do_sample)
    base_model_path = runs.base_model_path(cfg)
    model_dir = identity.model.model_dir()
    if model_type != runs.PRETRAINED:
        check_finished_training(model_dir)
    pad_to_square = options.pad_to_square
    if pad_to_square is None:
        # As the model was trained: a folder fine-tuned here records it; otherwise the family's way (LLaVA(-Med)
        # v1.5 was trained on padded images, image_aspect_ratio=pad; the others take images as they are).
        from sure_vqa.models import families

        trained = None if model_type == runs.PRETRAINED else _trained_pad_to_square(model_dir)
        pad_to_square = trained if trained is not None else families.for_folder(base_model_path).pad_to_square
    return InferenceRun(
        dataset=dataset, mod=identity.mod, split=identity.split, data_shift=data_shift, ood_value=ood_value,
        seed=identity.model.seed, model_type=model_type, no_image=no_image,
        image_control=image_control,
        corruption=corruption, pad_to_square=pad_to_square, generation=generation,
        batch_size=options.batch_size, num_workers=options.num_workers,
        backend=backend, dtype=options.dtype, dataset_root=dataset_root, base_model_path=base_model_path,
        model_dir=model_dir, eval_dir=identity.eval_dir(), test_split_name=identity.test_split_name(),
        run_name=identity.run_name(), max_samples=options.max_samples,
        wait_for_lock=options.wait_for_lock,
    )
