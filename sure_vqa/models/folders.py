"""What a model folder is, decided in one place: a transformers folder (its `config.json` names a `model_type`),
or LLaVA-Med's original layout, which is converted once first (docs/models.md). The settings (`runs`), loading,
the families' registry and the doctor ask here, so they say the same thing about the same folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import ConfigError

# The model types of the original LLaVA code (LLaVA-Med v1.5 is `llava_mistral`): such a folder must be converted.
ORIGINAL_LLAVA_TYPES = ("llava_mistral", "llava_llama")
CONVERT_COMMAND = "sure-vqa convert-llava-med src={src} dst=DST vision_tower=CLIP_DIR"


def require_transformers_folder(path: str | Path, what: str) -> Path:
    """`path` if it holds a transformers model (config.json); else a ConfigError naming `what` and the fix."""
    path = Path(path).expanduser()
    if not (path / naming.MODEL_CONFIG_FILE).is_file():
        raise ConfigError(f"{what}={path} is not a transformers model folder (no {naming.MODEL_CONFIG_FILE}); "
                          f"convert LLaVA-Med v1.5 with {CONVERT_COMMAND.format(src='SRC')}, or point it at a "
                          "downloaded model folder (docs/models.md)")
    return path


def read_config(folder: str | Path) -> dict[str, Any]:
    """The folder's config.json, read without loading anything; missing or unreadable is a ConfigError."""
    path = Path(folder).expanduser() / naming.MODEL_CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path.parent} is not a transformers model folder (no {naming.MODEL_CONFIG_FILE})") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} cannot be read as a model config: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} cannot be read as a model config: it is not a JSON object")
    return config


def read_model_type(folder: str | Path) -> str:
    """`model_type` from the folder's config.json."""
    value = read_config(folder).get("model_type")
    if not isinstance(value, str):
        raise ConfigError(f"{Path(folder).expanduser() / naming.MODEL_CONFIG_FILE} has no model_type; it is not a "
                          "transformers model config")
    return value


def is_original_llava(config: dict[str, Any]) -> bool:
    """The original LLaVA layout (to convert), not transformers' own `llava`."""
    return config.get("model_type") in ORIGINAL_LLAVA_TYPES
