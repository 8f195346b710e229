"""Every folder and file name SURE-VQA reads or writes, computed in one place (DESIGN §4.2-4.3).

This module imports nothing from the package, so that any stage (and any external script) can compute
where another stage wrote its output without loading models or datasets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

MODS = ("train", "val", "test")
SPLITS = ("iid", "ood", "all", "sample")
CORRUPTIONS = ("blur", "brightness", "noise")  # the order in which they are applied (DESIGN §4.5)
STRENGTHS = ("low", "medium", "high")
IMAGE_CONTROLS = ("blank", "shuffled")

SPLIT_FILES_DIR = "split_files"
EVAL_DIR = "eval"
INIT_WEIGHT_DIR = "init_weight"
TEST_RESULTS_FILE = "test_results.json"
PREDICTION_LOG_FILE = "predictions.partial.jsonl"
OPEN_METRICS_FILE = "open_ended_metrics.json"
CLOSED_METRICS_FILE = "closed_ended_metrics.json"
RESOLVED_CONFIG_FILE = "resolved_config.yaml"
TRAINER_STATE_FILE = "trainer_state.json"
PRETRAINED_DIR = "pretrained"
REPORT_DIR = "report"
JUDGE_CACHE_FILE = "judge_cache.sqlite"


def _compact(value: object) -> str:
    """Spaces removed, as in the original split names (`Organ System` -> `OrganSystem`)."""
    return str(value).replace(" ", "")


def ood_value_tag(ood_value: str | int | Sequence[str | int]) -> str:
    """One value as written; several values joined by `+` in the order given."""
    if isinstance(ood_value, str | int):
        return _compact(ood_value)
    return "+".join(_compact(v) for v in ood_value)


def split_name(
    dataset: str,
    mod: str,
    split: str,
    data_shift: str | None = None,
    ood_value: str | int | Sequence[str | int] | None = None,
    no_image: bool = False,
) -> str:
    """`{dataset}_{mod}_{split}_{data_shift}_{ood_value}`; `{dataset}_{mod}_{split}` for all/sample.

    >>> split_name("SLAKE", "train", "iid", "content_type", "Size")
    'SLAKE_train_iid_content_type_Size'
    """
    if mod not in MODS:
        raise ValueError(f"mod must be one of {MODS}, got {mod!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    parts = [dataset, mod, split]
    if split in ("iid", "ood"):
        if data_shift is None or ood_value is None:
            raise ValueError(f"split={split} needs data_shift and ood_value")
        parts += [_compact(data_shift), ood_value_tag(ood_value)]
    name = "_".join(parts)
    return name + "_no_image" if no_image else name


def format_lr(lr: float) -> str:
    """Learning rates as the original folder names write them: 3e-05 -> `3e-5`, 0.03 -> `3e-2`."""
    mantissa, exponent = f"{float(lr):e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def finetune_tag(
    model_type: str,
    lr: float,
    seed: int,
    lora_rank: int | None = None,
    num_virtual_tokens: int | None = None,
) -> str:
    """`finetune_{model_type}_{hyperparameters}`: only the hyperparameters that the method has.

    >>> finetune_tag("lora", 3e-5, 123, lora_rank=128)
    'finetune_lora_rank128_lr3e-5_seed123'
    """
    parts = ["finetune", model_type]
    if model_type == "lora":
        if lora_rank is None:
            raise ValueError("a LoRA folder name needs lora_rank")
        parts.append(f"rank{lora_rank}")
    if model_type == "prompt":
        if num_virtual_tokens is None:
            raise ValueError("a prompt-tuning folder name needs num_virtual_tokens")
        parts.append(f"ntok{num_virtual_tokens}")
    parts += [f"lr{format_lr(lr)}", f"seed{seed}"]
    return "_".join(parts)


def experiment_name(train_split_name: str, finetune: str) -> str:
    """`llava-{train split name}-{finetune tag}`."""
    return f"llava-{train_split_name}-{finetune}"


def corruption_tag(probabilities: Mapping[str, float], strengths: Mapping[str, str]) -> str:
    """Encodes every corruption's strength and probability: `corruption_blur-low-p0.5_brightness-...`."""
    parts = ["corruption"]
    for name in CORRUPTIONS:
        p = float(probabilities[name])
        parts.append(f"{name}-{strengths[name]}-p{p:g}")
    return "_".join(parts)


def eval_run_name(
    test_split_name: str,
    no_image: bool = False,
    corruption: tuple[Mapping[str, float], Mapping[str, str]] | None = None,
    image_control: str | None = None,
) -> str:
    """`{test split name}[_no_image][_corruption_...][_blank_image|_shuffled_image]`."""
    name = test_split_name
    if no_image:
        name += "_no_image"
    if corruption is not None:
        name += "_" + corruption_tag(*corruption)
    if image_control is not None:
        if image_control not in IMAGE_CONTROLS:
            raise ValueError(f"image_control must be one of {IMAGE_CONTROLS}, got {image_control!r}")
        name += f"_{image_control}_image"
    return name


def judge_metrics_files(judge_name: str) -> tuple[str, str]:
    """(open, closed) judge score files: `gemma_metrics.json`, `gemma_metrics_closed.json`."""
    return f"{judge_name}_metrics.json", f"{judge_name}_metrics_closed.json"


# --- paths ---------------------------------------------------------------------------------------


def dataset_dir(dataset_root: str | Path, dataset: str) -> Path:
    return Path(dataset_root) / dataset


def split_file(dataset_root: str | Path, dataset: str, name: str) -> Path:
    """`{DATASET_ROOT_DIR}/{dataset}/split_files/{split name}.json`."""
    return dataset_dir(dataset_root, dataset) / SPLIT_FILES_DIR / f"{name}.json"


def experiment_dir(experiment_root: str | Path, name: str) -> Path:
    return Path(experiment_root) / name


def pretrained_dir(experiment_root: str | Path, dataset: str) -> Path:
    """The zero-shot model's stand-in for an experiment folder: `{root}/{dataset}/pretrained`."""
    return Path(experiment_root) / dataset / PRETRAINED_DIR


def most_frequent_dir(experiment_root: str | Path, train_split_name: str) -> Path:
    """The most-frequent-answer baseline, learned on one train split, is laid out like a model folder."""
    return Path(experiment_root) / f"most_frequent-{train_split_name}"


def eval_dir(model_dir: str | Path, run_name: str) -> Path:
    return Path(model_dir) / EVAL_DIR / run_name


def report_dir(experiment_root: str | Path) -> Path:
    return Path(experiment_root) / REPORT_DIR


def judge_cache_file(root: str | Path) -> Path:
    return Path(root) / JUDGE_CACHE_FILE
