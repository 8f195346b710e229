"""The `openai` judge backend: any OpenAI-compatible chat server (vLLM, llama.cpp's server, a hosted API).

Requests go through the official `openai` client, which already does what a flaky server needs: a timeout per
request and retries with exponential back-off (and jitter, honouring Retry-After) on connection errors, timeouts,
429 and 5xx replies. On top of it this backend bounds the number of requests in flight (`concurrency`) and turns
a reply without a message (malformed) or a request that still fails after its retries into `JudgeBackendError`.

Score mode (`score`) sends the conversation with the reply already started (`{"score":`, an assistant message to
continue: vLLM's `continue_final_message`; llama.cpp's C++ `llama-server` continues a final assistant message by
default) and reads the server's top log-probabilities at the position where the score is written; a server that
sends none is an error that says so. A server that starts a new reply instead (llama-cpp-python's, tested) is
read the same way once its reply has written the prefix itself.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sure_vqa.config import ConfigError
from sure_vqa.evaluate.judge.backends import Conversation, JudgeBackendEntry, JudgeBackendError, register
from sure_vqa.settings import setting

if TYPE_CHECKING:
    from sure_vqa.evaluate.judge.registry import JudgeSettings
from sure_vqa.evaluate.judge.rubrics import REPLY_PREFIX

TOP_LOGPROBS = 20  # the most the OpenAI API (and vLLM by default) returns per position
SCORE_MAX_TOKENS = 12  # enough for a server that restarts the reply and writes {"score": itself
# What may come before the score in a reply, whitespace aside: nothing (the prefix was continued) or the prefix.
REPLY_PREFIX_COMPACT = re.sub(r"\s", "", REPLY_PREFIX)


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
        template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        import openai

        self._openai = openai
        self.base_url = base_url
        self.model = model
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.max_new_tokens = max_new_tokens
        # sent as the request's chat_template_kwargs (vLLM and llama.cpp's server read it) when set
        self._template = {"chat_template_kwargs": dict(template_kwargs)} if template_kwargs else {}
        self.requests = 0
        self._lock = threading.Lock()
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries)

    def _one(self, conversation: Conversation) -> str:
        response = self._create(messages=list(conversation), max_tokens=self.max_new_tokens,
                                **({"extra_body": self._template} if self._template else {}))
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

    def _create(self, **kwargs: Any) -> Any:
        with self._lock:
            self.requests += 1
        try:
            return self._client.chat.completions.create(model=self.model, temperature=0.0, **kwargs)
        except self._openai.APIError as err:  # after the client's own retries
            raise JudgeBackendError(f"judge server {self.base_url} failed: {type(err).__name__}: {err}") from err

    def score(self, conversations: Sequence[Conversation], reply_prefix: str, continuations: Sequence[str],
              shared_text: str = "") -> list[list[float | None]]:
        """log P of each continuation per conversation, from the server's top log-probabilities (None where a
        continuation is not among them or can't be told apart from another); `shared_text` is not needed here
        (a server caches shared prefixes itself, vLLM with --enable-prefix-caching)."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda c: self._score_one(c, reply_prefix, continuations), conversations))

    def _score_one(self, conversation: Conversation, reply_prefix: str,
                   continuations: Sequence[str]) -> list[float | None]:
        response = self._create(
            messages=[*conversation, {"role": "assistant", "content": reply_prefix}],  # type: ignore[list-item]
            max_tokens=SCORE_MAX_TOKENS, logprobs=True, top_logprobs=TOP_LOGPROBS,
            extra_body={"continue_final_message": True, "add_generation_prompt": False, **self._template},
        )
        try:
            positions = response.choices[0].logprobs.content
        except (AttributeError, IndexError, KeyError, TypeError):
            positions = None
        if not positions:  # a setting that can't work with this server: exit 2 with one line, as bad settings do
            raise ConfigError(
                f"judge server {self.base_url} returned no log-probabilities; judge.mode=score needs a server that "
                "returns them (vLLM, llama.cpp's server); with this server use judge.mode=generate"
            )
        return continuation_logprobs(
            [(p.token, [(t.token, t.logprob) for t in (p.top_logprobs or [])]) for p in positions], continuations)

    def generate(self, conversations: Sequence[Conversation]) -> list[str]:
        """Replies in order; at most `concurrency` requests in flight."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, conversations))

    def close(self) -> None:
        self._client.close()


Position = tuple[str, list[tuple[str, float]]]  # the generated token and the top (token, log-probability) pairs


def continuation_logprobs(positions: Sequence[Position], continuations: Sequence[str]) -> list[float | None]:
    """Each continuation's log-probability read from a reply's per-position top log-probabilities.

    The score position is the first token that starts with a digit after nothing or after `{"score":`. A top
    token there is matched against the continuations with leading spaces ignored: one that starts (or is)
    exactly one continuation counts for it (its later tokens taken as certain); one that starts several (`0` of
    `0}` and `0.5}`) is split by the next position when it is the token the server chose, and is left out
    otherwise.
    """
    targets = [c.lstrip() for c in continuations]
    found: list[list[float]] = [[] for _ in continuations]
    written = ""  # the reply before the current token, whitespace removed
    for index, (token, top) in enumerate(positions):
        if not (written in ("", REPLY_PREFIX_COMPACT) and token.lstrip()[:1].isdigit()):
            written += re.sub(r"\s", "", token)
            if not REPLY_PREFIX_COMPACT.startswith(written):
                break  # the reply says something else: no score position
            continue
        for text, logprob in top:
            text = text.lstrip()
            matches = [k for k, t in enumerate(targets) if text and (t.startswith(text) or text.startswith(t))]
            if len(matches) == 1:
                found[matches[0]].append(logprob)
            elif len(matches) > 1 and text == token.lstrip() and index + 1 < len(positions):
                for after, after_logprob in positions[index + 1][1]:
                    joined = text + after
                    exact = [k for k in matches if targets[k].startswith(joined) or joined.startswith(targets[k])]
                    if len(exact) == 1:
                        found[exact[0]].append(logprob + after_logprob)
        break
    return [_logsumexp(values) if values else None for values in found]


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


@dataclass(frozen=True)
class OpenAIServerSettings:
    """The openai backend's `judge.` settings."""

    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    api_key_env: str | None = None  # the environment variable holding the key; null for servers without one
    concurrency: int = setting(8, minimum=1)  # requests in flight at most
    timeout_s: float = setting(60, above=0, must_be="a number of seconds > 0")  # per request
    # per request, with exponential back-off (connection errors, timeouts, 429, 5xx)
    max_retries: int = setting(3, minimum=0)


