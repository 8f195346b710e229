"""The `hf` judge backend: a local transformers causal LM (gemma-2-9b-it by default, SmolLM2 offline).

Generate mode: batched generation with left padding (so every prompt ends where its answer starts), greedy
decoding, the model's own chat template, bf16 on GPUs and float32 on CPUs. Score mode (`score`): one forward
pass per batch over each row's own tokens, on top of the key/value cache of the prefix every row of a rubric
shares (the chat template's start and the rubric text, encoded once), then a short pass over the candidate
continuations. torch and transformers are imported when a backend is built, not when this module is imported,
so evaluation without a judge never loads them.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sure_vqa.config import ConfigError, check_dtype, is_unset
from sure_vqa.evaluate.judge.backends import Conversation, JudgeBackendEntry, register

if TYPE_CHECKING:
    from sure_vqa.evaluate.judge.registry import JudgeSettings


class HFBackend:
    """Greedy chat replies from a local model folder."""

    def __init__(
        self,
        model_path: str | Path,
        batch_size: int = 8,
        max_new_tokens: int = 64,
        device: str = "auto",
        dtype: str = "auto",
        template_kwargs: dict[str, Any] | None = None,
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
        self.template_kwargs = dict(template_kwargs or {})
        check_reply_follows_prompt(self.tokenizer, self.template_kwargs, model_path)
        # Loaded straight onto the device: a 9B judge never has to fit in host memory as well.
        self.model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=getattr(torch, dtype),
                                                          device_map=str(self.device))
        self.model.eval()
        self._torch = torch
        self._prefix_cache: dict[tuple[int, ...], Any] = {}  # shared prefix tokens -> their key/value cache
        self.prefix_encodings = 0  # how often a shared prefix was encoded (once per rubric when all goes well)

    def _prompt_texts(self, conversations: Sequence[Conversation]) -> list[str]:
        return [self.tokenizer.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False,
                                                   **self.template_kwargs) for c in conversations]

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

    # --- score mode ---------------------------------------------------------------------------------

    def score(self, conversations: Sequence[Conversation], reply_prefix: str, continuations: Sequence[str],
              shared_text: str = "") -> list[list[float | None]]:
        """log P(continuation | prompt + reply_prefix) for each conversation and continuation.

        `shared_text` is what every conversation's user turn starts with (the rubric); the tokens before it ends
        are encoded once and reused. Rows are batched `batch_size` at a time, right-padded with explicit
        positions, so that each row's tokens see exactly the prefix and themselves.
        """
        texts = [text + reply_prefix for text in self._prompt_texts(conversations)]
        row_ids = [self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
        continuation_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in continuations]
        if any(not ids for ids in continuation_ids):
            raise ValueError(f"a continuation tokenises to nothing: {continuations!r}")
        shared_ids = self._shared_ids(conversations[0], shared_text) if shared_text and conversations else []
        scores: list[list[float | None]] = []
        for start in range(0, len(row_ids), self.batch_size):
            scores += self._score_batch(row_ids[start : start + self.batch_size], continuation_ids, shared_ids)
        self.requests += len(conversations)
        return scores

    def _shared_ids(self, conversation: Conversation, shared_text: str) -> list[int]:
        """The tokens of the template's start and `shared_text`: the template rendered around a marker placed
        right after the shared text, cut at the marker."""
        marker = "\u0001\u0002"  # control characters no prompt contains
        probe = [{**turn} for turn in conversation]
        probe[-1]["content"] = shared_text + marker
        text = self.tokenizer.apply_chat_template(probe, add_generation_prompt=True, tokenize=False,
                                                  **self.template_kwargs)
        if marker not in text:
            return []
        return self.tokenizer(text[: text.index(marker)], add_special_tokens=False)["input_ids"]

    def _prefix_state(self, prefix: tuple[int, ...]) -> Any:
        if prefix not in self._prefix_cache:
            torch = self._torch
            with torch.inference_mode():
                output = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
            if len(self._prefix_cache) >= 8:  # a few rubrics (three today); never grows without bound
                self._prefix_cache.pop(next(iter(self._prefix_cache)))
            self._prefix_cache[prefix] = output.cache
            self.prefix_encodings += 1
        return self._prefix_cache[prefix]

    def _score_batch(self, row_ids: Sequence[list[int]], continuation_ids: Sequence[list[int]],
                     shared_ids: Sequence[int]) -> list[list[float | None]]:
        torch = self._torch
        # The shared part is the longest start of shared_ids every row begins with (a tokenizer may merge the
        # rubric's last characters with the row's first), leaving each row at least one token of its own.
        shared = len(shared_ids)
        for ids in row_ids:
            common = next((i for i, (a, b) in enumerate(zip(shared_ids, ids, strict=False)) if a != b),
                          min(len(shared_ids), len(ids)))
            shared = min(shared, common, len(ids) - 1)
        own = [ids[shared:] for ids in row_ids]
        batch, own_len = len(own), max(len(ids) for ids in own)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (own_len - len(ids)) for ids in own], device=self.device)
        own_mask = torch.tensor([[1] * len(ids) + [0] * (own_len - len(ids)) for ids in own], device=self.device)
        mask = torch.cat([torch.ones(batch, shared, dtype=own_mask.dtype, device=self.device), own_mask], dim=1)
        positions = (shared + torch.arange(own_len, device=self.device)).expand(batch, own_len)
        past = None
        if shared:
            past = copy.deepcopy(self._prefix_state(tuple(shared_ids[:shared])))
            past.batch_repeat_interleave(batch)
        lengths = torch.tensor([len(ids) for ids in own], device=self.device)
        # The logits of each row's last token only (the language-model head over the whole vocabulary is most of
        # a forward pass): the distinct last positions, then each row's own.
        last = torch.unique(lengths - 1)
        with torch.inference_mode():
            output = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                                cache=past, use_cache=True, logits_to_keep=last)
            at = torch.searchsorted(last, lengths - 1)
            first = torch.log_softmax(output.logits[torch.arange(batch), at].float(), dim=-1)
            scores = [[float(first[i, c[0]]) for c in continuation_ids] for i in range(batch)]
            if max(len(c) for c in continuation_ids) > 1:
                self._add_continuation_tails(scores, output.cache, mask, lengths + shared, continuation_ids)
        return scores  # type: ignore[return-value]

    def _add_continuation_tails(self, scores: list[list[float]], past: Any, mask: Any, ends: Any,
                                continuation_ids: Sequence[list[int]]) -> None:
        """Adds log P(tokens 2.. of each continuation) in one pass per batch.

        The continuations' tokens but their last form a trie (` 1}` and ` 2}` share the node ` `), laid out side
        by side after each row; each node attends to the row and to its own ancestors only (a 4D mask) at the
        position it would have alone, so the rows' caches are used as they are, not copied per continuation.
        """
        torch = self._torch
        rows = len(scores)
        nodes: dict[tuple[int, ...], int] = {}  # a continuation's first tokens -> its node in the trie
        for tokens in continuation_ids:
            for depth in range(1, len(tokens)):
                nodes.setdefault(tuple(tokens[:depth]), len(nodes))
        prefixes = list(nodes)
        width, past_len = len(prefixes), mask.shape[1]
        see_tree = torch.tensor([[prefixes[i][: len(prefixes[j])] == prefixes[j] for j in range(width)]
                                 for i in range(width)], dtype=torch.bool, device=self.device)
        see = torch.cat([mask.bool()[:, None, :].expand(rows, width, past_len),
                         see_tree.expand(rows, width, width)], dim=2)
        dtype = self.model.dtype
        additive = torch.zeros(see.shape, dtype=dtype, device=self.device).masked_fill(~see, torch.finfo(dtype).min)
        depths = torch.tensor([len(prefix) - 1 for prefix in prefixes], device=self.device)
        input_ids = torch.tensor([[prefix[-1] for prefix in prefixes]] * rows, device=self.device)
        output = self.model(input_ids=input_ids, attention_mask=additive[:, None], position_ids=ends[:, None] + depths,
                            cache=past, use_cache=False)
        logprobs = torch.log_softmax(output.logits.float(), dim=-1)
        for row in range(rows):
            for k, tokens in enumerate(continuation_ids):
                scores[row][k] += sum(float(logprobs[row, nodes[tuple(tokens[:j])], tokens[j]])
                                      for j in range(1, len(tokens)))


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class HFJudgeSettings:
    """The hf backend's `judge.` settings."""

    model_path: str | None = None  # a local model folder (gemma's: JUDGE_MODEL_PATH)
    model_provider: str | None = None  # a registered function that prepares the folder instead (e.g. smollm2)
    device: str = "auto"  # auto (cuda if available) | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto (bfloat16 on GPU, float32 on CPU) | bfloat16 | float16 | float32

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", check_dtype(self.dtype, "judge.dtype"))
        if not _DEVICE.match(self.device):
            raise ConfigError(f"judge.device={self.device!r} is not valid; valid values: auto, cpu, cuda, cuda:N, mps")


