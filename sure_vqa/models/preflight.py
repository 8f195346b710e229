"""The base model's setup checks (sure-vqa doctor): a transformers VLM of a supported family with its processor,
and the memory its weights need; and what each method would train on it, counted without reading weights."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sure_vqa import runs
from sure_vqa.config import ConfigError
from sure_vqa.models import folders
from sure_vqa.preflight import (
    ENV_OF_PATH,
    CheckFailed,
    gigabytes,
    path_setting,
    read_model_config,
    weights_bytes,
)

BYTES_PER_PARAM = {"float32": 4, "bfloat16": 2, "float16": 2}


def check_base_model(cfg: Mapping[str, Any]) -> str:
    """A transformers image-text-to-text folder of a supported family (docs/models.md), with a processor, a
    tokenizer and a chat template: `paths.base_model` when set, else `paths.model_path` (LLaVA-Med)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    from sure_vqa.models import families
    from sure_vqa.models.loading import load_processor

    key = runs.base_model_key(cfg)
    path = path_setting(cfg, key)
    if not path.is_dir():
        raise CheckFailed(f"paths.{key} = {path} is not a folder", f"set {ENV_OF_PATH[key]} in .env")
    config = read_model_config(path)
    model_type = config.get("model_type")
    if folders.is_original_llava(config):
        raise CheckFailed(f"{path} is in the original LLaVA layout (model_type={model_type})",
                          f"{folders.CONVERT_COMMAND.format(src=path)}, then set LLAVA_MED_MODEL_PATH=DST")
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise CheckFailed(f"{path}: model_type={model_type!r} is not an image-text-to-text model in transformers",
                          "give a VLM folder (e.g. LLaVA-Med v1.5 converted, medgemma-4b-it; docs/models.md)")
    try:
        family = families.for_model_type(str(model_type), str(path))
    except ConfigError as err:
        raise CheckFailed(str(err), f"use a model of a supported family: {', '.join(families.names())}") from None
    AutoConfig.from_pretrained(path)
    try:
        processor = load_processor(path)
    except (OSError, ValueError, TypeError, ConfigError) as err:
        raise CheckFailed(f"{path}: its processor does not load ({str(err).splitlines()[0]})",
                          "the folder needs processor_config.json/preprocessor_config.json, its tokenizer files "
                          "and its chat template") from None
    if getattr(processor, "tokenizer", None) is None or not hasattr(processor, "image_processor"):
        raise CheckFailed(f"{path}: {type(processor).__name__} is not a VLM processor (tokenizer + image processor)",
                          "give the model folder with its processor files")
    return (f"{path}: {model_type} (family {family.name}), {type(processor).__name__} with a chat template, "
            f"{gigabytes(weights_bytes(path))} of weights")


def check_memory(cfg: Mapping[str, Any]) -> str:
    """The base model's weights (in the dtype they will run in) fit in the GPU's free memory, or in RAM."""
    import torch

    path = path_setting(cfg, runs.base_model_key(cfg))
    config = read_model_config(path)
    stored = str(config.get("torch_dtype") or config.get("dtype") or (config.get("text_config") or {}).get("dtype")
                 or "float32")
    weights = weights_bytes(path)
    parameters = weights / BYTES_PER_PARAM.get(stored, 4)
    if torch.cuda.is_available():  # dtype=auto: bfloat16 on a GPU
        needed, available, where = parameters * 2, torch.cuda.mem_get_info()[0], "GPU memory free"
    else:  # float32 on the CPU
        needed, available, where = parameters * 4, available_ram(), "RAM available"
    if available is None:
        return f"the base model needs about {gigabytes(needed)}; available memory unknown"
    detail = f"the base model needs about {gigabytes(needed)}; {gigabytes(available)} {where}"
    if needed > available:
        raise CheckFailed(detail, "use a machine with more (GPU) memory")
    return detail


def trainable_parameters(model_path: Path, model_type: str, finetune_cfg: Mapping[str, Any]) -> int:
    """What a method trains on this base model, counted on a model built on the meta device (no weights read)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForImageTextToText

    from sure_vqa.models.methods import prepare_model

    with init_empty_weights():
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(model_path))
        prepared, _ = prepare_model(model, model_type, finetune_cfg, str(model_path))
    return sum(p.numel() for p in prepared.parameters() if p.requires_grad)


def available_ram() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
