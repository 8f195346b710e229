"""Judge settings from `config/judge/<name>.yaml`, and the registries behind them.

A judge is one config file: its name (which names the metrics files), a backend (`hf` or `openai`, entries of
sure_vqa.evaluate.judge.backends), the model and the generation settings. A model that must be prepared before use
(SmolLM2, converted from a GGUF) adds one `model_provider` function; a new kind of backend is one module in
backends/. Settings are checked before any model loads, and the backend itself is only built when some row
actually needs the judge (a fully cached rerun loads nothing).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa.config import ConfigError
from sure_vqa.evaluate.judge import backends
from sure_vqa.evaluate.judge.backends import JudgeBackend
from sure_vqa.evaluate.judge.rubrics import REPLY_PREFIX, RUBRICS, Prompt, load_prompt
from sure_vqa.evaluate.judge.scoring import GENERATE, MODES, SCORE
from sure_vqa.settings import checked, defaults, setting

# Score mode's agreement with generate mode: from the generate replies already in the cache, asking the judge
# for the missing ones, or not at all.
AGREEMENT = ("cached", "ask", "off")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class JudgeSettings:
    """The `judge` config group, checked: the settings every judge has (their defaults live here), and in
    `options` the chosen backend's own settings (its entry's dataclass in backends/, e.g. the hf backend's
    model_path and device). A judge file in config/judge/ sets name, model and what differs from these."""

    name: str = setting()  # names the metrics files (gemma_metrics.json) and metric_type entries
    model: str = setting()  # recorded with every score; for backend=openai, the name the server serves
    backend: str = setting("hf", registry=lambda: backends.REGISTRY)  # hf (local transformers) | openai
    # null: "<model> (<backend>, greedy, max_new_tokens=N)"; part of the cache key
    identity_override: str | None = setting(None, key="identity")
    prompt_version: str = "v1"  # sure_vqa/evaluate/judge/prompts/{open,closed,two_option}.<version>.txt
    # generate (the original's: the judge writes its reply) | score (its probabilities over the rubric's scale)
    mode: str = setting(GENERATE, choices=MODES, must_be="generate: the judge writes its reply; score: its "
                                                        "probabilities over the rubric's scale are read")
    # score mode: compare with generate mode's replies in the cache (cached), asking for missing ones (ask), or not
    agreement: str = setting("cached", choices=AGREEMENT)
    max_new_tokens: int = setting(64, minimum=1)  # the reply is a small JSON object
    batch_size: int = setting(8, minimum=1)  # prompts per call; also the cache-write granularity
    # keyword arguments for the judge's chat template, e.g. {enable_thinking: false} for Qwen3 (null: none); the
    # hf backend renders with them, the openai backend sends them as the request's chat_template_kwargs
    chat_template_kwargs: Any | None = None  # checked into sorted (name, value) pairs: the settings stay hashable
    options: Any = dataclasses.field(default=None, metadata={"internal": True})

    @property
    def template_kwargs(self) -> dict[str, Any]:
        return dict(self.chat_template_kwargs or ())

    @property
    def _switches(self) -> str:
        """`, enable_thinking=False`: what the template was told, part of the identity (nothing when unset)."""
        return "".join(f", {key}={value!r}" for key, value in self.chat_template_kwargs or ())

    @property
    def identity(self) -> str:
        """Which model answered, and how: recorded with every score and part of every cache key."""
        if self.mode == SCORE:
            who = self.identity_override or f"{self.model} ({self.backend}{self._switches}"
            closing = "]" if self.identity_override else ")"
            opening = " [" if self.identity_override else ", "
            return f"{who}{opening}score mode, reply prefix {REPLY_PREFIX}{closing}"
        return self.generate_identity

    @property
    def generate_identity(self) -> str:
        """The identity of the same judge in generate mode (whose replies score mode is compared with)."""
        if self.identity_override:
            return self.identity_override
        return f"{self.model} ({self.backend}, greedy, max_new_tokens={self.max_new_tokens}{self._switches})"

    def prompts(self) -> dict[str, Prompt]:
        return {kind: load_prompt(kind, self.prompt_version) for kind in RUBRICS}


_MODEL_PROVIDERS: dict[str, Callable[[], Path]] = {}


def register_model_provider(name: str, provider: Callable[[], Path]) -> None:
    """`judge.model_provider=<name>` then gets its model folder from `provider()` instead of `judge.model_path`."""
    _MODEL_PROVIDERS[name] = provider


def model_providers() -> list[str]:
    return sorted(_MODEL_PROVIDERS)


def judge_defaults() -> dict[str, Any]:
    """The judge group's node: the shared defaults, then every backend's (flat, as the original's keys are)."""
    node = defaults(JudgeSettings)
    for entry in backends.REGISTRY:
        own = defaults(entry.settings)
        clash = sorted(set(own) & set(node))
        if clash:
            raise ValueError(f"judge backend {entry.name!r} has a setting {clash[0]!r} that another judge setting "
                             "already uses; rename it")
        node.update(own)
    return node


def check_judge_config(cfg: Mapping[str, Any]) -> JudgeSettings:
    """Validates the judge group without loading anything heavy; every error names the `judge.` key."""
    if cfg is None:
        raise ConfigError("the judge config group is missing; use judge=gemma or judge=smollm2")
    node = dict(cfg)
    entries = backends.REGISTRY.entries()
    backend_keys = {key for entry in entries for key in defaults(entry.settings)}
    settings = checked(JudgeSettings, {k: v for k, v in node.items() if k not in backend_keys}, "judge")
    settings = dataclasses.replace(settings, chat_template_kwargs=_template_kwargs(settings.chat_template_kwargs))
    if not _NAME.match(settings.name):
        raise ConfigError(f"judge.name={settings.name!r} is not valid; use letters, digits, '.', '_' or '-' "
                          "(e.g. gemma)")
    # every backend's settings are checked (a bad value never waits for someone to switch backends); the
    # chosen backend's are kept
    options = {entry.name: checked(entry.settings, node, "judge", only_own=True) for entry in entries}
    backend = backends.REGISTRY.get(settings.backend)
    settings = dataclasses.replace(settings, options=options[backend.name])
    settings.prompts()  # a missing prompt version fails here, before any work
    backend.check(settings)
    return settings


def _template_kwargs(value: Any) -> tuple[tuple[str, Any], ...] | None:
    """`judge.chat_template_kwargs` as sorted (name, value) pairs (hashable: a loaded judge is kept per settings),
    each value a plain true/false, number or text."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"judge.chat_template_kwargs={value!r} is not valid; it must be a mapping of chat-template "
                          "keyword arguments, e.g. {enable_thinking: false}, or null")
    for key, item in value.items():
        if not isinstance(item, bool | int | float | str):
            raise ConfigError(f"judge.chat_template_kwargs.{key}={item!r} is not valid; it must be true or false, a "
                              "number or a text")
    return tuple(sorted((str(key), item) for key, item in value.items())) or None


def preflight(judge_cfg: Mapping[str, Any] | None) -> str:
    """The judge's setup check (sure-vqa doctor): its settings, then its backend's own inspection."""
    settings = check_judge_config(judge_cfg or {})
    return backends.REGISTRY.get(settings.backend).preflight(settings)


def build_backend(settings: JudgeSettings) -> JudgeBackend:
    """The backend for validated settings (this is where a model loads or a client opens)."""
    return backends.REGISTRY.get(settings.backend).build(settings)


def resolve_model_path(settings: JudgeSettings) -> Path:
    options = settings.options
    if options.model_provider is not None:
        return _MODEL_PROVIDERS[options.model_provider]()
    return Path(str(options.model_path)).expanduser()


def _smollm2_dir() -> Path:
    from sure_vqa.models.smollm2 import smollm2_dir

    return smollm2_dir()


register_model_provider("smollm2", _smollm2_dir)