def check_settings(settings: JudgeSettings) -> None:
    """The model comes from a provider (judge.model_provider) or a folder (judge.model_path) that exists."""
    from sure_vqa.evaluate.judge.registry import model_providers

    options: HFJudgeSettings = settings.options
    if options.model_provider is not None:
        if options.model_provider not in model_providers():
            raise ConfigError(f"judge.model_provider={options.model_provider!r} is not valid; valid providers: "
                              f"{', '.join(model_providers())} (or null to use judge.model_path)")
    elif is_unset(options.model_path):
        raise ConfigError("judge.model_path is not set (set JUDGE_MODEL_PATH in .env or the environment)")
    elif not Path(str(options.model_path)).expanduser().is_dir():
        raise ConfigError(f"judge.model_path={options.model_path} is not a model folder (JUDGE_MODEL_PATH in .env "
                          "or the environment)")


def check_reply_follows_prompt(tokenizer: Any, template_kwargs: dict[str, Any], where: str | Path) -> None:
    """Refuses a judge whose chat template puts anything between the generation prompt and the reply (Qwen3's
    reasoning block unless `enable_thinking` is false): score mode continues the prompt with `{"score":` and
    generate mode parses the reply's start, so both need the reply to follow the prompt. The test renders one
    user turn with and without a reply `{"score": 3}` and compares
    (docs/evaluation.md#judges-with-a-thinking-switch)."""
    from sure_vqa.evaluate.judge.rubrics import REPLY_PREFIX
    from sure_vqa.models.chat_templates import THINKING_SWITCH

    turn = [{"role": "user", "content": "ping"}]
    reply = f"{REPLY_PREFIX} 3}}"
    prompt = tokenizer.apply_chat_template(turn, add_generation_prompt=True, tokenize=False, **template_kwargs)
    replied = tokenizer.apply_chat_template([*turn, {"role": "assistant", "content": reply}], tokenize=False,
                                            **template_kwargs)
    if replied.startswith(prompt + REPLY_PREFIX):
        return
    start = replied.find(REPLY_PREFIX)
    between = replied[len(prompt):start] if replied.startswith(prompt) and start >= 0 else None
    hint = ("; its template has a thinking switch: set judge.chat_template_kwargs={enable_thinking: false}"
            if THINKING_SWITCH in str(tokenizer.chat_template) and THINKING_SWITCH not in template_kwargs else "")
    what = f"puts {between!r} between the generation prompt and the reply" if between else (
        "does not render a reply right after the generation prompt")
    raise ConfigError(f"the chat template of judge model {where} {what}{hint}; the judge's reply must start with "
                      f"{REPLY_PREFIX} where the prompt ends (chat_template_kwargs: {template_kwargs or 'none'})")


