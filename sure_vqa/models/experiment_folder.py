"""The files of a fine-tuned model's experiment folder (docs/method.md#experiment-folders) and its life cycle.

A folder is finished exactly when its top-level `trainer_state.json` exists: every other final file is moved
into place before it, each with an atomic `os.replace`, so a run killed at any moment never leaves a folder
that looks finished. While training, the Trainer's `checkpoint-N/` folders live inside it; a checkpoint counts
only once its own `trainer_state.json` is written (the Trainer writes that file last).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sure_vqa import naming
from sure_vqa.atomic_io import write_text_atomic
from sure_vqa.config import ConfigError

STAGING_DIR = ".final.tmp"  # where the final files are written before they are moved into place

# Settings that may differ when a killed run is resumed (where files live, how fast data loads, logging).
RESUME_IGNORED_SETTINGS = (
    "paths.dataset_root", "paths.experiment_root", "paths.judge_model_path", "experiment_dir",
    "train.dataloader_num_workers", "train.logging_steps", "train.save_steps", "train.save_total_limit",
    "train.keep_checkpoints", "train.report_to", "runtime", "wait_for_lock",
)

_CHECKPOINT = re.compile(rf"^{re.escape(naming.CHECKPOINT_PREFIX)}(\d+)$")


def is_finished(model_dir: str | Path) -> bool:
    return (Path(model_dir) / naming.TRAINER_STATE_FILE).is_file()


def complete_checkpoints(model_dir: str | Path) -> list[Path]:
    """`checkpoint-N/` folders whose trainer state was written, oldest step first."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in model_dir.iterdir()
             if p.is_dir() and (m := _CHECKPOINT.match(p.name)) and (p / naming.TRAINER_STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def last_checkpoint(model_dir: str | Path) -> Path | None:
    checkpoints = complete_checkpoints(model_dir)
    return checkpoints[-1] if checkpoints else None


def staging_dir(model_dir: Path) -> Path:
    """A fresh, empty folder inside the experiment folder for the final files (a stale one is removed)."""
    staging = model_dir / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def install_files(staging: Path, model_dir: Path) -> None:
    """Moves every staged file into the experiment folder; `trainer_state.json` goes last (the finish mark)."""
    staged = sorted(p for p in staging.rglob("*") if p.is_file())
    last = [p for p in staged if p.relative_to(staging).as_posix() == naming.TRAINER_STATE_FILE]
    if not last:
        raise RuntimeError(f"{staging} has no {naming.TRAINER_STATE_FILE}; refusing to mark the run finished")
    for path in [p for p in staged if p not in last] + last:
        target = model_dir / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(staging)


def install_dir(source: Path, target: Path) -> None:
    """Moves a fully written folder (e.g. init_weight/) into place in one rename, unless it is already there."""
    if target.exists():
        shutil.rmtree(source)
        return
    os.replace(source, target)


def saved_weights(folder: Path) -> dict[str, Any]:
    """Every tensor of the safetensors weight files in a folder written by `save_pretrained` (one file or shards)."""
    from safetensors.torch import load_file

    tensors: dict[str, Any] = {}
    for path in sorted(folder.glob("*.safetensors")):
        if path.name != naming.PROJECTOR_WEIGHTS_FILE:
            tensors.update(load_file(path))
    return tensors


def projector_tensors(weights: Mapping[str, Any], projector_leaf: str | Sequence[str]) -> dict[str, Any]:
    """The projector's tensors, keyed from the projector's name on (`multi_modal_projector.linear_1.weight`,
    as transformers' LLaVA checkpoints name them), whatever prefix peft or transformers saved them under;
    several names (a family's side projectors, sure_vqa.models.parts) give the tensors of each."""
    leaves = [projector_leaf] if isinstance(projector_leaf, str) else list(projector_leaf)
    pattern = re.compile(rf"(?:^|\.)((?:{'|'.join(re.escape(leaf) for leaf in leaves)})\..+)$")
    out = {}
    for key, tensor in weights.items():
        match = pattern.search(key)
        if match:
            out[match.group(1)] = tensor
    return out


def write_projector_file(staging: Path, projector_leaf: str | Sequence[str]) -> Path:
    """The trained projector alone, taken from the weights just saved (so it is right under DeepSpeed too)."""
    from safetensors.torch import save_file

    tensors = projector_tensors(saved_weights(staging), projector_leaf)
    if not tensors:
        raise RuntimeError(f"no {projector_leaf} weights in the saved model in {staging}")
    path = staging / naming.PROJECTOR_WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
    return path


def remove_checkpoints(model_dir: Path) -> None:
    for checkpoint in model_dir.glob(f"{naming.CHECKPOINT_PREFIX}*"):
        if checkpoint.is_dir() and _CHECKPOINT.match(checkpoint.name):
            shutil.rmtree(checkpoint)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def settings_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """`key: old -> new` for every setting that differs, except those a resumed run may change. A setting that
    the folder's config lacks (written before its default was written out, e.g. IA3's target modules) is the
    same when it now has its default."""
    from sure_vqa.settings import default_values

    a, b = _flatten(old), _flatten(new)
    ignored = tuple(RESUME_IGNORED_SETTINGS)
    implicit = default_values()
    keys = sorted(k for k in set(a) | set(b) if not any(k == i or k.startswith(i + ".") for i in ignored))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys
            if a.get(k) != b.get(k) and not (k not in a and k in implicit and b.get(k) == implicit[k])]


