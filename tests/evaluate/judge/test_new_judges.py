"""This year's judges (docs/evaluation.md#other-judges): Qwen3-8B with its thinking switch off, and gemma-3-12b-it.

On skeletons of the published folders (their chat templates and config keys, tiny random weights): a template that
would put a reasoning block before the reply is refused; with the switch, score mode reads the scale right after
the prompt that is spelled out here by hand, and the probabilities equal those computed from the logits by hand.
The switch is part of the judge identity and is sent to a server as chat_template_kwargs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sure_vqa.config import ConfigError, compose
from sure_vqa.evaluate.judge import registry
from sure_vqa.evaluate.judge.backends.hf import HFBackend
from sure_vqa.evaluate.judge.backends.openai_server import OpenAIServerBackend
from sure_vqa.evaluate.judge.distribution import distribution
from sure_vqa.evaluate.judge.parser import parse_score
from sure_vqa.evaluate.judge.rubrics import CLOSED, OPEN, REPLY_PREFIX, RUBRICS, load_prompt
from tests.helpers.judge_helpers import StandInServer
from tests.helpers.skeletons import write_gemma3_judge_skeleton, write_qwen3_judge_skeleton

ROW = ("Which organ is abnormal?", "liver", "the spleen")
NO_THINKING = {"enable_thinking": False}


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_qwen3_judge_skeleton(tmp_path_factory.mktemp("judges") / "Qwen3-8B")


@pytest.fixture(scope="module")
def gemma3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gemma3_judge_skeleton(tmp_path_factory.mktemp("judges") / "gemma-3-12b-it")


def logprobs_by_hand(backend: HFBackend, text: str, continuations: tuple[str, ...]) -> list[float]:
    """log P(continuation | text): the whole text encoded from scratch, log-softmax summed at each position."""
    ids = backend.tokenizer(text, add_special_tokens=False)["input_ids"]
    out = []
    for continuation in continuations:
        tokens = backend.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            table = torch.log_softmax(backend.model(torch.tensor([ids + tokens])).logits[0].float(), dim=-1)
        out.append(sum(float(table[len(ids) - 1 + j, t]) for j, t in enumerate(tokens)))
    return out


def test_qwen3_without_its_thinking_switch_is_refused_naming_the_template_and_the_switch(qwen3: Path) -> None:
    with pytest.raises(ConfigError) as err:
        HFBackend(qwen3, device="cpu", dtype="float32")
    message = str(err.value)
    assert f"judge model {qwen3}" in message
    assert "puts '<think>\\n\\n</think>\\n\\n' between the generation prompt and the reply" in message
    assert "set judge.chat_template_kwargs={enable_thinking: false}" in message


@pytest.mark.parametrize("kind", [OPEN, CLOSED])
def test_qwen3_score_mode_reads_the_scale_after_the_empty_reasoning_block(qwen3: Path, kind: str) -> None:
    backend = HFBackend(qwen3, batch_size=2, device="cpu", dtype="float32", template_kwargs=NO_THINKING)
    prompt, rubric = load_prompt(kind, "v1"), RUBRICS[kind]
    conversation = prompt.messages(*ROW)
    assert [turn["role"] for turn in conversation] == ["user"]
    # the prompt as Qwen3's template writes it with thinking off, spelled out
    by_hand = (f"<|im_start|>user\n{conversation[0]['content']}<|im_end|>\n"
               f"<|im_start|>assistant\n<think>\n\n</think>\n\n{REPLY_PREFIX}")
    assert backend._prompt_texts([conversation])[0] + REPLY_PREFIX == by_hand
    got = backend.score([conversation], REPLY_PREFIX, rubric.continuations, shared_text=prompt.text)[0]
    expected = distribution(rubric.scale, logprobs_by_hand(backend, by_hand, rubric.continuations))
    scored = distribution(rubric.scale, got)
    assert max(abs(a - b) for a, b in zip(scored.probabilities, expected.probabilities, strict=True)) < 1e-5


def test_gemma3_score_mode_reads_the_scale_after_the_model_turn(gemma3: Path) -> None:
    backend = HFBackend(gemma3, batch_size=2, device="cpu", dtype="float32")
    prompt, rubric = load_prompt(OPEN, "v1"), RUBRICS[OPEN]
    conversation = prompt.messages(*ROW)
    by_hand = (f"<bos><start_of_turn>user\n{conversation[0]['content'].strip()}<end_of_turn>\n"
               f"<start_of_turn>model\n{REPLY_PREFIX}")
    assert backend._prompt_texts([conversation])[0] + REPLY_PREFIX == by_hand
    got = backend.score([conversation], REPLY_PREFIX, rubric.continuations, shared_text=prompt.text)[0]
    expected = distribution(rubric.scale, logprobs_by_hand(backend, by_hand, rubric.continuations))
    assert max(abs(a - b) for a, b in zip(distribution(rubric.scale, got).probabilities, expected.probabilities,
                                          strict=True)) < 1e-5


def test_generate_mode_replies_follow_the_prompt_and_parse_with_a_reasoning_block(qwen3: Path) -> None:
    backend = HFBackend(qwen3, batch_size=2, device="cpu", dtype="float32", max_new_tokens=5,
                        template_kwargs=NO_THINKING)
    conversations = [load_prompt(OPEN, "v1").messages(*ROW), load_prompt(CLOSED, "v1").messages("Is it CT?", "yes",
                                                                                                  "no")]
    assert backend.generate(conversations) == [backend.generate([c])[0] for c in conversations]
    # a server that ignores the switch still writes its reasoning first; the score after it is read
    reply = '<think>\nThe prediction names another organ.\n</think>\n\n{"score": 1}'
    assert parse_score(reply, RUBRICS[OPEN].scale).score == 1


def test_the_judge_configs_record_what_was_switched_off() -> None:
    def settings(*overrides: str) -> registry.JudgeSettings:
        cfg = compose(config_name="eval/metrics_eval_defaults", overrides=list(overrides))
        return registry.check_judge_config({**cfg.judge, "model_path": "."})

    assert settings("judge=gemma").identity == "gemma-2-9b-it (hf, greedy, max_new_tokens=64)"  # as before
    assert settings("judge=gemma3").identity == "gemma-3-12b-it (hf, greedy, max_new_tokens=64)"
    qwen = settings("judge=qwen3")
    assert qwen.identity == "Qwen3-8B (hf, greedy, max_new_tokens=64, enable_thinking=False)"
    assert settings("judge=qwen3", "judge.mode=score").identity == (
        "Qwen3-8B (hf, enable_thinking=False, score mode, reply prefix {\"score\":)")
    assert settings("judge=qwen3", "judge.backend=openai", "judge.base_url=http://x/v1").template_kwargs == NO_THINKING
    with pytest.raises(ConfigError, match=r"judge.chat_template_kwargs.enable_thinking=\[1\] is not valid"):
        settings("judge=qwen3", "judge.chat_template_kwargs.enable_thinking=[1]")


def test_the_openai_backend_sends_the_switch_as_chat_template_kwargs() -> None:
    server = StandInServer()
    try:
        backend = OpenAIServerBackend(server.base_url, "Qwen3-8B", template_kwargs=NO_THINKING, max_retries=0)
        backend.generate([load_prompt(OPEN, "v1").messages(*ROW)])
        plain = OpenAIServerBackend(server.base_url, "gemma-3-12b-it", max_retries=0)
        plain.generate([load_prompt(OPEN, "v1").messages(*ROW)])
    finally:
        server.close()
    assert server.bodies[0]["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in server.bodies[1]
