"""Judge backends: something that turns chat conversations into replies (docs/method.md#llm-judge).

`hf` runs a local transformers model; `openai` talks to any OpenAI-compatible server (vLLM, llama.cpp's server,
a hosted API). Both are registered in `sure_vqa.evaluate.judge.registry`; a new backend is one module plus one
`register_backend` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

Conversation = list[dict[str, str]]


class JudgeBackendError(RuntimeError):
    """The judge could not be asked (server down after retries, malformed reply). Not a judge failure: nothing is
    cached for the row and the run stops, so that a rerun asks again."""


class JudgeBackend(Protocol):
    """Greedy replies to a batch of conversations, in order (generate mode), or the log-probability of each
    candidate continuation of a started reply (score mode). `requests` counts conversations sent so far."""

    batch_size: int
    requests: int

    def generate(self, conversations: Sequence[Conversation]) -> list[str]: ...

    def score(self, conversations: Sequence[Conversation], reply_prefix: str, continuations: Sequence[str],
              shared_text: str = "") -> list[list[float | None]]: ...
