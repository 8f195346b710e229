"""Shared fixtures. Everything runs offline (HF_HUB_OFFLINE=1) on the CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tests give every model path themselves; a developer's BASE_MODEL_PATH would win over them (docs/models.md).
os.environ.pop("BASE_MODEL_PATH", None)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# `sure-vqa` as the installed script runs it (sure_vqa.cli), through this interpreter.
SURE_VQA = [sys.executable, "-m", "sure_vqa.cli"]


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LLaVA with its processor, saved once per session."""
    from sure_vqa.models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("models") / "tiny-llava")


@pytest.fixture(scope="session")
def published_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Skeletons of the published downloads (tests/helpers/skeletons.py) and LLaVA-Med converted from them (float32):
    {"llava_med": SRC, "clip": CLIP_DIR, "judge": gemma-2-9b-it, "converted": DST}."""
    from sure_vqa.models.convert_llava_med import convert
    from tests.helpers import skeletons

    root = tmp_path_factory.mktemp("published")
    folders = {
        "llava_med": skeletons.write_llava_med_skeleton(root / "llava-med-v1.5-mistral-7b"),
        "clip": skeletons.write_clip_skeleton(root / "clip-vit-large-patch14-336"),
        "judge": skeletons.write_gemma_judge_skeleton(root / "gemma-2-9b-it"),
    }
    folders["converted"] = convert(folders["llava_med"], root / "llava-med-v1.5-hf", folders["clip"], dtype="float32")
    return folders


@pytest.fixture(scope="session")
def tiny_family_dir(tmp_path_factory: pytest.TempPathFactory):
    """`tiny_family_dir(family)`: the tiny model of a model family (sure_vqa.models.tiny), built once per session."""
    from sure_vqa.models.tiny import build_tiny

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny(family, tmp_path_factory.mktemp("families") / f"tiny-{family}")
        return built[family]

    return get
