"""A small OpenAI-compatible chat server on 127.0.0.1 for the judge tests, and test_results.json rows.

The server is real HTTP (stdlib ThreadingHTTPServer), so the `openai` backend is tested through its real client:
retries, timeouts and malformed replies are produced by the server on purpose, and it counts every request and
the most requests it had in flight at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, str]]], str]


def rubric_reply(messages: list[dict[str, str]]) -> str:
    """A well-behaved judge: 4 stars for open rows, 0.5 for two-option rows, 1 for other closed rows."""
    prompt = messages[-1]["content"]
    if "one to five stars" in prompt:
        return '{"score": 4}'
    if "0, 0.5 or 1" in prompt:
        return "```json\n{'score': 0.5}\n```"
    return "score: 1"


def row_input(messages: list[dict[str, str]]) -> dict[str, str]:
    """The row the judge was asked about (the JSON after `Input:` of the last user turn; score mode adds the
    started reply as an assistant turn after it)."""
    user = [m for m in messages if m["role"] == "user"][-1]
    return json.loads(re.split(r"Input:\s*", user["content"])[-1])


# What a server that returns log-probabilities sends for a request: the chat completion's `logprobs.content`
# (one entry per generated token: token, logprob, top_logprobs), given the request's messages.
Logprobs = Callable[[list[dict[str, str]]], list[dict[str, Any]]]


@dataclass
class Behaviour:
    """What the server does: the first `fail_first` requests, and every request after the first `fail_after`, get
    HTTP 500; the first `slow_first` sleep `delay_s` before answering; `malformed` answers 200 with a body that
    is not a chat completion."""

    reply: Reply = rubric_reply
    fail_first: int = 0
    fail_after: int | None = None
    slow_first: int = 0
    delay_s: float = 0.0
    hold_s: float = 0.0  # every request waits this long (to observe concurrency)
    malformed: str | None = None  # "no_choices": a JSON completion without choices; "html": not JSON at all
    logprobs: Logprobs | None = None  # None: the server ignores `logprobs` (as a server without them does)


@dataclass
class StandInServer:
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    asked: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every answered request's JSON body

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests += 1
                    number = server.requests
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(body, number)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body: dict[str, Any], number: int) -> None:
                b = server.behaviour
                if b.hold_s:
                    time.sleep(b.hold_s)
                if number <= b.slow_first:
                    time.sleep(b.delay_s)
                if number <= b.fail_first or (b.fail_after is not None and number > b.fail_after):
                    self._send(500, {"error": {"message": "overloaded"}})
                    return
                if b.malformed == "no_choices":
                    self._send(200, {"id": "x", "object": "chat.completion", "choices": []})
                    return
                if b.malformed == "html":
                    self._send(200, "<html>502 Bad Gateway from a proxy</html>", "text/html")
                    return
                content = b.reply(body["messages"])
                with server._lock:
                    server.asked.append(row_input(body["messages"]))
                    server.bodies.append(body)
                choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": content}}
                if body.get("logprobs") and b.logprobs is not None:
                    choice["logprobs"] = {"content": b.logprobs(body["messages"])}
                self._send(200, {
                    "id": f"cmpl-{number}", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [choice],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

            def _send(self, status: int, payload: dict[str, Any] | str, content_type: str = "application/json") -> None:
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def results_row(qid: str, question: str, gt: str, pred: str, answer_type: str, **extra: Any) -> dict[str, Any]:
    """A test_results.json row with the original SURE-VQA keys."""
    return {"qid": qid, "question": question, "gt": gt, "pred": pred, "answer_type": answer_type,
            "img_name": f"img_{qid}.png", **extra}
