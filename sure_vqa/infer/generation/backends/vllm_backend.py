"""vLLM backend (`backend=vllm`): fast generation on GPU machines; an optional extra, not needed by the tests.

    pip install vllm            # on a CUDA machine, in the same environment; see docs/inference.md

vLLM serves a plain transformers folder. A fine-tuned experiment folder holds a peft adapter and the trained
projector, which vLLM cannot apply itself, so the adapter is merged into the base weights once (LoRA can
be merged; prompt tuning and IA3 stay on backend=hf) and cached in `{model folder}/merged_for_vllm/`, with
the signature of the adapter files it was made from; a retrained adapter is merged again.

Everything else is the inference stage's: the same prompts (token ids from the same chat template, no extra BOS),
the same prepared images (corrupted, padded), the same log, resume and test_results.json.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from sure_vqa import naming
from sure_vqa.atomic_io import move_folder_into_place, staged_folder
from sure_vqa.config import ConfigError
from sure_vqa.infer.generation import GenerationBackend, GenerationSettings, LoadRequest, register
from sure_vqa.models import methods

MERGE_SOURCE_FILE = "merge_source.json"  # inside the merged folder: what it was merged from


def served_model_types() -> list[str]:
    """The zero-shot model and the methods whose folder loads as plain weights (LoRA merged, full fine-tuning
    whole); the methods' registry entries say which (`served_by_vllm`)."""
    return [methods.PRETRAINED, *(name for name in methods.names() if methods.get(name).served_by_vllm)]


def check_available(model_type: str) -> None:
    """Start-up check (before any model is loaded): vLLM installed, and a method it can serve."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("backend=vllm needs the vllm package (pip install vllm, on a GPU machine); "
                          "or use backend=hf")
    served = served_model_types()
    if model_type not in served:
        raise ConfigError(f"backend=vllm serves model_type {', '.join(served)}; model_type={model_type} "
                          "is not merged into plain weights by sure_vqa.models.loading, so use backend=hf for it")


def merged_model(base_model_path: str | Path, model_dir: str | Path, dtype: str) -> Path:
    """The experiment folder's model as one transformers folder, merged once and reused while it is current."""
    from sure_vqa.infer.generation.prediction_log import folder_signature
    from sure_vqa.models.loading import load_for_inference, save_processor

    model_dir = Path(model_dir)
    target = naming.merged_model_dir(model_dir)
    source = {"base_model_path": str(base_model_path), "model_files": folder_signature(model_dir), "dtype": dtype}
    recorded = target / MERGE_SOURCE_FILE
    if recorded.is_file() and json.loads(recorded.read_text(encoding="utf-8")) == source:
        return target
    from peft import PeftModel

    model, processor = load_for_inference(base_model_path, model_dir, dtype=dtype)
    if isinstance(model, PeftModel):  # load_for_inference merges what can be merged
        raise ConfigError(f"{model_dir} holds an adapter that cannot be merged into the base model; use backend=hf")
    with staged_folder(target) as workdir:
        model.save_pretrained(workdir)
        save_processor(processor, workdir)
        (workdir / MERGE_SOURCE_FILE).write_text(json.dumps(source, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # merged from an older adapter
        move_folder_into_place(workdir, target)
    return target


class VLLMGenerator:
    """A vLLM engine answering batches of prompts with the project's prompt and images."""

    def __init__(self, llm: Any, processor: Any, settings: GenerationSettings) -> None:
        from vllm import SamplingParams

        self.llm = llm
        self.processor = processor
        # temperature 0 is vLLM's greedy decoding.
        self.sampling = SamplingParams(max_tokens=settings.max_new_tokens,
                                       temperature=1.0 if settings.do_sample else 0.0)

    def generate(self, prompts: Sequence[str], images: Sequence[Image.Image] | None = None) -> list[str]:
        if images is not None and len(images) != len(prompts):
            raise ValueError(f"got {len(images)} images for {len(prompts)} prompts")
        tokenizer = self.processor.tokenizer
        requests: list[dict[str, Any]] = []
        for position, prompt in enumerate(prompts):
            # Token ids, not text: the chat template already wrote BOS and vLLM would add another.
            request: dict[str, Any] = {"prompt_token_ids": tokenizer(prompt, add_special_tokens=False)["input_ids"]}
            if images is not None:
                request["multi_modal_data"] = {"image": images[position]}
            requests.append(request)
        outputs = self.llm.generate(requests, self.sampling, use_tqdm=False)
        return [output.outputs[0].text.strip() for output in outputs]


def load_generator(request: LoadRequest) -> VLLMGenerator:
    from vllm import LLM

    from sure_vqa.models.loading import finetuned_kind, load_processor

    if request.model_dir is None:
        folder = Path(request.base_model_path)
    elif finetuned_kind(request.model_dir) == "full":  # already a plain transformers folder
        folder = Path(request.model_dir)
    else:
        folder = merged_model(request.base_model_path, request.model_dir, request.dtype)
    llm = LLM(model=str(folder), dtype=request.dtype, seed=0, limit_mm_per_prompt={"image": 1})
    return VLLMGenerator(llm, load_processor(folder), request.settings)


register(GenerationBackend("vllm", "vLLM on GPU machines (pip install vllm); adapters merged once", load_generator))
