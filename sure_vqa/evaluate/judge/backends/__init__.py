"""Judge backends: something that turns chat conversations into replies (docs/method.md#llm-judge).

`hf` runs a local transformers model; `openai` talks to any OpenAI-compatible server (vLLM, llama.cpp's server,
a hosted API). A backend is one module in this package that registers a `JudgeBackendEntry`: how to build it from
the judge settings and what those settings must hold for it (checked before anything loads). Every module here
is loaded; `judge.backend` chooses one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sure_vqa.registry import Registry

if TYPE_CHECKING:
    from sure_vqa.evaluate.judge.registry import JudgeSettings

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


def _no_check(settings: JudgeSettings) -> None:
    """A backend that needs nothing beyond the shared judge settings."""


def _nothing_to_inspect(settings: JudgeSettings) -> str:
    return f"{settings.name}: backend {settings.backend} (nothing to inspect before it runs)"


@dataclass(frozen=True)
class NoSettings:
    """A backend without settings of its own."""


@dataclass(frozen=True)
class JudgeBackendEntry:
    """One judge backend: `build(settings)` returns the backend (this is where a model loads or a client opens);
    `settings` is the dataclass of its own `judge.` settings (their defaults live there; the checked values are
    `JudgeSettings.options`); `check(settings)` raises a ConfigError naming a `judge.` key that this backend
    needs and is not valid, for what spans settings or touches the machine (a folder, an environment variable);
    `preflight(settings)` is its setup check for `sure-vqa doctor` (sure_vqa.preflight): what it found, without
    loading weights or contacting a server, or CheckFailed with the fix."""

    name: str
    description: str
    build: Callable[[JudgeSettings], JudgeBackend]
    settings: type = NoSettings
    check: Callable[[JudgeSettings], None] = _no_check
    preflight: Callable[[JudgeSettings], str] = _nothing_to_inspect


REGISTRY: Registry[JudgeBackendEntry] = Registry("judge backend", __name__, "judge.backend")
register = REGISTRY.register
