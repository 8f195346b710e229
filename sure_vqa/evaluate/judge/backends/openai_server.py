"""The `openai` judge backend: any OpenAI-compatible chat server (vLLM, llama.cpp's server, a hosted API).

Requests go through the official `openai` client, which already does what a flaky server needs: a timeout per
request and retries with exponential back-off (and jitter, honouring Retry-After) on connection errors, timeouts,
429 and 5xx replies. On top of it this backend bounds the number of requests in flight (`concurrency`) and turns
a reply without a message (malformed) or a request that still fails after its retries into `JudgeBackendError`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sure_vqa.evaluate.judge.backends import Conversation, JudgeBackendError


class OpenAIServerBackend:
    """Greedy (temperature 0) chat completions from a server, `concurrency` at a time."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        batch_size: int = 32,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        max_new_tokens: int = 64,
    ) -> None:
        import openai

        self._openai = openai
        self.base_url = base_url
        self.model = model
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.max_new_tokens = max_new_tokens
        self.requests = 0
        self._lock = threading.Lock()
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries)

    def _one(self, conversation: Conversation) -> str:
        with self._lock:
            self.requests += 1
        try:
            response: Any = self._client.chat.completions.create(
                model=self.model,
                messages=list(conversation),  # type: ignore[arg-type]
                temperature=0.0,
                max_tokens=self.max_new_tokens,
            )
        except self._openai.APIError as err:  # after the client's own retries
            raise JudgeBackendError(f"judge server {self.base_url} failed: {type(err).__name__}: {err}") from err
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, KeyError, TypeError):
            content = None
        if not isinstance(content, str):
            raise JudgeBackendError(
                f"judge server {self.base_url} sent a malformed reply (no choices[0].message.content): "
                f"{str(response)[:200]!r}"
            )
        return content.strip()

    def generate(self, conversations: Sequence[Conversation]) -> list[str]:
        """Replies in order; at most `concurrency` requests in flight."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, conversations))

    def close(self) -> None:
        self._client.close()
