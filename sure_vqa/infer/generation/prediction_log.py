"""The resumable log of an inference run: one JSON line per prediction, appended and flushed as it is made.

A log starts with a header line `{"log_header": {"fingerprint": ..., "settings": ...}}`; the fingerprint is a
hash of everything that decides the answers (model and adapter files, split content, prompt, decoding and
image settings; not the batch size, which does not change greedy answers). A restarted run reads the rows of
the logs whose fingerprint matches and skips those questions. A log with another fingerprint is never mixed in
and never deleted: it is renamed aside (`naming.stale_prediction_log_name`) before a fresh log starts.

A process killed mid-write leaves at most one incomplete last line (a line without its newline); readers ignore
it and the writer cuts it off before appending again. Each rank of a data-parallel run writes its own log
(`naming.prediction_log_name(rank)`), so no two processes ever append to the same file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from sure_vqa import naming
from sure_vqa.atomic_io import file_sha256
from sure_vqa.config import DataError

HEADER_KEY = "log_header"
# Files up to this size enter the fingerprint by content (configs, adapters, trainer state); larger ones
# (multi-GB base model shards) by name and size, so fingerprinting stays fast and survives a plain copy.
CONTENT_HASH_LIMIT = 64 * 2**20


def fingerprint(parts: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of `parts` (sorted keys, so dict order does not matter)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def folder_signature(folder: str | Path, content_limit: int = CONTENT_HASH_LIMIT) -> dict[str, str]:
    """The files directly inside a model folder, each as a content hash (small files) or `size:N` (large).

    Sub-folders (eval/, checkpoints, init_weight/) are left out: they do not change the model that is loaded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    signature: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        size = path.stat().st_size
        signature[path.name] = file_sha256(path) if size <= content_limit else f"size:{size}"
    return signature


# --- reading ---------------------------------------------------------------------------------------------------


def _complete_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line that ends with a newline; an unterminated last line is skipped."""
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.endswith("\n"):
                yield number, line


def read_header(path: str | Path) -> dict[str, Any] | None:
    """The header of a log, or None when the file holds no complete line yet (killed while starting)."""
    path = Path(path)
    for number, line in _complete_lines(path):
        try:
            first = json.loads(line)
        except json.JSONDecodeError:
            first = None
        if not isinstance(first, dict) or not isinstance(first.get(HEADER_KEY), dict):
            raise DataError(f"{path} line {number} is not a prediction-log header; move the file away to start fresh")
        return first[HEADER_KEY]
    return None


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The prediction rows of one log (header excluded), in the order they were written."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    for number, line in _complete_lines(path):
        if number == 1:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number} is not valid JSON ({err}); move the file away to start fresh") from err
        if not isinstance(row, dict) or "qid" not in row:
            raise DataError(f"{path} line {number} is not a prediction row (no qid)")
        rows.append(row)
    return rows


def log_files(folder: str | Path) -> list[Path]:
    """Every rank's log in an eval folder."""
    return sorted(Path(folder).glob(naming.PREDICTION_LOG_GLOB))


def completed_rows(folder: str | Path, expected_fingerprint: str) -> dict[str, dict[str, Any]]:
    """qid -> row, over every log in the folder written with this fingerprint (the first row of a qid wins)."""
    done: dict[str, dict[str, Any]] = {}
    for path in log_files(folder):
        header = read_header(path)
        if header is None or header.get("fingerprint") != expected_fingerprint:
            continue
        for row in read_rows(path):
            done.setdefault(str(row["qid"]), row)
    return done


def set_aside_stale_logs(folder: str | Path, expected_fingerprint: str) -> list[tuple[Path, Path]]:
    """Renames every log written with another fingerprint to a stale name; returns (old, new) paths."""
    moved: list[tuple[Path, Path]] = []
    for path in log_files(folder):
        header = read_header(path)
        if header is None:
            if not any(_complete_lines(path)):  # an empty start: nothing to keep
                path.unlink()
            continue
        stale_fingerprint = str(header.get("fingerprint", "unknown"))
        if stale_fingerprint == expected_fingerprint:
            continue
        attempt = 0
        while (target := path.parent / naming.stale_prediction_log_name(stale_fingerprint, attempt)).exists():
            attempt += 1
        os.replace(path, target)
        moved.append((path, target))
    return moved


def remove_logs(folder: str | Path, expected_fingerprint: str) -> None:
    """Deletes this run's logs once their rows are in test_results.json (stale logs stay)."""
    for path in log_files(folder):
        header = read_header(path)
        if header is not None and header.get("fingerprint") == expected_fingerprint:
            path.unlink()


# --- writing ---------------------------------------------------------------------------------------------------


class PredictionLog:
    """One rank's append-only log; use as a context manager.

    Opening an existing log with the same fingerprint continues it (after cutting off an incomplete last line);
    a log with another fingerprint must have been set aside first (`set_aside_stale_logs`).
    """

    def __init__(self, path: str | Path, fingerprint_: str, settings: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint_
        self.settings = dict(settings)
        self._handle: IO[str] | None = None

    def __enter__(self) -> PredictionLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = read_header(self.path) if self.path.exists() else None
        if header is not None and header.get("fingerprint") != self.fingerprint:
            raise DataError(f"{self.path} was written with other settings (fingerprint "
                            f"{header.get('fingerprint')}); it must be set aside before a new run starts")
        if header is None:
            # New (or killed before its header was complete): start it with the header.
            with self.path.open("w", encoding="utf-8") as handle:
                handle.write(json.dumps({HEADER_KEY: {"fingerprint": self.fingerprint, "settings": self.settings}},
                                        sort_keys=True) + "\n")
        else:
            self._cut_incomplete_last_line()
        self._handle = self.path.open("a", encoding="utf-8")
        return self

    def _cut_incomplete_last_line(self) -> None:
        with self.path.open("rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, row: Mapping[str, Any]) -> None:
        """Writes one prediction as one line and flushes it, so a kill loses at most the line being written."""
        if self._handle is None:
            raise RuntimeError("PredictionLog.append outside its `with` block")
        try:
            self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._handle.flush()
        except OSError as err:  # a full disk: name the log (the rows before this one are kept)
            err.filename = err.filename or str(self.path)
            raise

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
