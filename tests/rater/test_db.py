"""The ratings database (sure_vqa.rater.db): one row per (study, rater, question), idempotent retries."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from sure_vqa.rater.db import (
    RaterNameError,
    RaterTaken,
    RatingStore,
    RequestConflict,
    canonical_rater_name,
)


def rows(path, table: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
    finally:
        conn.close()


def test_upsert_keeps_one_row_and_counts_revisions(tmp_path):
    store = RatingStore(tmp_path / "r.sqlite")
    store.register_rater("alice")
    first = store.save_rating("s1", "alice", "q1", 3.0, "req-00001")
    second = store.save_rating("s1", "alice", "q1", 5.0, "req-00002")
    store.save_rating("s2", "alice", "q1", 1.0, "req-00003")  # another study: its own row
    assert (first.score, first.revision, second.score, second.revision) == (3.0, 1, 5.0, 2)
    ratings = rows(tmp_path / "r.sqlite", "ratings")
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in ratings] == [("s1", "alice", "q1", 5.0, 2),
                                                                 ("s2", "alice", "q1", 1.0, 1)]
    assert len(rows(tmp_path / "r.sqlite", "rating_events")) == 3  # the history of changes is kept
    assert store.ratings_of("s1", "alice") == {"q1": 5.0}


def test_a_retried_request_is_stored_once_and_a_reused_id_is_refused(tmp_path):
    store = RatingStore(tmp_path / "r.sqlite")
    store.register_rater("alice")
    store.save_rating("s", "alice", "q1", 2.0, "req-aaaaa")
    store.save_rating("s", "alice", "q1", 4.0, "req-bbbbb")
    retried = store.save_rating("s", "alice", "q1", 2.0, "req-aaaaa")  # a late retry of the first request
    assert retried.duplicate and retried.score == 4.0 and retried.revision == 2  # it does not undo the change
    with pytest.raises(RequestConflict):
        store.save_rating("s", "alice", "q2", 2.0, "req-aaaaa")
    with pytest.raises(ValueError, match="request_id"):
        store.save_rating("s", "alice", "q1", 2.0, "short")
    assert len(rows(tmp_path / "r.sqlite", "rating_events")) == 2


def test_ratings_survive_reopening_and_the_journal_is_wal(tmp_path):
    path = tmp_path / "r.sqlite"
    store = RatingStore(path)
    store.register_rater("bob")
    store.save_rating("s", "bob", "q9", 1.0, "req-ccccc")
    reopened = RatingStore(path)
    assert reopened.ratings_of("s", "bob") == {"q9": 1.0}
    assert reopened.raters_in("s") == ["bob"] and reopened.raters_in("other") == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_raters_have_unique_names_and_secret_tokens(tmp_path):
    store = RatingStore(tmp_path / "r.sqlite")
    token = store.register_rater("Dr  Alice")
    assert store.verify_rater("dr_alice", token)
    assert not store.verify_rater("dr_alice", token + "x")
    assert not store.verify_rater("nobody", token)
    with pytest.raises(RaterTaken):
        store.register_rater("dr alice")
    stored = rows(tmp_path / "r.sqlite", "raters")[0]
    assert token not in stored  # only the token's hash is stored


@pytest.mark.parametrize(("name", "canonical"), [("Alice", "alice"), ("  Dr   Bob ", "dr_bob"), ("c-3_po", "c-3_po")])
def test_canonical_rater_names(name, canonical):
    assert canonical_rater_name(name) == canonical


@pytest.mark.parametrize("name", ["", "   ", "../etc", "a/b", "x" * 41, "_lead", "é"])
def test_rater_names_that_would_make_bad_file_names_are_refused(name):
    with pytest.raises(RaterNameError, match="rater name"):
        canonical_rater_name(name)


def test_concurrent_writers_do_not_lose_ratings(tmp_path):
    store = RatingStore(tmp_path / "r.sqlite")
    raters = [f"r{k}" for k in range(4)]
    for rater in raters:
        store.register_rater(rater)

    def write(rater: str) -> None:
        for q in range(25):
            store.save_rating("s", rater, f"q{q}", float(1 + q % 5), f"{rater}-req-{q:04d}")

    threads = [threading.Thread(target=write, args=(rater,)) for rater in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for rater in raters:
        assert store.ratings_of("s", rater) == {f"q{q}": float(1 + q % 5) for q in range(25)}
    assert len(rows(tmp_path / "r.sqlite", "rating_events")) == 100
