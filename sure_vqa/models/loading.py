"""Loading a base VLM, its processor and a fine-tuned experiment folder through transformers and peft.

A base model is a transformers image-text-to-text folder of a family in sure_vqa.models.families
(docs/models.md: LLaVA, LLaVA-OneVision, Gemma 3, Qwen2.5-VL, Idefics3), loaded through the Auto classes;
LLaVA-Med v1.5 is converted to the LLaVA layout once (`sure-vqa convert-llava-med`). An
experiment folder (docs/method.md#experiment-folders) holds either a peft adapter (LoRA, IA3, prompt tuning; the
trained projector travels in it as a peft `modules_to_save` module) or, after full fine-tuning, the whole
model's weights.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from sure_vqa import naming
from sure_vqa.config import ConfigError, DataError, check_dtype
from sure_vqa.models.folders import require_transformers_folder

# transformers' own file names for a model's weights (single file or sharded index).
_FULL_WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                       "pytorch_model.bin.index.json")
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def _dtype(dtype: str | torch.dtype | None) -> torch.dtype | str | None:
    """`"bfloat16"`/`"bf16"`/torch dtypes/`"auto"`; None keeps transformers' default (the saved dtype)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = check_dtype(dtype)
    return "auto" if name == "auto" else getattr(torch, name)


def auto_dtype(device: str) -> str:
    """`dtype=auto`: bfloat16 on a GPU that supports it (LLaVA-Med's training precision), float16 on another GPU,
    float32 on the CPU."""
    if str(device).startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def has_processor(path: str | Path) -> bool:
    return any((Path(path) / name).is_file() for name in _PROCESSOR_FILES)


def load_processor(path: str | Path) -> Any:
    """The model's processor (tokenizer + image processor + chat template), from a model or experiment folder.

    Families whose processor class also wants a video processor (Qwen2.5-VL, LLaVA-OneVision) get theirs built
    without it: transformers' video processors need torchvision, which this project does not depend on
    (docs/models.md), and SURE-VQA never shows a video."""
    from transformers import AutoProcessor

    from sure_vqa.models import families

    path = Path(path).expanduser()
    if not has_processor(path):
        raise ConfigError(f"{path} holds no processor ({' or '.join(_PROCESSOR_FILES)}); "
                          "a base model folder must contain its processor and chat template")
    family = families.for_folder(path)
    processor = _load_video_free_processor(path, family) if family.video_free_processor else (
        AutoProcessor.from_pretrained(path))
    if getattr(processor, "chat_template", None) is None:
        raise ConfigError(f"the processor in {path} has no chat template; the prompt needs one (docs/method.md#prompting)")
    return processor


class _WithoutVideo:
    """A processor without its video part: transformers builds, checks and saves every sub-processor that the
    class's `__init__` names, and the video processor base class needs torchvision. Leaving the video
    processor out of the attributes lets the processor be built, saved and loaded with images only."""

    _processor_base: type

    @classmethod
    def get_attributes(cls) -> list[str]:
        # from the transformers class's own __init__ signature (this class's takes *args, **kwargs)
        return [name for name in cls._processor_base.get_attributes() if "video" not in name]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["video_processor"] = None  # some classes require the argument (Gemma 4); None builds nothing
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.video_processor = None


