"""Ratings in SQLite: one row per (study, rater, question), every write committed before it is acknowledged.

Why SQLite in WAL mode with synchronous=FULL: a rating is on disk when `save_rating` returns, readers never
block the writer, and a killed server loses nothing that it acknowledged. Each write also lands in an
append-only `rating_events` log keyed by the client's request id, so a retried request (the response was lost
when the server died) is recognised and stored once, and the history of changed ratings is kept.

Raters are identified by a name and a secret token issued at their first login; only the token's SHA-256 is
stored. Every write names the rater from the verified token, never from the request body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = 1
RATER_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS raters (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    study_id TEXT NOT NULL,
    rater TEXT NOT NULL REFERENCES raters(name),
    qid TEXT NOT NULL,
    score REAL NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (study_id, rater, qid)
);
CREATE TABLE IF NOT EXISTS rating_events (
    request_id TEXT PRIMARY KEY,
    study_id TEXT NOT NULL,
    rater TEXT NOT NULL,
    qid TEXT NOT NULL,
    score REAL NOT NULL,
    received_at TEXT NOT NULL
);
"""


class RaterNameError(ValueError):
    """A rater name that cannot be used (it also names the export file)."""


class RaterTaken(Exception):
    """The name belongs to a rater who logged in before; their token is needed."""


class RequestConflict(Exception):
    """A request id that was already used for a different rating."""


@dataclass(frozen=True)
class SavedRating:
    qid: str
    score: float
    revision: int
    updated_at: str
    duplicate: bool  # the request id was seen before: nothing was written again


# What a valid rater name and request id look like (the app's 422 replies say this without the input).
RATER_NAME_RULE = "use 1-40 letters, digits, '-' or '_' (spaces become '_'), starting with a letter or digit"
REQUEST_ID_RULE = "use 8-64 letters, digits, '-' or '_'"


def canonical_rater_name(name: str) -> str:
    """Lower case, inner white space as `_`: the form used in the database and the export file name."""
    canonical = "_".join(str(name).strip().lower().split())
    if not RATER_NAME_PATTERN.match(canonical):
        raise RaterNameError(f"rater name {name!r} is not valid; {RATER_NAME_RULE}")
    return canonical


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class RatingStore:
    """The ratings database of one server. A new connection per call keeps it safe across threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the database file
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple]:
        conn = self._connect()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock is taken up front, so two writers never deadlock."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # --- raters ----------------------------------------------------------------------------------

    def register_rater(self, name: str) -> str:
        """Creates a rater and returns their new secret token; RaterTaken if the name is in use."""
        name = canonical_rater_name(name)
        token = secrets.token_urlsafe(18)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
                raise RaterTaken(name)
            conn.execute(
                "INSERT INTO raters (name, token_sha256, created_at) VALUES (?, ?, ?)",
                (name, _token_hash(token), _now()),
            )
        return token

    def rater_exists(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM raters WHERE name = ?", (name,)))

    def verify_rater(self, name: str, token: str) -> bool:
        """True when `token` is the one issued to `name` (compared in constant time)."""
        rows = self._query("SELECT token_sha256 FROM raters WHERE name = ?", (name,))
        return bool(rows) and hmac.compare_digest(rows[0][0], _token_hash(token))

    # --- ratings ---------------------------------------------------------------------------------

    def save_rating(self, study_id: str, rater: str, qid: str, score: float, request_id: str) -> SavedRating:
        """Stores the rater's score for one question (UPSERT) and returns only after the commit.

        The caller has verified the rater and checked the score against the item's scale.
        """
        if not REQUEST_ID_PATTERN.match(request_id):
            raise ValueError(f"request_id {request_id!r} is not valid; {REQUEST_ID_RULE}")
        now = _now()
        with self._transaction() as conn:
            seen = conn.execute(
                "SELECT study_id, rater, qid, score FROM rating_events WHERE request_id = ?", (request_id,)
            ).fetchone()
            if seen is not None:
                if tuple(seen) != (study_id, rater, qid, float(score)):
                    raise RequestConflict(request_id)
            else:
                conn.execute(
                    "INSERT INTO rating_events (request_id, study_id, rater, qid, score, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (request_id, study_id, rater, qid, float(score), now),
                )
                conn.execute(
                    "INSERT INTO ratings (study_id, rater, qid, score, revision, updated_at) "
                    "VALUES (?, ?, ?, ?, 1, ?) "
                    "ON CONFLICT (study_id, rater, qid) DO UPDATE SET "
                    "score = excluded.score, revision = ratings.revision + 1, updated_at = excluded.updated_at",
                    (study_id, rater, qid, float(score), now),
                )
            row = conn.execute(
                "SELECT score, revision, updated_at FROM ratings WHERE study_id = ? AND rater = ? AND qid = ?",
                (study_id, rater, qid),
            ).fetchone()
        return SavedRating(qid, row[0], row[1], row[2], duplicate=seen is not None)

    def ratings_of(self, study_id: str, rater: str) -> dict[str, float]:
        """One rater's own scores in one study: qid -> score."""
        rows = self._query("SELECT qid, score FROM ratings WHERE study_id = ? AND rater = ?", (study_id, rater))
        return {qid: score for qid, score in rows}

    def ratings_with_times(self, study_id: str, rater: str) -> dict[str, tuple[float, str]]:
        """qid -> (score, time of the last change), for the export."""
        rows = self._query(
            "SELECT qid, score, updated_at FROM ratings WHERE study_id = ? AND rater = ?", (study_id, rater)
        )
        return {qid: (score, updated) for qid, score, updated in rows}

    def raters_in(self, study_id: str) -> list[str]:
        """The raters with at least one rating in the study, sorted."""
        rows = self._query("SELECT DISTINCT rater FROM ratings WHERE study_id = ? ORDER BY rater", (study_id,))
        return [row[0] for row in rows]
