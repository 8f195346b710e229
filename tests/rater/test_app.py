"""The rating app's API on a real study folder and database (FastAPI's TestClient runs the real app in-process):
login and rater codes, per-rater order and privacy, security (path traversal, off-scale scores, writing under
another rater's name), and the export."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sure_vqa import naming
from sure_vqa.config import ConfigError
from sure_vqa.rater import selection
from sure_vqa.rater.app import COOKIE_NAME, create_app, rater_order
from sure_vqa.rater.db import RatingStore
from sure_vqa.rater.export import export_ratings
from sure_vqa.rater.study import Study, load_study
from tests.helpers.rater_helpers import JUDGE, make_eval_folder


@pytest.fixture()
def studies(tmp_path: Path) -> dict[str, Study]:
    eval_dir, image_root = make_eval_folder(tmp_path)
    resolver = selection.image_folder_resolver(image_root)
    made = {}
    for kind in naming.ANSWER_KINDS:
        settings = selection.SelectionSettings(answer_kind=kind, num_questions=12, seed=0, judge=JUDGE)
        made[kind] = load_study(selection.create_study(eval_dir, settings, resolver))
    return made


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ratings.sqlite"


@pytest.fixture()
def app(studies, db_path):
    return create_app(list(studies.values()), RatingStore(db_path))


def login(app, name: str, code: str | None = None) -> tuple[TestClient, dict]:
    client = TestClient(app)
    response = client.post("/api/login", json={"name": name, "code": code})
    assert response.status_code == 200, response.text
    return client, response.json()


def rate(client: TestClient, study: Study, qid: str, score: object, request_id: str):
    return client.post(f"/api/studies/{study.study_id}/ratings",
                       json={"qid": qid, "score": score, "request_id": request_id})


def db_rows(db_path: Path) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT study_id, rater, qid, score FROM ratings ORDER BY 1, 2, 3").fetchall()
    finally:
        conn.close()


# --- what a rater sees ---------------------------------------------------------------------------


def test_items_hold_what_a_rater_needs_and_nothing_about_the_model(app, studies):
    client, _ = login(app, "alice")
    study = studies["open"]
    payload = client.get(f"/api/studies/{study.study_id}/items").json()
    assert payload["total"] == 12 and payload["rated"] == 0
    assert set(payload["scales"]) == {"open"}
    assert [o["value"] for o in payload["scales"]["open"]["options"]] == [1, 2, 3, 4, 5]
    item = payload["items"][0]
    assert set(item) == {"position", "qid", "question", "gt", "pred", "scale", "image_url", "score"}
    text = json.dumps(payload)
    assert "judge" not in text and "eval" not in text and "DEMO_val_all" not in text and "img_" not in text
    image = client.get(item["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == (study.folder / study.item(item["qid"]).image).read_bytes()


def test_order_is_shuffled_per_rater_and_stable(app, studies):
    study = studies["open"]
    alice, _ = login(app, "alice")
    bob, _ = login(app, "bob")
    order_a = [i["qid"] for i in alice.get(f"/api/studies/{study.study_id}/items").json()["items"]]
    order_b = [i["qid"] for i in bob.get(f"/api/studies/{study.study_id}/items").json()["items"]]
    assert sorted(order_a) == sorted(order_b) == sorted(item.qid for item in study.items)
    assert order_a != order_b
    assert order_a == [item.qid for item in rater_order(study, "alice")]  # same on every call and restart


def test_a_rater_sees_only_own_scores(app, studies, db_path):
    study = studies["open"]
    alice, _ = login(app, "alice")
    bob, _ = login(app, "bob")
    qids = [item.qid for item in study.items]
    assert rate(alice, study, qids[0], 2, "alice-0001").status_code == 200
    assert rate(bob, study, qids[1], 5, "bob-000001").status_code == 200
    seen_by_bob = {i["qid"]: i["score"] for i in bob.get(f"/api/studies/{study.study_id}/items").json()["items"]}
    assert seen_by_bob[qids[0]] is None and seen_by_bob[qids[1]] == 5
    assert db_rows(db_path) == [(study.study_id, "alice", qids[0], 2.0), (study.study_id, "bob", qids[1], 5.0)]


def test_changing_a_rating_updates_the_one_row(app, studies, db_path):
    study = studies["open"]
    client, _ = login(app, "alice")
    qid = study.items[3].qid
    first = rate(client, study, qid, 1, "req-change-1").json()
    second = rate(client, study, qid, 4, "req-change-2").json()
    assert (first["revision"], second["revision"], second["score"], second["rated"]) == (1, 2, 4.0, 1)
    assert db_rows(db_path) == [(study.study_id, "alice", qid, 4.0)]


# --- login and rater codes -----------------------------------------------------------------------


def test_a_taken_name_needs_its_rater_code(app, studies):
    _, first = login(app, "Alice")
    assert first["new"] and first["rater"] == "alice" and len(first["code"]) >= 20
    stranger = TestClient(app)
    refused = stranger.post("/api/login", json={"name": "alice"})
    assert refused.status_code == 403 and "rater code" in refused.json()["detail"]
    wrong = stranger.post("/api/login", json={"name": "alice", "code": "guess"})
    assert wrong.status_code == 403
    again, second = login(app, "alice", first["code"])  # another browser, with the code
    assert not second["new"] and second["code"] is None
    assert again.get("/api/session").json() == {"rater": "alice"}


def test_bad_login_names_are_refused(app):
    response = TestClient(app).post("/api/login", json={"name": "../../etc"})
    assert response.status_code == 422 and "rater name" in response.json()["detail"]


# --- security ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image_name",
    [
        "..%2Fstudy.json",
        "..%2F..%2Ftest_results.json",
        "%2e%2e%2f%2e%2e%2fgemma_metrics.json",
        "study.json",
        "ratings.sqlite",
        "%2Fetc%2Fpasswd",
        "..%5C..%5Cstudy.json",
        "images%2F..%2Fstudy.json",
    ],
)
def test_the_image_route_serves_only_the_studys_images(app, studies, image_name):
    client, _ = login(app, "alice")
    response = client.get(f"/api/studies/{studies['open'].study_id}/images/{image_name}")
    assert response.status_code == 404
    assert b"qid" not in response.content


def test_raw_traversal_paths_never_reach_a_file(app, studies):
    client, _ = login(app, "alice")
    study = studies["open"]
    for path in [f"/api/studies/{study.study_id}/images/../../study.json", "/static/../study.py",
                 "/static/..%2F..%2Fconfig.py", "/static/%2e%2e/app.py"]:
        response = client.get(path)
        assert response.status_code == 404, path
    # one study's images are not served under another study's id
    open_image = Path(study.items[0].image).name
    closed_names = {Path(i.image).name for i in studies["closed"].items}
    if open_image not in closed_names:
        assert client.get(f"/api/studies/{studies['closed'].study_id}/images/{open_image}").status_code == 404


def test_images_need_a_login(app, studies):
    item = studies["open"].items[0]
    url = f"/api/studies/{studies['open'].study_id}/images/{Path(item.image).name}"
    assert TestClient(app).get(url).status_code == 401


@pytest.mark.parametrize("score", [0, 6, -1, 2.5, 3.0001, "3", None, True, [3], {"value": 3}, 1e308])
def test_scores_off_the_open_scale_are_refused(app, studies, db_path, score):
    client, _ = login(app, "alice")
    response = rate(client, studies["open"], studies["open"].items[0].qid, score, "req-off-scale")
    assert response.status_code == 422
    assert db_rows(db_path) == []


def test_nan_and_infinity_are_refused(app, studies, db_path):
    client, _ = login(app, "alice")
    study = studies["open"]
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"qid": "{study.items[0].qid}", "score": {literal}, "request_id": "req-nan-0001"}}'
        response = client.post(f"/api/studies/{study.study_id}/ratings", content=body,
                               headers={"content-type": "application/json"})
        assert response.status_code == 422, literal
    assert db_rows(db_path) == []


def test_closed_questions_take_their_own_scale(app, studies, db_path):
    client, _ = login(app, "alice")
    study = studies["closed"]
    yes_no = next(i for i in study.items if i.scale == "closed")
    two_option = next(i for i in study.items if i.scale == "two_option")
    assert rate(client, study, yes_no.qid, 0.5, "req-closed-1").status_code == 422
    assert rate(client, study, yes_no.qid, 2, "req-closed-2").status_code == 422
    assert rate(client, study, yes_no.qid, 1, "req-closed-3").status_code == 200
    assert rate(client, study, two_option.qid, 0.5, "req-closed-4").status_code == 200
    assert sorted(r[3] for r in db_rows(db_path)) == [0.5, 1.0]


def test_nobody_writes_under_another_raters_name(app, studies, db_path):
    study = studies["open"]
    qid = study.items[0].qid
    alice, alice_login = login(app, "alice")
    _, bob_login = login(app, "bob")
    anonymous = TestClient(app)
    assert rate(anonymous, study, qid, 3, "req-anon-001").status_code == 401
    forged = TestClient(app)
    forged.cookies.set(COOKIE_NAME, f"bob.{alice_login['code']}")  # alice's token with bob's name
    assert rate(forged, study, qid, 3, "req-forged-1").status_code == 401
    bare_name = TestClient(app)
    bare_name.cookies.set(COOKIE_NAME, "bob")
    assert rate(bare_name, study, qid, 3, "req-forged-2").status_code == 401
    # a rater field in the body is refused, not used
    body = {"qid": qid, "score": 3, "request_id": "req-field-01", "rater": "bob"}
    assert alice.post(f"/api/studies/{study.study_id}/ratings", json=body).status_code == 422
    # logging in as bob needs bob's code
    assert alice.post("/api/login", json={"name": "bob", "code": alice_login["code"]}).status_code == 403
    assert db_rows(db_path) == []
    # and with it, the write is bob's
    bob, _ = login(app, "bob", bob_login["code"])
    assert rate(bob, study, qid, 3, "req-bob-0001").status_code == 200
    assert db_rows(db_path) == [(study.study_id, "bob", qid, 3.0)]


def test_writes_must_be_json_and_name_a_question_of_the_study(app, studies):
    client, _ = login(app, "alice")
    study = studies["open"]
    form = client.post(f"/api/studies/{study.study_id}/ratings",
                       content=f"qid={study.items[0].qid}&score=3&request_id=req-form-001",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert rate(client, study, "not-a-qid", 3, "req-qid-0001").status_code == 404
    assert rate(client, studies["closed"], study.items[0].qid, 3, "req-qid-0002").status_code == 404
    assert client.post("/api/studies/nope/ratings", json={"qid": "x", "score": 3, "request_id": "req-qid-0003"}
                       ).status_code == 404


def test_responses_carry_a_strict_content_security_policy(app):
    response = TestClient(app).get("/")
    assert response.status_code == 200 and "SURE-VQA rater study" in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "http" not in response.text.replace("http-equiv", "")  # no external assets


def test_duplicate_study_ids_are_refused(studies, db_path):
    with pytest.raises(ConfigError, match="share study_id"):
        create_app([studies["open"], studies["open"]], RatingStore(db_path))


# --- export --------------------------------------------------------------------------------------


def test_export_writes_one_file_per_rater_beside_the_metrics(app, studies, db_path):
    study = studies["open"]
    alice, _ = login(app, "alice")
    bob, _ = login(app, "Bob")
    for k, item in enumerate(study.items[:4]):
        rate(alice, study, item.qid, 1 + k, f"req-exp-a{k:03d}")
    rate(bob, study, study.items[0].qid, 5, "req-exp-b0001")
    rate(alice, study, study.items[0].qid, 2, "req-exp-a9999")  # a changed rating: the latest is exported
    written = export_ratings(study, db_path)
    assert [p.name for p in written] == ["human_metrics_open_alice.json", "human_metrics_open_bob.json"]
    assert all(p.parent == study.eval_dir for p in written)
    alice_rows = json.loads(written[0].read_text())
    assert [(r["qid"], r["human_score"]) for r in alice_rows] == [
        (item.qid, score) for item, score in zip(study.items[:4], [2.0, 2.0, 3.0, 4.0], strict=True)]
    assert set(alice_rows[0]) >= {"qid", "question", "gt", "pred", "answer_type", "human_score"}
    assert json.loads(written[1].read_text())[0]["human_score"] == 5.0
    assert export_ratings(study, db_path) == written  # re-exporting our own files is fine


def test_export_never_replaces_ratings_from_elsewhere(app, studies, db_path):
    study = studies["open"]
    client, _ = login(app, "alice")
    rate(client, study, study.items[0].qid, 3, "req-keep-0001")
    foreign = study.eval_dir / naming.human_metrics_file("open", "alice")
    foreign.write_text(json.dumps([{"qid": "o001", "human_score": 4}]))  # e.g. from the original notebook
    with pytest.raises(ConfigError, match="holds ratings that are not from study"):
        export_ratings(study, db_path)
    assert json.loads(foreign.read_text()) == [{"qid": "o001", "human_score": 4}]


def test_a_large_body_is_refused_before_it_is_parsed(app, studies, db_path) -> None:
    """10 MB announced by Content-Length, and 1 MB streamed in chunks without a length: 413 each, nothing stored."""
    client, _ = login(app, "ana")
    study = studies["open"]
    big = json.dumps({"qid": study.items[0].qid, "score": 3, "request_id": "request-0001", "pad": "x" * 10_000_000})
    announced = client.post(f"/api/studies/{study.study_id}/ratings", content=big,
                            headers={"content-type": "application/json"})
    assert announced.status_code == 413 and "at most 16384 bytes" in announced.json()["detail"]
    assert len(announced.content) < 200

    def chunks():
        yield b'{"name": "'
        for _ in range(64):
            yield b"y" * 16_384
        yield b'"}'

    streamed = TestClient(app).post("/api/login", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert db_rows(db_path) == []
    fine = rate(client, study, study.items[0].qid, 3, "request-0002")
    assert fine.status_code == 200, fine.text  # the app still serves normal requests


def test_a_422_reply_does_not_echo_the_input(app, studies) -> None:
    client, _ = login(app, "ben")
    study = studies["open"]
    secret = "s" * 5000
    reply = client.post(f"/api/studies/{study.study_id}/ratings",
                        json={"qid": study.items[0].qid, "score": "five", "request_id": "r1", "note": secret})
    assert reply.status_code == 422
    assert secret not in reply.text and "five" not in reply.text
    detail = reply.json()["detail"]
    assert {tuple(e["loc"]) for e in detail} >= {("body", "note")} and all(set(e) == {"loc", "msg", "type"}
                                                                            for e in detail)


def test_the_apps_own_422_replies_name_the_rule_not_the_input(app, studies) -> None:
    """A bad rater name, a score off the scale and a bad request id: each reply says what is valid, and none
    repeats what was sent (docs/rater_study.md)."""
    name = TestClient(app).post("/api/login", json={"name": "Zq!xw#marker"})
    assert name.status_code == 422 and "marker" not in name.text and "Zq" not in name.text
    assert "1-40 letters, digits" in name.json()["detail"]
    client, _ = login(app, "dana")
    study = studies["open"]
    off_scale = rate(client, study, study.items[0].qid, 97, "request-0101")
    assert off_scale.status_code == 422 and "97" not in off_scale.text
    assert off_scale.json()["detail"].startswith("the score is not on the ")
    bad_id = rate(client, study, study.items[0].qid, 3, "bad id marker!")
    assert bad_id.status_code == 422 and "marker" not in bad_id.text
    unknown = rate(client, study, "qid-marker-123", 3, "request-0102")
    assert unknown.status_code == 404 and "marker" not in unknown.text


@pytest.mark.slow
def test_the_real_server_refuses_large_bodies_and_does_not_echo(studies, tmp_path: Path) -> None:
    """The same limits through uvicorn (serve.py as a real process): a 10 MB and a 50 MB body, one streamed."""
    import httpx

    from tests.helpers.rater_helpers import free_port, start_server, stop_server

    port = free_port()
    server = start_server(studies["open"].folder, tmp_path / "ratings.sqlite", port, tmp_path / "run")
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            login_reply = client.post("/api/login", json={"name": "cy"})
            assert login_reply.status_code == 200
            for size in (10_000_000, 50_000_000):
                reply = client.post("/api/login", content=b'{"name": "' + b"z" * size + b'"}',
                                    headers={"content-type": "application/json"})
                assert reply.status_code == 413 and len(reply.content) < 200
            streamed = client.post("/api/login", content=iter([b'{"name": "'] + [b"z" * 65_536] * 16 + [b'"}']),
                                   headers={"content-type": "application/json"})
            assert streamed.status_code == 413
            secret = "q" * 3000
            invalid = client.post(f"/api/studies/{studies['open'].study_id}/ratings",
                                  json={"qid": secret, "score": 3, "request_id": "request-0001"})
            assert invalid.status_code == 422 and secret not in invalid.text
            assert client.get("/api/session").json() == {"rater": "cy"}  # still serving
    finally:
        stop_server(server)
