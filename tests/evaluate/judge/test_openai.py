"""The `openai` judge backend against a real HTTP stand-in server on 127.0.0.1: order, bounded concurrency,
retries, timeouts and malformed replies."""

from __future__ import annotations

import json

import pytest

from sure_vqa.evaluate.judge.backends import JudgeBackendError
from sure_vqa.evaluate.judge.backends.openai_server import OpenAIServerBackend
from sure_vqa.evaluate.judge.rubrics import load_prompt
from tests.helpers.judge_helpers import Behaviour, StandInServer, row_input


def conversations(n: int) -> list[list[dict[str, str]]]:
    prompt = load_prompt("open", "v1")
    return [prompt.messages(f"question {i}", "liver", f"pred {i}") for i in range(n)]


def backend(server: StandInServer, **kwargs: object) -> OpenAIServerBackend:
    settings = {"model": "stand-in", "timeout_s": 5.0, "max_retries": 2, "concurrency": 4} | kwargs
    return OpenAIServerBackend(server.base_url, **settings)  # type: ignore[arg-type]


def test_replies_come_back_in_order_with_bounded_concurrency(server: StandInServer) -> None:
    server.behaviour = Behaviour(reply=lambda messages: json.dumps({"echo": row_input(messages)["pred"]}),
                                 hold_s=0.2)
    client = backend(server, concurrency=3)
    replies = client.generate(conversations(9))
    assert [json.loads(r)["echo"] for r in replies] == [f"pred {i}" for i in range(9)]
    assert server.requests == client.requests == 9
    assert 2 <= server.max_in_flight <= 3


def test_server_errors_are_retried(server: StandInServer) -> None:
    server.behaviour = Behaviour(fail_first=2)
    client = backend(server, max_retries=2)
    assert client.generate(conversations(1)) == ['{"score": 4}']
    assert server.requests == 3  # two HTTP 500s, then the answer


def test_server_errors_after_the_last_retry_stop_the_run(server: StandInServer) -> None:
    server.behaviour = Behaviour(fail_first=100)
    client = backend(server, max_retries=1)
    with pytest.raises(JudgeBackendError, match=f"judge server {server.base_url} failed: InternalServerError"):
        client.generate(conversations(1))
    assert server.requests == 2


def test_a_timed_out_request_is_retried(server: StandInServer) -> None:
    server.behaviour = Behaviour(slow_first=1, delay_s=3.0)
    client = backend(server, timeout_s=0.5, max_retries=1)
    assert client.generate(conversations(1)) == ['{"score": 4}']
    assert server.requests == 2


def test_timeouts_after_the_last_retry_stop_the_run(server: StandInServer) -> None:
    server.behaviour = Behaviour(slow_first=100, delay_s=2.0)
    client = backend(server, timeout_s=0.3, max_retries=0)
    with pytest.raises(JudgeBackendError, match="APITimeoutError"):
        client.generate(conversations(1))
    assert server.requests == 1


@pytest.mark.parametrize(("kind", "shown"), [("no_choices", r"choices=\[\]"), ("html", "502 Bad Gateway")])
def test_a_malformed_reply_is_a_backend_error_not_a_score(server: StandInServer, kind: str, shown: str) -> None:
    server.behaviour = Behaviour(malformed=kind)
    with pytest.raises(JudgeBackendError, match=f"malformed reply .*{shown}"):
        backend(server).generate(conversations(1))
    assert server.requests == 1  # a malformed reply is not retried: the server answered, wrongly


def test_an_unreachable_server_is_a_backend_error() -> None:
    srv = StandInServer()
    url = srv.base_url
    srv.close()
    client = OpenAIServerBackend(url, "stand-in", timeout_s=1.0, max_retries=0)
    with pytest.raises(JudgeBackendError, match="APIConnectionError"):
        client.generate(conversations(1))
