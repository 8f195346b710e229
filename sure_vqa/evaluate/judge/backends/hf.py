"""The `hf` judge backend: a local transformers causal LM (gemma-2-9b-it by default, SmolLM2 offline).

Batched generation with left padding (so every prompt ends where its answer starts), greedy decoding, the
model's own chat template, bf16 on GPUs and float32 on CPUs. torch and transformers are imported when a backend
is built, not when this module is imported, so evaluation without a judge never loads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sure_vqa.config import ConfigError
from sure_vqa.evaluate.judge.backends import Conversation


class HFBackend:
    """Greedy chat replies from a local model folder."""

    def __init__(
        self,
        model_path: str | Path,
        batch_size: int = 8,
        max_new_tokens: int = 64,
        device: str = "auto",
        dtype: str = "auto",
    ) -> None:
        """`device`/`dtype` as checked by `registry.check_judge_config`: `auto` picks cuda when there is a GPU, and
        the dtype of models.loading.auto_dtype (bfloat16 where the GPU has it, float32 on the CPU)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from sure_vqa.models.loading import auto_dtype

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else (
            torch.device(device)
        )
        if dtype == "auto":
            dtype = auto_dtype(self.device.type)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.requests = 0
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), padding_side="left")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.tokenizer.chat_template is None:
            raise ConfigError(f"judge model {model_path} has no chat template; the judge needs an instruction model")
        # Loaded straight onto the device: a 9B judge never has to fit in host memory as well.
        self.model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=getattr(torch, dtype),
                                                          device_map=str(self.device))
        self.model.eval()
        self._torch = torch

    def _prompt_texts(self, conversations: Sequence[Conversation]) -> list[str]:
        return [
            self.tokenizer.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False)
            for c in conversations
        ]

    def generate(self, conversations: Sequence[Conversation]) -> list[str]:
        """Replies in order; long batches are split into `batch_size` chunks."""
        replies: list[str] = []
        for start in range(0, len(conversations), self.batch_size):
            replies += self._generate_batch(conversations[start : start + self.batch_size])
        return replies

    def _generate_batch(self, conversations: Sequence[Conversation]) -> list[str]:
        texts = self._prompt_texts(conversations)
        # The chat template already writes the BOS token where the model wants one.
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        generation: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "num_beams": 1,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        with self._torch.inference_mode():
            output = self.model.generate(**inputs, **generation)
        self.requests += len(conversations)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
