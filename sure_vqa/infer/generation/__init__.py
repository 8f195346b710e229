"""Generation backends: turn a batch of prompts (and images) into answers.

A backend holds a loaded model and its processor and answers `generate(prompts, images)`. The inference stage
builds the prompts with the model's processor (`sure_vqa.models.prompting`), so every backend sees the same
text; backends differ only in how they run the model:

- `hf` (sure_vqa.infer.generation.hf): transformers `generate`, batched with left padding; runs anywhere.
- `vllm` (sure_vqa.infer.generation.vllm_backend): vLLM on GPU machines, an optional extra (`pip install vllm`).

Adding a backend is one module with a `load_generator(...)` function and one entry in `BACKENDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from sure_vqa.config import ConfigError, check_dtype

# backend name -> module that provides `load_generator(request: LoadRequest) -> Generator`
BACKENDS = {
    "hf": "sure_vqa.infer.generation.hf",
    "vllm": "sure_vqa.infer.generation.vllm_backend",
}


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; greedy by default so that answers are reproducible and batch-independent."""

    max_new_tokens: int = 128
    do_sample: bool = False


@dataclass(frozen=True)
class LoadRequest:
    """What a backend needs to load: the base model, the experiment folder (None for the zero-shot model)."""

    base_model_path: str
    model_dir: str | None
    dtype: str
    device: str
    settings: GenerationSettings


class Generator(Protocol):
    """A loaded model that answers prompts; `processor` builds the prompts (chat template)."""

    processor: Any

    def generate(self, prompts: Sequence[str], images: Sequence[Image.Image] | None = None) -> list[str]:
        """One answer per prompt, stripped; `images` (one per prompt) is None for runs without images."""
        ...


def resolve_dtype(dtype: str, device: str) -> str:
    """A checked dtype, with `auto` decided by the device (sure_vqa.models.loading.auto_dtype)."""
    from sure_vqa.models.loading import auto_dtype

    name = check_dtype(dtype)
    return auto_dtype(device) if name == "auto" else name


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ConfigError(f"backend={name!r} is not valid; valid values: {', '.join(BACKENDS)}")
    return name


def load_generator(backend: str, request: LoadRequest) -> Generator:
    """Loads the model behind the named backend (imported only when used: vLLM is an optional extra)."""
    module = importlib.import_module(BACKENDS[check_backend(backend)])
    return module.load_generator(request)
