"""Load and fault test: concurrent raters post a few hundred ratings to a real uvicorn server (started with
human_rater_study/serve.py on 127.0.0.1), which is killed (SIGKILL) and restarted once in the middle. Every
acknowledged rating must be stored exactly once, with the last acknowledged score winning."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from sure_vqa import naming
from sure_vqa.rater import selection
from sure_vqa.rater.app import rater_order
from sure_vqa.rater.study import load_study
from tests.helpers.rater_helpers import JUDGE, free_port, make_eval_folder, start_server, stop_server

RATERS = [f"rater{k}" for k in range(5)]
KILL_AFTER_ACKS = 100
MAX_ATTEMPTS = 400  # per request: bounded retries (0.1 s apart) while the server is down
RETRY_PAUSE_S = 0.1


@pytest.mark.slow
def test_acknowledged_ratings_survive_a_killed_server(tmp_path: Path):
    eval_dir, image_root = make_eval_folder(tmp_path, n_open=80)
    settings = selection.SelectionSettings(answer_kind="open", num_questions=60, seed=0, judge=JUDGE)
    study = load_study(selection.create_study(eval_dir, settings, selection.image_folder_resolver(image_root)))
    db_path = tmp_path / "ratings.sqlite"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(study.folder, db_path, port, tmp_path / "run")

    acks: list[tuple[str, str, float, str, int]] = []  # (rater, qid, score, request_id, order of the ack)
    lock = threading.Lock()
    retried = {"count": 0}
    errors: list[str] = []

    def post_until_acknowledged(client: httpx.Client, rater: str, qid: str, score: float, request_id: str) -> None:
        body = {"qid": qid, "score": score, "request_id": request_id}
        for _ in range(MAX_ATTEMPTS):
            try:
                response = client.post(f"/api/studies/{study.study_id}/ratings", json=body)
            except httpx.TransportError:  # refused, reset or cut off: the server is down
                with lock:
                    retried["count"] += 1
                time.sleep(RETRY_PAUSE_S)
                continue
            if response.status_code != 200:
                raise AssertionError(f"{rater} {qid}: HTTP {response.status_code} {response.text}")
            assert response.json()["score"] == score
            with lock:
                acks.append((rater, qid, score, request_id, len(acks)))
            return
        raise AssertionError(f"{rater} {qid}: no answer after {MAX_ATTEMPTS} attempts")

    def rater_session(rater: str) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=10.0) as client:
                assert client.post("/api/login", json={"name": rater}).status_code == 200
                for k, item in enumerate(rater_order(study, rater)):
                    score = float(1 + (k + len(rater)) % 5)
                    post_until_acknowledged(client, rater, item.qid, score, f"{rater}-{k:04d}-a")
                    if k % 10 == 0:  # a changed rating: the second (later acknowledged) score must win
                        post_until_acknowledged(client, rater, item.qid, float(6 - score), f"{rater}-{k:04d}-b")
        except Exception as err:  # noqa: BLE001 - reported to the main thread below
            errors.append(f"{rater}: {err!r}")

    threads = [threading.Thread(target=rater_session, args=(rater,), daemon=True) for rater in RATERS]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while len(acks) < KILL_AFTER_ACKS and time.monotonic() < deadline and not errors:
            time.sleep(0.02)
        assert len(acks) >= KILL_AFTER_ACKS, errors
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        acked_before_restart = len(acks)
        time.sleep(0.5)  # raters keep posting into the dead port meanwhile
        server = start_server(study.folder, db_path, port, tmp_path / "run")
        for thread in threads:
            thread.join(timeout=180)
        assert not any(thread.is_alive() for thread in threads), "a rater thread did not finish"
    finally:
        stop_server(server)

    assert errors == []
    assert retried["count"] > 0 and acked_before_restart < len(acks)  # the kill really hit the traffic
    per_rater = 60 + 6
    assert len(acks) == len(RATERS) * per_rater == 330

    conn = sqlite3.connect(db_path)
    try:
        ratings = conn.execute("SELECT rater, qid, score, revision FROM ratings WHERE study_id = ?",
                               (study.study_id,)).fetchall()
        events = conn.execute("SELECT request_id, rater, qid, score FROM rating_events").fetchall()
    finally:
        conn.close()
    last_ack: dict[tuple[str, str], float] = {}
    for rater, qid, score, _, _ in sorted(acks, key=lambda ack: ack[4]):
        last_ack[(rater, qid)] = score
    assert len(ratings) == len(last_ack) == len(RATERS) * 60  # exactly one row per (rater, question)
    assert {(rater, qid): score for rater, qid, score, _ in ratings} == last_ack
    revisions = {(rater, qid): revision for rater, qid, _, revision in ratings}
    assert sorted(revisions.values()).count(2) == len(RATERS) * 6 and max(revisions.values()) == 2
    # every acknowledged request is in the log exactly once (a retried, already committed one is not repeated)
    assert sorted(request_id for request_id, *_ in events) == sorted(ack[3] for ack in acks)
    assert {(r, q, s) for _, r, q, s in events} == {(r, q, s) for r, q, s, _, _ in acks}
    assert (study.folder / naming.RATER_STUDY_FILE).is_file()
