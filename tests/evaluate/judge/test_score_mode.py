"""Judge score mode (docs/evaluation.md#score-mode): probabilities over the rubric's scale in one forward pass.

The expected values are computed here from the definition, not from the backend: every row and continuation is
encoded from scratch (no cache, no batching) and the continuation's token log-probabilities are summed from the
model's logits, then renormalised over the scale. Models: the gemma-2-9b-it skeleton (Gemma2 with its hybrid
sliding-window cache, a BPE tokenizer and Gemma's chat template) and, slow, the real SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from sure_vqa import naming
from sure_vqa.config import ConfigError, compose
from sure_vqa.evaluate.judge import registry
from sure_vqa.evaluate.judge.backends import hf as hf_backend
from sure_vqa.evaluate.judge.backends.openai_server import OpenAIServerBackend, continuation_logprobs
from sure_vqa.evaluate.judge.distribution import NoScoreProbability, distribution
from sure_vqa.evaluate.judge.rubrics import CLOSED, OPEN, REPLY_PREFIX, RUBRICS, TWO_OPTION, load_prompt
from sure_vqa.evaluate.run import run_evaluation
from tests.helpers.judge_helpers import Behaviour, StandInServer, results_row, row_input

ROWS = [("What organ is shown?", "liver", "the spleen"),
        ("Which plane is this image taken in?", "transverse plane", "coronal plane, clearly"),
        ("Is this a CT or an MRI?", "CT", "an MRI of the head")]


@pytest.fixture(scope="module")
def gemma_skeleton(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.skeletons import write_gemma_judge_skeleton

    return write_gemma_judge_skeleton(tmp_path_factory.mktemp("judge") / "gemma-2-9b-it")


def by_hand(backend, conversation: list[dict[str, str]], continuations: tuple[str, ...]) -> list[float]:
    """log P(continuation) with the whole text encoded from scratch: sum of log-softmax at each position."""
    import torch

    text = backend.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    ids = backend.tokenizer(text + REPLY_PREFIX, add_special_tokens=False)["input_ids"]
    logprobs = []
    for continuation in continuations:
        tokens = backend.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = backend.model(torch.tensor([ids + tokens])).logits[0].float()
        table = torch.log_softmax(logits, dim=-1)
        logprobs.append(sum(float(table[len(ids) - 1 + j, t]) for j, t in enumerate(tokens)))
    return logprobs


def check_against_hand(model_dir: Path, rows: list[tuple[str, str, str]] = ROWS) -> None:
    from sure_vqa.evaluate.judge.backends.hf import HFBackend

    backend = HFBackend(model_dir, batch_size=2, device="cpu", dtype="float32")
    for kind in (OPEN, CLOSED, TWO_OPTION):
        prompt, rubric = load_prompt(kind, "v1"), RUBRICS[kind]
        conversations = [prompt.messages(*row) for row in rows]
        got = backend.score(conversations, REPLY_PREFIX, rubric.continuations, shared_text=prompt.text)
        for conversation, logprobs in zip(conversations, got, strict=True):
            expected = distribution(rubric.scale, by_hand(backend, conversation, rubric.continuations))
            scored = distribution(rubric.scale, logprobs)
            assert max(abs(a - b) for a, b in zip(scored.probabilities, expected.probabilities, strict=True)) < 1e-5
            assert scored.score == rubric.scale[expected.probabilities.index(max(expected.probabilities))]
            # each probability within 1e-5, so the mean within 1e-5 times the sum of the scale's values
            assert math.isclose(scored.mean, sum(v * p for v, p in zip(rubric.scale, expected.probabilities,
                                                                         strict=True)), abs_tol=1e-5 * sum(rubric.scale))
    # each rubric's shared prefix (template start + rubric text) was encoded once, for every batch of rows
    assert backend.prefix_encodings == 3
    assert backend.requests == 3 * len(rows)


def test_score_mode_equals_probabilities_by_hand_on_the_gemma_skeleton(gemma_skeleton: Path) -> None:
    check_against_hand(gemma_skeleton)


@pytest.mark.slow
def test_score_mode_equals_probabilities_by_hand_on_smollm2() -> None:
    from sure_vqa.models.smollm2 import smollm2_dir

    # one row per rubric on the real model (rows in batches, and several rows, are the skeleton test's)
    check_against_hand(smollm2_dir(), ROWS[1:2])


def test_batch_size_does_not_change_the_scores(gemma_skeleton: Path) -> None:
    from sure_vqa.evaluate.judge.backends.hf import HFBackend

    prompt = load_prompt(TWO_OPTION, "v1")
    conversations = [prompt.messages(*row) for row in ROWS * 2]
    continuations = RUBRICS[TWO_OPTION].continuations
    one = HFBackend(gemma_skeleton, batch_size=1).score(conversations, REPLY_PREFIX, continuations, prompt.text)
    six = HFBackend(gemma_skeleton, batch_size=6).score(conversations, REPLY_PREFIX, continuations, prompt.text)
    assert all(abs(a - b) < 1e-5 for r1, r6 in zip(one, six, strict=True) for a, b in zip(r1, r6, strict=True))


def test_distribution_argmax_mean_and_valid_mass() -> None:
    # log-probabilities of 0.1, 0.3, 0.1 on 0 / 0.5 / 1: valid mass 0.5, renormalised 0.2, 0.6, 0.2
    scored = distribution((0.0, 0.5, 1.0), [math.log(0.1), math.log(0.3), math.log(0.1)])
    assert scored.score == 0.5 and math.isclose(scored.top_probability, 0.6)
    assert math.isclose(scored.mean, 0.5) and math.isclose(scored.valid_mass, 0.5)
    assert distribution((0.0, 1.0), [math.log(0.4), math.log(0.4)]).score == 0.0  # a tie: the lower score
    assert distribution((1.0, 2.0), [None, -3.0]).probabilities == (0.0, 1.0)
    with pytest.raises(NoScoreProbability):
        distribution((0.0, 1.0), [None, None])


# --- reading a server's top log-probabilities ---------------------------------------------------------

def test_logprobs_of_a_continued_reply() -> None:
    positions = [(" 4", [(" 4", -0.2), (" 5", -1.9), (" four", -3.0), ("5", -4.0)]), ("}", [("}", -0.01)])]
    got = continuation_logprobs(positions, RUBRICS[OPEN].continuations)
    assert got[:3] == [None, None, None] and got[3] == -0.2
    assert math.isclose(got[4], math.log(math.exp(-1.9) + math.exp(-4.0)))  # " 5" and "5" are both 5 stars


def test_logprobs_of_a_restarted_reply_split_a_shared_first_token() -> None:
    # the server wrote {"score": itself; "0" starts both "0}" and "0.5}", so the next position splits it
    positions = [('{"', [('{"', -0.01)]), ("score", [("score", -0.01)]), ('":', [('":', -0.01)]),
                 (" ", [(" ", -0.05)]), ("0", [("0", -0.3), ("1", -1.5)]), (".", [(".", -0.1), ("}", -2.4)]),
                 ("5", [("5", -0.01)])]
    got = continuation_logprobs(positions, RUBRICS[TWO_OPTION].continuations)
    assert got == [pytest.approx(-2.7), pytest.approx(-0.4), -1.5]
    assert continuation_logprobs([("The", [("The", -0.1)]), (" answer", [(" answer", -0.2)])],
                                 RUBRICS[CLOSED].continuations) == [None, None]  # prose: no score position


# --- whole evaluations --------------------------------------------------------------------------------

SCORE_OF_PRED = {"the spleen": 2, "coronal plane": 4, "an organ": 1, "kidney": 4}  # score mode's argmax per row
GENERATED_OF_PRED = {"the spleen": 2, "coronal plane": 4, "an organ": 1, "kidney": 5}  # generate mode's reply


def server_logprobs(messages: list[dict[str, str]]) -> list[dict]:
    """A continued reply: the argmax token first, the neighbouring score 2 nats lower."""
    best = SCORE_OF_PRED[row_input(messages)["pred"]]
    other = best - 1 if best > 1 else best + 1
    top = [{"token": f" {best}", "logprob": -0.1}, {"token": f" {other}", "logprob": -2.1}]
    return [{"token": f" {best}", "logprob": -0.1, "top_logprobs": top},
            {"token": "}", "logprob": 0.0, "top_logprobs": [{"token": "}", "logprob": 0.0}]}]


def generated_reply(messages: list[dict[str, str]]) -> str:
    return json.dumps({"score": GENERATED_OF_PRED[row_input(messages)["pred"]]})


@pytest.fixture
def logprob_server() -> Iterator[StandInServer]:
    server = StandInServer(Behaviour(reply=generated_reply, logprobs=server_logprobs))
    yield server
    server.close()


def open_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "eval_run"
    folder.mkdir()
    rows = [results_row("0", "What organ is shown?", "liver", "Liver", "OPEN")]  # the shortcut
    rows += [results_row(str(i), "What organ is shown?", "liver", pred, "OPEN")
             for i, pred in enumerate(SCORE_OF_PRED, start=1)]
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows), encoding="utf-8")
    return folder


def eval_config(folder: Path, *overrides: str):
    return compose(config_name="eval/metrics_eval_defaults", overrides=[
        f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null", *overrides])


def test_agreement_with_generate_mode_from_the_cache(logprob_server: StandInServer, tmp_path: Path) -> None:
    folder = open_folder(tmp_path)
    server = ["judge.backend=openai", f"judge.base_url={logprob_server.base_url}", "judge.model=stand-in",
              "judge.max_retries=0", "metric_type=[gemma]"]
    run_evaluation(eval_config(folder, *server))  # generate mode fills the cache
    assert logprob_server.requests == 4
    result = run_evaluation(eval_config(folder, *server, "judge.mode=score", "overwrite_judge_files=true"))
    assert result.judge_asked == 4 and logprob_server.requests == 8  # the generate replies came from the cache
    body = logprob_server.bodies[-1]
    assert body["messages"][-1] == {"role": "assistant", "content": REPLY_PREFIX}
    assert body["logprobs"] is True and body["continue_final_message"] is True
    summary, *rows = json.loads((folder / "gemma_metrics.json").read_text(encoding="utf-8"))
    assert summary["mode"] == "score" and summary["n_failures"] == 0
    assert summary["judge_identity"] == "stand-in (openai, score mode, reply prefix {\"score\":)"
    assert [row["score"] for row in rows] == [5.0, 2.0, 4.0, 1.0, 4.0]
    # row "the spleen": scores 2 (-0.1) and 1 (-2.1): p(2) = 1 / (1 + e^-2)
    assert rows[1]["score_probability"] == pytest.approx(1 / (1 + math.exp(-2)))
    assert rows[1]["score_mean"] == pytest.approx(2 - math.exp(-2) / (1 + math.exp(-2)))
    # pairs (score, generate) without the shortcut row: (2,2) (4,4) (1,1) (4,5); quadratic kappa by hand:
    # sum w*O = 1; marginals score {1:1, 2:1, 4:2}, generate {1,2,4,5: 1 each}; sum w*E = 68 / 4 = 17
    assert summary["agreement"] == {"with": "stand-in (openai, greedy, max_new_tokens=64)", "source": "cached",
                                    "n_compared": 4, "share_equal": 0.75,
                                    "kappa_quadratic": pytest.approx(1 - 1 / 17)}


def test_a_server_without_logprobs_gets_a_clear_error(tmp_path: Path) -> None:
    server = StandInServer(Behaviour(reply=generated_reply))
    try:
        backend = OpenAIServerBackend(server.base_url, "stand-in", max_retries=0)
        prompt = load_prompt(OPEN, "v1")
        with pytest.raises(ConfigError, match="returned no log-probabilities; judge.mode=score needs a server"):
            backend.score([prompt.messages("q", "liver", "kidney")], REPLY_PREFIX, RUBRICS[OPEN].continuations)
    finally:
        server.close()


def test_score_mode_evaluation_and_rerun_without_model_calls(gemma_skeleton: Path, tmp_path: Path) -> None:
    folder = open_folder(tmp_path)
    closed = [results_row("c1", "Is this a CT?", "yes", "no", "CLOSED"),
              results_row("c2", "Which side, left or right?", "left", "both", "CLOSED",
                          categories=["left", "right", "both", "none"])]
    rows = json.loads((folder / naming.TEST_RESULTS_FILE).read_text(encoding="utf-8")) + closed
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows), encoding="utf-8")
    cfg = eval_config(folder, f"judge.model_path={gemma_skeleton}", "judge.mode=score", "judge.agreement=off",
                      "judge.batch_size=3")
    hf_backend.cached_backend.cache_clear()
    first = run_evaluation(cfg)
    assert (first.judge_asked, first.judge_shortcut) == (6, 1)
    for name in ("gemma_metrics.json", "gemma_metrics_closed.json"):
        summary, *scored = json.loads((folder / name).read_text(encoding="utf-8"))
        assert summary["n_failures"] == 0 and summary["n_scored"] == summary["n_rows"]
        for row in scored:
            assert row["score"] in RUBRICS[row["rubric"]].scale
            assert row["shortcut"] or 0 < row["score_probability"] <= 1
        assert "agreement" not in summary
    hf_backend.cached_backend.cache_clear()
    again = run_evaluation(cfg)
    assert (again.judge_asked, again.judge_cached) == (0, 6)
    assert hf_backend.cached_backend.cache_info().currsize == 0  # no model was loaded for the rerun


def test_mode_and_agreement_settings_are_checked() -> None:
    base = {"name": "gemma", "backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}
    with pytest.raises(ConfigError, match="judge.mode='sample' is not valid; valid values: generate, score"):
        registry.check_judge_config({**base, "mode": "sample"})
    with pytest.raises(ConfigError, match="judge.agreement='always' is not valid"):
        registry.check_judge_config({**base, "mode": "score", "agreement": "always"})
    score = registry.check_judge_config({**base, "mode": "score"})
    generate = registry.check_judge_config(base)
    assert score.identity != generate.identity == score.generate_identity


def test_agreement_ask_fills_the_missing_generate_replies(logprob_server: StandInServer, tmp_path: Path) -> None:
    folder = open_folder(tmp_path)
    result = run_evaluation(eval_config(
        folder, "judge.backend=openai", f"judge.base_url={logprob_server.base_url}", "judge.model=stand-in",
        "judge.max_retries=0", "metric_type=[gemma]", "judge.mode=score", "judge.agreement=ask"))
    # 4 rows in score mode, the same 4 in generate mode; the shortcut row counted once
    assert (result.judge_asked, result.judge_shortcut, logprob_server.requests) == (8, 1, 8)
    summary, *rows = json.loads((folder / "gemma_metrics.json").read_text(encoding="utf-8"))
    assert summary["agreement"]["source"] == "ask" and summary["agreement"]["n_compared"] == 4
    assert [row["generate_score"] for row in rows] == [None, 2, 4, 1, 5]
