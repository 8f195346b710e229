"""`sure-vqa prepare ovqa|mimic|demo-data` (config/commands/prepare.yaml): a dataset's preparation step, run once
before its split files are built (docs/data.md). data/prepare_ovqa.py, data/prepare_mimic.py and
data/build_demo.py call the same commands."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import is_unset, require_path


def _folder(cfg: Mapping[str, Any], dataset: str, must_exist: bool = True) -> Path:
    """`root`, or `{paths.dataset_root}/{dataset}`."""
    if not is_unset(cfg.get("root")):
        return require_path(cfg["root"], "root", must_exist=must_exist)
    dataset_root = require_path((cfg.get("paths") or {}).get("dataset_root"), "paths.dataset_root (or root=DIR)",
                                "DATASET_ROOT_DIR")
    return require_path(naming.dataset_dir(dataset_root, dataset), "root", must_exist=must_exist)


def _optional_path(cfg: Mapping[str, Any], key: str) -> Path | None:
    return None if is_unset(cfg.get(key)) else require_path(cfg[key], key)


def ovqa_command(cfg: Mapping[str, Any]) -> None:
    from sure_vqa.data.readers import ovqa

    root = _folder(cfg, "OVQA")
    for filename, counts in ovqa.clean(root).items():
        print(f"{root / filename}: {counts['entries']} questions, kept {counts['kept']}, dropped {counts['dropped']}")


def mimic_command(cfg: Mapping[str, Any]) -> None:
    from sure_vqa.data.mimic_prepare import prepare

    root = _folder(cfg, "MIMIC")
    written = prepare(root, _optional_path(cfg, "questions"), _optional_path(cfg, "hosp"),
                      _optional_path(cfg, "images"))
    for filename, n in written.items():
        print(f"{root / filename}: {n} questions")


def demo_data_command(cfg: Mapping[str, Any]) -> None:
    from sure_vqa.demo.dataset import build_demo, summary

    start = time.perf_counter()
    out_dir = build_demo(_folder(cfg, naming.DEMO_DATASET, must_exist=False))
    print(summary(out_dir))
    print(f"demo dataset ready in {out_dir} ({time.perf_counter() - start:.1f} s)")