@cache
def video_free_processor_class(class_name: str) -> type:
    """`Qwen2_5_VLProcessor` etc. without the video part (one class per name, so instances compare alike)."""
    import transformers

    base = getattr(transformers, class_name)

    class _NoVideoArgument(transformers.ProcessorMixin):
        """Sits between the class and ProcessorMixin, which refuses a `video_processor` keyword once the video
        part is not an attribute (Gemma 4's processor passes it on by keyword)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("video_processor", None)
            super().__init__(*args, **kwargs)

    return type(f"{class_name}WithoutVideo", (_WithoutVideo, base, _NoVideoArgument),
                {"__module__": __name__, "_processor_base": base})


def _chat_template(path: Path) -> str | None:
    """The chat template as transformers saves it beside a processor (newest layout first)."""
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    for name in ("chat_template.json", "processor_config.json"):
        if (path / name).is_file():
            template = json.loads((path / name).read_text(encoding="utf-8")).get("chat_template")
            if template:
                return template
    return None


def _load_video_free_processor(path: Path, family: Any) -> Any:
    from transformers import AutoImageProcessor, AutoTokenizer

    settings: dict[str, Any] = {}
    if (path / "processor_config.json").is_file():
        saved = json.loads((path / "processor_config.json").read_text(encoding="utf-8"))
        # the processor's own settings; sub-processors are saved nested (transformers 5) or in their own files
        settings = {k: v for k, v in saved.items()
                    if k not in ("processor_class", "chat_template") and not isinstance(v, dict | list)}
    tokenizer = AutoTokenizer.from_pretrained(path)
    template = _chat_template(path) or getattr(tokenizer, "chat_template", None)
    processor_class = video_free_processor_class(family.processor_class)
    parts: dict[str, Any] = {"image_processor": AutoImageProcessor.from_pretrained(path), "tokenizer": tokenizer}
    if "feature_extractor" in processor_class.get_attributes():  # Gemma 4's audio part: numpy only, never used
        from transformers import AutoFeatureExtractor

        parts["feature_extractor"] = AutoFeatureExtractor.from_pretrained(path)
    return processor_class(**parts, chat_template=template, **settings)


def save_processor(processor: Any, folder: str | Path) -> None:
    """Saves a processor where `load_processor` (and transformers itself) finds it again. A video-free
    processor is saved under its transformers class name, with the settings of that class's `__init__`
    (LLaVA-OneVision's `num_image_tokens`, ...) that transformers reads from the signature this class hides."""
    import inspect

    from sure_vqa.atomic_io import write_text_atomic

    processor.save_pretrained(str(folder))
    base = getattr(type(processor), "_processor_base", None)
    if base is None:
        return
    path = Path(folder) / "processor_config.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    saved["processor_class"] = base.__name__
    skip = {"self", "args", "kwargs", "chat_template", *base.get_attributes()}
    for name in inspect.signature(base.__init__).parameters:
        value = getattr(processor, name, None)
        if name not in skip and isinstance(value, str | int | float | bool):
            saved[name] = value
    write_text_atomic(path, json.dumps(saved, indent=2, sort_keys=True) + "\n")


def load_base_model(path: str | Path, dtype: str | torch.dtype | None = None) -> Any:
    """The pretrained VLM in a transformers folder, in train mode (callers choose eval mode)."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    from sure_vqa.models import families

    path = require_transformers_folder(path, "base model")
    config = AutoConfig.from_pretrained(path)
    loader: Any = AutoModelForImageTextToText
    try:
        family = families.for_model_type(config.model_type, str(path))
    except ConfigError:  # not a family's model: transformers says below whether it loads at all
        family = None
    unused = family.unused_config_parts if family else {}
    if family and any(getattr(config, part, None) is not None for part in unused):
        # never built, so their weights stay in the folder unread (Gemma 4's audio tower, docs/models.md)
        for part in unused:
            setattr(config, part, None)
        loader = _ignoring_weights(family.model_class, tuple(unused.values()))
    kwargs: dict[str, Any] = {}
    if _dtype(dtype) is not None:
        kwargs["dtype"] = _dtype(dtype)
    try:
        return loader.from_pretrained(path, config=config, **kwargs)
    except ValueError as err:  # transformers says "Unrecognized configuration class ..." for non-VLMs
        raise ConfigError(f"{path} (model_type={config.model_type}) does not load as an image-text-to-text "
                          f"model: {err}") from None


@cache
def _ignoring_weights(class_name: str, patterns: tuple[str, ...]) -> type:
    """The transformers model class, told that weights matching `patterns` are in the folder but not in the model
    (so that loading does not report them as unexpected); saved under the class's own name."""
    import transformers

    base = getattr(transformers, class_name)
    ignored = [*(base._keys_to_ignore_on_load_unexpected or []), *patterns]
    return type(class_name, (base,), {"__module__": base.__module__, "_keys_to_ignore_on_load_unexpected": ignored})


def finetuned_kind(model_dir: str | Path) -> str:
    """`"adapter"` (peft: lora, ia3, prompt) or `"full"` (all weights), from the files in the folder."""
    model_dir = Path(model_dir)
    if (model_dir / naming.ADAPTER_CONFIG_FILE).is_file():
        return "adapter"
    if any((model_dir / name).is_file() for name in _FULL_WEIGHTS_FILES):
        return "full"
    raise DataError(f"{model_dir} holds neither a peft adapter ({naming.ADAPTER_CONFIG_FILE}) nor model weights "
                    f"({', '.join(_FULL_WEIGHTS_FILES)}); is training finished? (sure-vqa train ...)")


def load_finetuned(base_model_path: str | Path, model_dir: str | Path, dtype: str | torch.dtype | None = None,
                   merge: bool = True, is_trainable: bool = False) -> Any:
    """A fine-tuned model from its experiment folder: the base model with the adapter (and the trained projector)
    applied, or the fully fine-tuned weights. LoRA is merged into the base weights when `merge` (faster
    generation, the same outputs). IA3 and prompt tuning stay peft models: prompt tuning cannot be merged, and
    peft 0.21's IA3 unload fails on the projector kept as a `modules_to_save` module (IA3's scaling costs
    next to nothing at inference anyway)."""
    from peft import PeftConfig, PeftModel, PeftType

    model_dir = Path(model_dir).expanduser()
    if finetuned_kind(model_dir) == "full":
        return load_base_model(model_dir, dtype=dtype)
    base = load_base_model(base_model_path, dtype=dtype)
    peft_config = PeftConfig.from_pretrained(str(model_dir))
    model = PeftModel.from_pretrained(base, str(model_dir), is_trainable=is_trainable)
    if merge and peft_config.peft_type == PeftType.LORA and not is_trainable:
        model = model.merge_and_unload()
    return model


def load_for_inference(base_model_path: str | Path, model_dir: Path | None = None,
                       dtype: str | torch.dtype | None = None) -> tuple[Any, Any]:
    """(model in eval mode, processor): the pretrained model when `model_dir` is None, else the experiment
    folder's fine-tuned model. The processor comes from the experiment folder when it has one (training saves
    it there), otherwise from the base model."""
    if model_dir is None:
        model = load_base_model(base_model_path, dtype=dtype)
        processor = load_processor(base_model_path)
    else:
        model = load_finetuned(base_model_path, model_dir, dtype=dtype)
        processor = load_processor(model_dir if has_processor(model_dir) else base_model_path)
    model.eval()
    return model, processor


def training_config(model_dir: str | Path) -> DictConfig | None:
    """The resolved training config of an experiment folder (None if it has none), e.g. to read
    `train.pad_to_square` so that inference pads images as training did (docs/method.md#prompting)."""
    path = Path(model_dir) / naming.RESOLVED_CONFIG_FILE
    if not path.is_file():
        return None
    config = OmegaConf.load(path)
    if not isinstance(config, DictConfig):
        raise DataError(f"{path} is not a YAML mapping")
    return config
