"""Generation backends: turn a batch of prompts (and images) into answers.

A backend holds a loaded model and its processor and answers `generate(prompts, images)`. The inference stage
builds the prompts with the model's processor (`sure_vqa.models.prompting`), so every backend sees the same
text; backends differ only in how they run the model:

- `hf` (backends/hf.py): transformers `generate`, batched with left padding; runs anywhere.
- `vllm` (backends/vllm_backend.py): vLLM on GPU machines, an optional extra (`pip install vllm`).

Adding a backend is one module in backends/ that registers a `GenerationBackend` (every module there is loaded;
none imports torch or vLLM before a model loads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sure_vqa.config import check_dtype
from sure_vqa.registry import Registry

if TYPE_CHECKING:
    from PIL import Image


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


@dataclass(frozen=True)
class GenerationBackend:
    """One generation backend: `load(request)` loads the model and returns a Generator."""

    name: str
    description: str
    load: Callable[[LoadRequest], Generator]


REGISTRY: Registry[GenerationBackend] = Registry("generation backend", f"{__name__}.backends", "backend")
register = REGISTRY.register


def check_backend(name: str) -> str:
    return REGISTRY.get(name).name


def load_generator(backend: str, request: LoadRequest) -> Generator:
    """Loads the model behind the named backend."""
    return REGISTRY.get(backend).load(request)
