"""Judge settings from `config/judge/<name>.yaml`, and the registries behind them.

A judge is one config file: its name (which names the metrics files), a backend (`hf` or `openai`, entries of
sure_vqa.evaluate.judge.backends), the model and the generation settings. A model that must be prepared before use
(SmolLM2, converted from a GGUF) adds one `model_provider` function; a new kind of backend is one module in
backends/. Settings are checked before any model loads, and the backend itself is only built when some row
actually needs the judge (a fully cached rerun loads nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa.config import ConfigError, check_dtype
from sure_vqa.evaluate.judge import backends
from sure_vqa.evaluate.judge.backends import JudgeBackend
from sure_vqa.evaluate.judge.rubrics import REPLY_PREFIX, RUBRICS, Prompt, load_prompt
from sure_vqa.evaluate.judge.scoring import GENERATE, MODES, SCORE

# Score mode's agreement with generate mode: from the generate replies already in the cache, asking the judge
# for the missing ones, or not at all.
AGREEMENT = ("cached", "ask", "off")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class JudgeSettings:
    """The validated `judge` config group."""

    name: str
    backend: str
    model: str
    prompt_version: str
    batch_size: int
    max_new_tokens: int
    model_path: str | None = None
    model_provider: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 3
    identity_override: str | None = None
    mode: str = GENERATE
    agreement: str = "cached"

    @property
    def identity(self) -> str:
        """Which model answered, and how: recorded with every score and part of every cache key."""
        if self.mode == SCORE:
            who = self.identity_override or f"{self.model} ({self.backend}"
            closing = "]" if self.identity_override else ")"
            opening = " [" if self.identity_override else ", "
            return f"{who}{opening}score mode, reply prefix {REPLY_PREFIX}{closing}"
        return self.generate_identity

    @property
    def generate_identity(self) -> str:
        """The identity of the same judge in generate mode (whose replies score mode is compared with)."""
        if self.identity_override:
            return self.identity_override
        return f"{self.model} ({self.backend}, greedy, max_new_tokens={self.max_new_tokens})"

    def prompts(self) -> dict[str, Prompt]:
        return {kind: load_prompt(kind, self.prompt_version) for kind in RUBRICS}


_MODEL_PROVIDERS: dict[str, Callable[[], Path]] = {}


def register_model_provider(name: str, provider: Callable[[], Path]) -> None:
    """`judge.model_provider=<name>` then gets its model folder from `provider()` instead of `judge.model_path`."""
    _MODEL_PROVIDERS[name] = provider


def model_providers() -> list[str]:
    return sorted(_MODEL_PROVIDERS)


def _positive_int(cfg: Mapping[str, Any], key: str, default: int) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"judge.{key}={value!r} is not valid; it must be a whole number >= 1")
    return value


def _positive_float(cfg: Mapping[str, Any], key: str, default: float) -> float:
    value = cfg.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number <= 0:
        raise ConfigError(f"judge.{key}={value!r} is not valid; it must be a number of seconds > 0")
    return number


def check_judge_config(cfg: Mapping[str, Any]) -> JudgeSettings:
    """Validates the judge group without loading anything heavy; every error names the `judge.` key."""
    if cfg is None:
        raise ConfigError("the judge config group is missing; use judge=gemma or judge=smollm2")
    name = cfg.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"judge.name={name!r} is not valid; use letters, digits, '.', '_' or '-' (e.g. gemma)")
    backend = backends.REGISTRY.get(cfg.get("backend"))
    model = cfg.get("model")
    if not model:
        raise ConfigError("judge.model is not set; it names the judge model (e.g. gemma-2-9b-it)")
    settings = JudgeSettings(
        name=name,
        backend=backend.name,
        model=str(model),
        prompt_version=str(cfg.get("prompt_version", "v1")),
        batch_size=_positive_int(cfg, "batch_size", 8),
        max_new_tokens=_positive_int(cfg, "max_new_tokens", 64),
        model_path=cfg.get("model_path"),
        model_provider=cfg.get("model_provider"),
        device=str(cfg.get("device", "auto")),
        dtype=str(cfg.get("dtype", "auto")),
        base_url=cfg.get("base_url"),
        api_key_env=cfg.get("api_key_env"),
        concurrency=_positive_int(cfg, "concurrency", 8),
        timeout_s=_positive_float(cfg, "timeout_s", 60.0),
        max_retries=int(cfg.get("max_retries", 3)),
        identity_override=cfg.get("identity"),
        mode=str(cfg.get("mode", GENERATE)),
        agreement=str(cfg.get("agreement", "cached")),
    )
    if settings.mode not in MODES:
        raise ConfigError(f"judge.mode={settings.mode!r} is not valid; valid modes: {', '.join(MODES)} (generate: the "
                          "judge writes its reply; score: its probabilities over the rubric's scale are read)")
    if settings.agreement not in AGREEMENT:
        raise ConfigError(f"judge.agreement={settings.agreement!r} is not valid; valid values: {', '.join(AGREEMENT)}")
    check_dtype(settings.dtype, "judge.dtype")
    if not _DEVICE.match(settings.device):
        raise ConfigError(f"judge.device={settings.device!r} is not valid; valid values: auto, cpu, cuda, cuda:N, mps")
    if settings.max_retries < 0:
        raise ConfigError(f"judge.max_retries={settings.max_retries} is not valid; it must be >= 0")
    settings.prompts()  # a missing prompt version fails here, before any work
    backend.check(settings)
    return settings


def build_backend(settings: JudgeSettings) -> JudgeBackend:
    """The backend for validated settings (this is where a model loads or a client opens)."""
    return backends.REGISTRY.get(settings.backend).build(settings)


def resolve_model_path(settings: JudgeSettings) -> Path:
    if settings.model_provider is not None:
        return _MODEL_PROVIDERS[settings.model_provider]()
    return Path(str(settings.model_path)).expanduser()


def _smollm2_dir() -> Path:
    from sure_vqa.models.smollm2 import smollm2_dir

    return smollm2_dir()


register_model_provider("smollm2", _smollm2_dir)