def check_settings(settings: JudgeSettings) -> None:
    """A server URL, and the API key's environment variable set when one is named."""
    options: OpenAIServerSettings = settings.options
    if not options.base_url:
        raise ConfigError("judge.base_url is not set; give the server's URL, e.g. http://127.0.0.1:8000/v1")
    if options.api_key_env and not os.environ.get(options.api_key_env):
        raise ConfigError(f"judge.api_key_env={options.api_key_env}: that environment variable is not set; set it "
                          "(in .env or the environment) or set judge.api_key_env=null for a server that needs no key")


def build(settings: JudgeSettings) -> OpenAIServerBackend:
    options: OpenAIServerSettings = settings.options
    api_key = os.environ.get(options.api_key_env, "") if options.api_key_env else "EMPTY"
    return OpenAIServerBackend(base_url=str(options.base_url), model=settings.model, api_key=api_key,
                               batch_size=settings.batch_size, concurrency=options.concurrency,
                               timeout_s=options.timeout_s, max_retries=options.max_retries,
                               max_new_tokens=settings.max_new_tokens, template_kwargs=settings.template_kwargs)


def preflight(settings: JudgeSettings) -> str:
    return f"{settings.name}: OpenAI-compatible server at {settings.options.base_url} (not contacted here)"


register(JudgeBackendEntry("openai", "any OpenAI-compatible chat server (vLLM, llama.cpp's server, a hosted API)",
                           build=build, settings=OpenAIServerSettings, check=check_settings, preflight=preflight))
