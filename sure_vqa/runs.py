"""From a composed config to the names and folders of a run, through `naming` only.

train.py, inference.py, run_eval.py and the report all locate a run from the same settings
(dataset, shift, train_split, model_type and its hyperparameters, seed, no_image flags, corruption),
so they share these functions instead of each rebuilding a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import ConfigError, require_path, resolve_model_type
from sure_vqa.models import methods


def _get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if node is None or key not in node:
            return default
        node = node[key]
    return node


def shift_of(cfg: Mapping[str, Any], split: str) -> tuple[str | None, Any]:
    """(data_shift, ood_value) when the split needs them, else (None, None)."""
    if split in ("iid", "ood"):
        return cfg["data_shift"], cfg["ood_value"]
    return None, None


def train_split_name(cfg: Mapping[str, Any], no_image: bool | None = None) -> str:
    """The split the model was (or is being) trained on; no_image defaults to train_no_image/no_image."""
    split = cfg.get("train_split", "iid")
    if no_image is None:
        no_image = bool(cfg.get("train_no_image", cfg.get("no_image", False)))
    return naming.split_name(cfg["dataset"], "train", split, *shift_of(cfg, split), no_image=no_image)


def test_split_name(cfg: Mapping[str, Any]) -> str:
    split = cfg.get("split", "iid")
    return naming.split_name(cfg["dataset"], cfg.get("mod", "test"), split, *shift_of(cfg, split))


def learning_rate(cfg: Mapping[str, Any], model_type: str) -> float:
    """`finetune.lr`, or the method's default (docs/method.md#fine-tuning-defaults) when it is null."""
    lr = _get(cfg, "finetune.lr")
    if lr is None:
        return methods.get(model_type).default_lr
    try:
        return float(lr)
    except (TypeError, ValueError):
        raise ConfigError(f"finetune.lr={lr!r} is not a number (e.g. 3e-4)") from None


def seed_of(cfg: Mapping[str, Any]) -> int:
    """The run's seed, an integer (`seed=abc` is a setting error, not a traceback)."""
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} is not valid; it must be an integer (the study uses 123, 124, 125)")
    return seed


def finetune_tag(cfg: Mapping[str, Any]) -> str:
    model_type = resolve_model_type(cfg)
    method = methods.get(model_type)
    tags = method.folder_tags(method.config_from(_get(cfg, "finetune") or {}))
    return naming.finetune_tag(model_type, learning_rate(cfg, model_type), seed_of(cfg), tags)


def experiment_root(cfg: Mapping[str, Any], must_exist: bool = False) -> Path:
    return require_path(_get(cfg, "paths.experiment_root"), "paths.experiment_root", "EXPERIMENT_ROOT_DIR",
                        must_exist=must_exist)


def dataset_root(cfg: Mapping[str, Any]) -> Path:
    return require_path(_get(cfg, "paths.dataset_root"), "paths.dataset_root", "DATASET_ROOT_DIR")


def model_dir(cfg: Mapping[str, Any], training: bool = False) -> Path:
    """The fine-tuned model's folder, or `{root}/{dataset}/pretrained` for the zero-shot model.

    At inference/eval, `train_no_image` says whether the model was trained without images; during
    training (training=True) it is `no_image`.
    """
    explicit = cfg.get("experiment_dir")
    if explicit:
        return Path(str(explicit)).expanduser()
    root = experiment_root(cfg)
    if resolve_model_type(cfg) == "pretrained":
        return naming.pretrained_dir(root, cfg["dataset"])
    no_image = bool(cfg.get("no_image", False)) if training else bool(cfg.get("train_no_image", False))
    name = naming.experiment_name(train_split_name(cfg, no_image=no_image), finetune_tag(cfg))
    return naming.experiment_dir(root, name)


def corruption_settings(cfg: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]] | None:
    """The corruption settings of a corrupted run, else None. The probabilities and strengths are checked
    whenever they are given, also with corruption=false, so a bad value never waits for someone to turn it on."""
    enabled = cfg.get("corruption", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"corruption={enabled!r} is not valid; it must be true or false")
    checked = None
    if enabled or cfg.get("corruption_probabilities") is not None or cfg.get("corruption_strength") is not None:
        from sure_vqa.images import corruptions

        checked = corruptions.check_settings(cfg.get("corruption_probabilities"), cfg.get("corruption_strength"))
    return checked if enabled else None


def eval_run_name(cfg: Mapping[str, Any]) -> str:
    image_control = cfg.get("image_control")
    if image_control is not None and image_control not in naming.IMAGE_CONTROLS:
        raise ConfigError(
            f"image_control={image_control!r} is not valid; valid values: null, {', '.join(naming.IMAGE_CONTROLS)}"
        )
    return naming.eval_run_name(
        test_split_name(cfg),
        no_image=bool(cfg.get("no_image", False)),
        corruption=corruption_settings(cfg),
        image_control=image_control,
    )


def eval_dir(cfg: Mapping[str, Any]) -> Path:
    """`eval_dir=PATH` wins; otherwise the folder that inference writes for these settings."""
    explicit = cfg.get("eval_dir")
    if explicit:
        return Path(str(explicit)).expanduser()
    return naming.eval_dir(model_dir(cfg), eval_run_name(cfg))