def differences_from_folder(model_dir: Path, resolved: Mapping[str, Any], ignored: tuple[str, ...] = ()) -> list[str]:
    """The settings in which `resolved` differs from the folder's resolved config (none if it has none)."""
    path = model_dir / naming.RESOLVED_CONFIG_FILE
    if not path.is_file():
        return []  # nothing to compare (a fresh folder, or one written by the original code)
    differences = settings_differences(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, resolved)
    return [d for d in differences if not any(d.startswith(prefix) for prefix in ignored)]


def check_resumable(model_dir: Path, resolved: Mapping[str, Any]) -> None:
    """An unfinished folder written with other settings is not continued (that would mix two runs)."""
    differences = differences_from_folder(model_dir, resolved)
    if differences:
        raise ConfigError(
            f"{model_dir} holds an unfinished run with other settings ({'; '.join(differences[:5])}); "
            "rerun with the same settings to resume it, or delete the folder to start again"
        )


def check_finished_settings(model_dir: Path, resolved: Mapping[str, Any]) -> None:
    """A finished folder trained with other settings than these (its name does not encode them all, e.g.
    train.max_steps) is not taken as this run: say what differs and how to proceed. Where the files are
    (`paths.*`, e.g. a base model copied to a job's local disk) does not count: the finished folder is used."""
    differences = differences_from_folder(model_dir, resolved, ignored=("paths.",))
    if differences:
        raise ConfigError(
            f"{model_dir} is already trained, with other settings ({'; '.join(differences[:5])}); to train with "
            "these, move or delete that folder or set experiment_dir=PATH; to use it as it is, run with its "
            f"settings ({naming.RESOLVED_CONFIG_FILE} in the folder lists them)"
        )


def write_resolved_config(model_dir: Path, resolved: Mapping[str, Any]) -> Path:
    return write_text_atomic(model_dir / naming.RESOLVED_CONFIG_FILE,
                             yaml.safe_dump(dict(resolved), sort_keys=False, allow_unicode=True))


def readme_text(model_dir: Path, resolved: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """The folder's README: what was trained, on what, how, and the command that finds it again."""
    finetune = resolved.get("finetune", {})
    train = resolved.get("train", {})
    lines = [
        f"# {model_dir.name}",
        "",
        "A model fine-tuned by SURE-VQA (`sure-vqa train`).",
        "",
        "| setting | value |",
        "|---|---|",
        f"| method (model_type) | {resolved.get('model_type')} |",
        f"| base model | {resolved.get('paths', {}).get('model_path')} |",
        f"| dataset | {resolved.get('dataset')} |",
        f"| training split | {summary.get('train_split_name')} ({summary.get('num_records')} questions) |",
        f"| images | {'none (no-image training)' if resolved.get('no_image') else 'yes'} |",
        f"| learning rate / projector learning rate | {finetune.get('lr')} / {finetune.get('mm_projector_lr')} |",
        f"| epochs / global batch / steps | {train.get('epochs')} / {train.get('batch_size')} / "
        f"{summary.get('global_step')} |",
        f"| final training loss | {summary.get('train_loss')} |",
        f"| seed | {resolved.get('seed')} |",
        "",
        f"The full settings are in `{naming.RESOLVED_CONFIG_FILE}`, the training log in `{naming.TRAINER_STATE_FILE}`.",
        "",
        "Run it on a test split with the same settings, e.g.:",
        "",
        "```bash",
        f"sure-vqa infer {summary.get('inference_overrides', '')}".rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