@functools.lru_cache(maxsize=1)
def cached_backend(settings: JudgeSettings) -> HFBackend:
    """Kept loaded for the next evaluation with the same settings: a study evaluates dozens of runs in one
    process, and reloading gemma-2-9b-it for each would cost more than judging."""
    from sure_vqa.evaluate.judge.registry import resolve_model_path

    return HFBackend(resolve_model_path(settings), batch_size=settings.batch_size,
                     max_new_tokens=settings.max_new_tokens, device=settings.options.device,
                     dtype=settings.options.dtype, template_kwargs=settings.template_kwargs)


def preflight(settings: JudgeSettings) -> str:
    """The judge folder's tokenizer has a chat template that takes one user turn (no weights are read)."""
    from transformers import AutoTokenizer

    from sure_vqa.preflight import CheckFailed, gigabytes, read_model_config, weights_bytes

    if settings.options.model_provider is not None:
        return (f"{settings.name}: judge.model_provider={settings.options.model_provider} prepares its folder on "
                "first use")
    path = Path(str(settings.options.model_path)).expanduser()
    read_model_config(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        raise CheckFailed(f"{path}: the judge's tokenizer has no chat template",
                          "give an instruction-tuned judge (e.g. gemma-2-9b-it) with its tokenizer_config.json")
    try:  # the judge asks in one user turn (gemma's template refuses a system role)
        tokenizer.apply_chat_template([{"role": "user", "content": "ping"}], add_generation_prompt=True,
                                      tokenize=False)
    except Exception as err:  # noqa: BLE001 - a template can raise anything from jinja
        raise CheckFailed(f"{path}: the chat template fails on a user turn ({err})",
                          "give the judge's published tokenizer files") from None
    try:
        check_reply_follows_prompt(tokenizer, settings.template_kwargs, path)
    except ConfigError as err:
        raise CheckFailed(str(err), "set judge.chat_template_kwargs as the message says") from None
    return (f"{settings.name}: {path}, {type(tokenizer).__name__} with a chat template, "
            f"{gigabytes(weights_bytes(path))}")


register(JudgeBackendEntry("hf", "a local transformers causal LM (gemma-2-9b-it; SmolLM2 offline)",
                           build=cached_backend, settings=HFJudgeSettings, check=check_settings, preflight=preflight))
