"""Scoring rows with the judge: the shortcut, failure counting, the on-disk cache and resuming, through the real
`openai` backend and a stand-in server on 127.0.0.1 that counts what it is asked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sure_vqa.config import DataError
from sure_vqa.evaluate.judge.backends import JudgeBackend, JudgeBackendError
from sure_vqa.evaluate.judge.backends.openai_server import OpenAIServerBackend
from sure_vqa.evaluate.judge.cache import JudgeCache, fingerprint
from sure_vqa.evaluate.judge.rubrics import CLOSED, OPEN, TWO_OPTION, Prompt, load_prompt
from sure_vqa.evaluate.judge.scoring import JudgeItem, JudgeRunStats, score_items, summarize
from tests.helpers.judge_helpers import Behaviour, StandInServer, row_input, rubric_reply

IDENTITY = "stand-in (openai, greedy, max_new_tokens=64)"
PROMPTS = {kind: load_prompt(kind, "v1") for kind in (OPEN, CLOSED, TWO_OPTION)}


class Factory:
    """Builds the real backend on demand and counts how often the scorer needed one."""

    def __init__(self, server: StandInServer) -> None:
        self.server = server
        self.calls = 0

    def __call__(self) -> JudgeBackend:
        self.calls += 1
        return OpenAIServerBackend(self.server.base_url, "stand-in", max_retries=0, concurrency=2)


def items() -> list[JudgeItem]:
    return [
        JudgeItem("1", "What organ is shown?", "liver", "Liver.", "OPEN", OPEN),  # shortcut
        JudgeItem("2", "What organ is shown?", "liver", "the liver", "OPEN", OPEN),
        JudgeItem("3", "Is there a lesion?", "yes", "yes, there is", "CLOSED", CLOSED),
        JudgeItem("4", "Which side, left or right?", "left", "both", "CLOSED", TWO_OPTION),
        JudgeItem("5", "What organ is shown?", "liver", "the liver", "OPEN", OPEN),  # same as qid 2
    ]


def run(cache: JudgeCache, factory: Factory, rows: list[JudgeItem] | None = None, identity: str = IDENTITY,
        prompts: dict[str, Prompt] = PROMPTS, batch_size: int = 2) -> tuple[list, JudgeRunStats]:
    stats = JudgeRunStats()
    judgments = score_items(rows or items(), prompts, identity, cache, factory, batch_size, stats)
    return judgments, stats


def test_shortcut_scores_and_asks_once_per_distinct_row(server: StandInServer, tmp_path: Path) -> None:
    factory = Factory(server)
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        judgments, stats = run(cache, factory)
    assert [j.score for j in judgments] == [5.0, 4.0, 1.0, 0.5, 4.0]
    assert [j.shortcut for j in judgments] == [True, False, False, False, False]
    assert judgments[0].judge_reply is None and judgments[1].judge_reply == '{"score": 4}'
    assert [j.prompt_version for j in judgments] == ["open.v1", "open.v1", "closed.v1", "two_option.v1", "open.v1"]
    # the shortcut row is never sent; qid 5 repeats qid 2's question/gt/pred and is asked once
    assert server.requests == 3
    assert sorted(a["pred"] for a in server.asked) == ["both", "the liver", "yes, there is"]
    assert (stats.shortcut, stats.cached, stats.asked) == (1, 0, 3)


def test_failures_are_counted_not_zeroed(server: StandInServer, tmp_path: Path) -> None:
    def reply(messages: list[dict[str, str]]) -> str:
        pred = row_input(messages)["pred"]
        return {"the liver": "I think it deserves 4 stars", "both": '{"score": 3}'}.get(pred, rubric_reply(messages))

    server.behaviour = Behaviour(reply=reply)
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        judgments, _ = run(cache, Factory(server))
    assert [j.score for j in judgments] == [5.0, None, 1.0, None, None]
    assert judgments[1].failure == "no score field"
    assert judgments[3].failure == "score 3 is not on the scale 0, 0.5, 1"
    summary = summarize(judgments, "stand-in", IDENTITY, "mixed")
    assert summary == {
        "avg_score": (5.0 + 1.0) / 2, "n_rows": 5, "n_scored": 2, "n_failures": 3, "n_shortcut": 1,
        "judge": "stand-in", "judge_identity": IDENTITY, "prompt_version": "mixed",
    }


def test_second_run_asks_the_judge_nothing(server: StandInServer, tmp_path: Path) -> None:
    factory = Factory(server)
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        first, _ = run(cache, factory)
    asked = server.requests
    with JudgeCache(tmp_path / "cache.sqlite") as cache:  # a new process would open the file like this
        second, stats = run(cache, factory)
    assert server.requests == asked  # zero requests the second time ...
    assert factory.calls == 1  # ... and no backend was even built
    assert (stats.cached, stats.asked) == (3, 0)
    assert second == first


def test_cache_key_covers_judge_identity_and_prompt(server: StandInServer, tmp_path: Path) -> None:
    factory = Factory(server)
    rows = [items()[1]]
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        run(cache, factory, rows)
        run(cache, factory, rows, identity="another judge")
        edited = dict(PROMPTS)
        edited[OPEN] = Prompt(PROMPTS[OPEN].rubric, "v1", PROMPTS[OPEN].text.replace("Input:", "Be strict.\nInput:"))
        run(cache, factory, rows, prompts=edited)  # same version name, edited text: not reused
        run(cache, factory, rows)  # the original again: cached
        assert len(cache) == 3
    assert server.requests == 3


def test_an_interrupted_run_resumes_from_the_cache(server: StandInServer, tmp_path: Path) -> None:
    # batches of 2: the first batch is answered and stored, then the server fails for good
    rows = [JudgeItem(str(i), "What organ is shown?", "liver", f"organ {i}", "OPEN", OPEN) for i in range(4)]
    factory = Factory(server)
    server.behaviour = Behaviour(fail_after=2)
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        with pytest.raises(JudgeBackendError, match="InternalServerError"):
            run(cache, factory, rows)
        assert len(cache) == 2
    server.behaviour = Behaviour()
    before = server.requests
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        judgments, stats = run(cache, factory, rows)
    assert server.requests - before == 2  # only the two rows that were not answered
    assert (stats.cached, stats.asked) == (2, 2)
    assert [j.score for j in judgments] == [4.0] * 4


def test_cache_fingerprint_is_stable_and_separates_fields() -> None:
    a = fingerprint("open.v1", "h", "judge", "q", "gt", "pred")
    assert a == fingerprint("open.v1", "h", "judge", "q", "gt", "pred")
    assert a != fingerprint("open.v1", "h", "judge", "q", "gtp", "red")  # no ambiguity at field borders
    assert len(a) == 64


def test_unreadable_cache_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "judge_cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataError, match="judge_cache.sqlite is not a readable SQLite file"):
        JudgeCache(path)
    assert path.read_bytes().startswith(b"this is not a database")  # left as it was
    sqlite3.connect(tmp_path / "fine.sqlite").close()
