"""What a setup check is (sure-vqa doctor): a function that returns what it found, or raises `CheckFailed` with
what is wrong and the fix. Each stage keeps its own checks (sure_vqa.models.preflight for the base model,
sure_vqa.data.preflight for datasets and shifts, each judge backend's `preflight`); the doctor runs them and
draws the table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa import runs
from sure_vqa.config import ConfigError, is_unset
from sure_vqa.models import folders

# The .env key of each path setting, named in the fixes.
ENV_OF_PATH = {"dataset_root": "DATASET_ROOT_DIR", "experiment_root": "EXPERIMENT_ROOT_DIR",
               **runs.BASE_MODEL_ENV, "judge_model_path": "JUDGE_MODEL_PATH"}


@dataclass(frozen=True)
class Check:
    """One row of the table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # passed, but something will limit the study (the fix says what)


class CheckFailed(Exception):
    """Raised inside a check: (what was found, how to fix it)."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


class CheckWarning(CheckFailed):
    """Raised inside a check that passes with a reservation: (what was found, what it limits and how to avoid it)."""


def run(name: str, check: Callable[[], str]) -> Check:
    """A check's outcome: ✓ with its detail, ! with a reservation, or ✗ with what failed and the fix."""
    try:
        return Check(name, True, check())
    except CheckWarning as warned:
        return Check(name, True, warned.detail, warned.fix, warning=True)
    except CheckFailed as failed:
        return Check(name, False, failed.detail, failed.fix)
    except (ConfigError, OSError, ValueError) as err:
        return Check(name, False, str(err).splitlines()[0] if str(err) else type(err).__name__)


def gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e7 else f"{n_bytes / 1e6:.2f} MB"


def path_setting(cfg: Any, key: str) -> Path:
    """`paths.<key>`, which must be set (the fix names its .env key)."""
    value = (cfg.get("paths") or {}).get(key)
    if is_unset(value):
        raise CheckFailed(f"paths.{key} is not set",
                          f"set {ENV_OF_PATH[key]} in .env (cp example.env .env) or pass paths.{key}=PATH")
    return Path(str(value)).expanduser()


def weights_bytes(folder: Path) -> int:
    from sure_vqa.models.convert_llava_med import weight_files

    return sum(path.stat().st_size for path in weight_files(folder))


def read_model_config(folder: Path) -> dict[str, Any]:
    try:
        return folders.read_config(folder)
    except ConfigError as err:
        raise CheckFailed(str(err), "download the whole model folder (config.json, weights, tokenizer and "
                                    "processor files)") from None
