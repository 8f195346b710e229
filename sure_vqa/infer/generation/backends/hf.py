"""Batched generation with transformers (the default backend; runs on CPU and GPU).

Prompts of different lengths are padded on the left, so that every row of the batch ends where its answer
starts; transformers derives position ids from the attention mask (cumsum - 1) when none are given, so a padded
prompt sees the same positions as it does alone and greedy answers do not depend on the batch
(tests/infer/test_generation.py checks this).

Prompt tuning is the exception: peft puts its virtual tokens in front of the padding and drops the position ids
("not supported for parameter efficient tuning"), so a padded prompt would sit further from its virtual tokens
than it does alone. For such models a batch is split into groups of prompts of equal token length (image tokens
included: in the dynamic-resolution families an image's token count follows its size), which need no padding
at all; the inference stage orders questions by prompt length so that these groups stay large.

peft 0.21 also looks for the generation cache under its old name (`past_key_values`; transformers 5 calls it
`cache`), finds none, and injects the virtual tokens again at every decoding step: each new token then saw the
virtual tokens once more (wrong answers) and the cache grew by num_virtual_tokens + 1 per step (slow).
`_mirror_generation_cache` hands peft the cache under the name it reads, so the virtual tokens are injected once,
at the prompt (tests/infer/test_generation.py compares with decoding by hand).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sure_vqa.infer.generation import GenerationBackend, GenerationSettings, LoadRequest, register

if TYPE_CHECKING:  # torch loads when a model does, not when the backends are listed
    import torch
    from PIL import Image


class HFGenerator:
    """A transformers VLM (plain or peft-wrapped) and its processor, answering batches of prompts."""

    def __init__(self, model: Any, processor: Any, settings: GenerationSettings | None = None,
                 device: str | torch.device | None = None) -> None:
        import torch

        self.model = model.eval()
        self.processor = processor
        self.settings = settings = settings or GenerationSettings()
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        from sure_vqa.models import families

        self.family = families.for_model(model)
        # peft prompt learning (prompt tuning) cannot take left-padded batches; see the module docstring.
        peft_config = getattr(model, "active_peft_config", None)
        self.pads_safely = not bool(getattr(peft_config, "is_prompt_learning", False))
        if not self.pads_safely:
            _mirror_generation_cache(model)
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            # Llama/Mistral tokenizers (LLaVA-Med) have no pad token; padded positions are masked anyway.
            tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        self.generation_kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": settings.do_sample,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if not settings.do_sample:
            # The model's own generation_config may carry sampling values (temperature, top_p); greedy
            # decoding ignores them, and unsetting them keeps transformers from warning on every batch.
            self.generation_kwargs.update(temperature=None, top_p=None, top_k=None)

    def encode(self, prompts: Sequence[str], images: Sequence[Image.Image] | None = None) -> dict[str, Any]:
        """The model inputs of one batch. The chat template already wrote the special tokens (BOS), so the
        tokenizer adds none, as transformers' own `apply_chat_template(tokenize=True)` does."""
        inputs = self.processor(
            text=list(prompts),
            images=self.family.processor_images(list(images)) if images is not None else None,
            padding=True,
            add_special_tokens=False,
            return_tensors="pt",
        )
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def prompt_lengths(self, prompts: Sequence[str], images: Sequence[Image.Image] | None = None) -> list[int]:
        """Token lengths of the prompts as the model sees them, image tokens included (families with dynamic
        resolution give images of other sizes other numbers of tokens)."""
        if images is None:
            return [len(ids) for ids in self.processor.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
        return [len(self.processor(text=[prompt], images=self.family.processor_images([image]),
                                   add_special_tokens=False)["input_ids"][0])
                for prompt, image in zip(prompts, images, strict=True)]

    def generate(self, prompts: Sequence[str], images: Sequence[Image.Image] | None = None) -> list[str]:
        """Answers one batch (images: one per prompt, or None for runs without images)."""
        if images is not None and len(images) != len(prompts):
            raise ValueError(f"got {len(images)} images for {len(prompts)} prompts")
        if not self.pads_safely and len(prompts) > 1:
            groups: dict[int, list[int]] = {}
            for position, length in enumerate(self.prompt_lengths(prompts, images)):
                groups.setdefault(length, []).append(position)
            answers: list[str] = [""] * len(prompts)
            for members in groups.values():
                group_images = [images[i] for i in members] if images is not None else None
                for i, answer in zip(members, self._generate([prompts[i] for i in members], group_images),
                                     strict=True):
                    answers[i] = answer
            return answers
        return self._generate(prompts, images)

    def _generate(self, prompts: Sequence[str], images: Sequence[Image.Image] | None) -> list[str]:
        import torch

        inputs = self.encode(prompts, images)
        with warnings.catch_warnings(), torch.inference_mode():
            # peft's note that prompt tuning ignores position ids: handled by the equal-length groups above.
            warnings.filterwarnings("ignore", message="Position ids are not supported", category=UserWarning)
            # the old cache name _mirror_generation_cache hands peft, which the model still accepts
            warnings.filterwarnings("ignore", message=".*past_key_values.*deprecated", category=FutureWarning)
            output = self.model.generate(**inputs, **self.generation_kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]


def _mirror_generation_cache(peft_model: Any) -> None:
    """Makes peft's prompt-learning `prepare_inputs_for_generation` see transformers' `cache` as the
    `past_key_values` it checks (the module docstring says why). Idempotent; a no-op once peft reads `cache`."""
    prepare = peft_model.base_model_prepare_inputs_for_generation
    if getattr(prepare, "_sure_vqa_mirrors_cache", False):
        return

    def prepare_with_cache_name(*args: Any, **kwargs: Any) -> dict[str, Any]:
        model_inputs = prepare(*args, **kwargs)
        if model_inputs.get("cache") is not None and model_inputs.get("past_key_values") is None:
            model_inputs["past_key_values"] = model_inputs.pop("cache")
        return model_inputs

    prepare_with_cache_name._sure_vqa_mirrors_cache = True  # type: ignore[attr-defined]
    peft_model.base_model_prepare_inputs_for_generation = prepare_with_cache_name


# The last generator loaded, kept for the next run of the same model: a study's cell runs a dozen inference runs
# (splits, controls, corruptions) on one fine-tuned model, and loading it again each time cost a fifth of the
# demo's time. One slot: the model is released before another one loads, so at most one stays in memory.
_LOADED: dict[tuple[Any, ...], HFGenerator] = {}


def _folder_state(path: str | None) -> tuple[tuple[str, int, int], ...]:
    """The files of a model folder (name, size, modification time): a folder written again is loaded again."""
    if not path or not Path(path).is_dir():
        return ()
    return tuple(sorted((f.name, st.st_size, st.st_mtime_ns) for f in Path(path).iterdir() if f.is_file()
                        for st in [f.stat()]))


def load_generator(request: LoadRequest) -> HFGenerator:
    """The base model with the experiment folder's adapter (or alone), on `request.device`; the one loaded last
    when the request and both folders' files are unchanged."""
    from sure_vqa.models.loading import load_for_inference

    key = (request, _folder_state(request.base_model_path), _folder_state(request.model_dir))
    if key in _LOADED:
        return _LOADED[key]
    _LOADED.clear()
    model_dir = Path(request.model_dir) if request.model_dir else None
    model, processor = load_for_inference(request.base_model_path, model_dir, dtype=request.dtype)
    model.to(request.device)
    _LOADED[key] = HFGenerator(model, processor, request.settings, device=request.device)
    return _LOADED[key]


register(GenerationBackend("hf", "transformers generate, batched with left padding; CPU and GPU", load_generator))
