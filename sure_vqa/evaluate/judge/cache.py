"""An on-disk cache of judge replies, so that a rerun (or a crashed run, resumed) asks the judge nothing twice.

Replies are stored raw, keyed by a fingerprint of everything that determines them: the prompt (version and text
hash), the judge's identity (model and generation settings), the question, the ground truth and the prediction.
Parsing happens on every run, so a parser fix applies to cached replies too. SQLite gives atomic,
crash-safe writes without a server; one file per experiment root (`naming.judge_cache_file`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from sure_vqa import system_errors
from sure_vqa.config import DataError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_replies (
    fingerprint TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    prompt TEXT NOT NULL,
    judge TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def fingerprint(prompt_id: str, prompt_hash: str, judge_identity: str, question: str, gt: str, pred: str) -> str:
    """sha256 over the JSON list of the inputs (JSON, so that no separator can be forged by the texts)."""
    payload = json.dumps([prompt_id, prompt_hash, judge_identity, question, gt, pred], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgeCache:
    """fingerprint -> raw reply, in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60)
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as err:
            if system_errors.describe(err) is not None:  # a full disk, not a damaged file
                setattr(err, system_errors.PATH_ATTRIBUTE, str(self.path))
                raise
            raise DataError(
                f"judge cache {self.path} is not a readable SQLite file ({err}); move it away to start a new cache"
            ) from None

    def get_many(self, fingerprints: Iterable[str]) -> dict[str, str]:
        """The cached replies among `fingerprints`."""
        keys = list(dict.fromkeys(fingerprints))
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT fingerprint, reply FROM judge_replies WHERE fingerprint IN ({marks})"
            found.update(self._db.execute(query, chunk).fetchall())
        return found

    def put_many(self, replies: Mapping[str, str], prompt_ids: Mapping[str, str], judge_identity: str) -> None:
        """Stores replies in one transaction (all or none)."""
        now = time.time()
        with system_errors.writing_to(self.path), self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO judge_replies VALUES (?, ?, ?, ?, ?)",
                [(key, reply, prompt_ids[key], judge_identity, now) for key, reply in replies.items()],
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM judge_replies").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
