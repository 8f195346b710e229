"""Atomic writes: a reader, a parallel job or a crash never sees half a results file, table or report.
Also the one file-content hash that fingerprints and backups use (`file_sha256`).

Each write goes to a temporary file in the target's folder (so the rename stays on one file system) and is
then moved over the target with os.replace, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; results are shared (cluster groups, web servers), so each
# file gets the permissions a plain open() would have given it. Read once: os.umask can only be read by setting it.
_UMASK = _read_umask()


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        err.filename = err.filename or str(path)
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not err.filename:  # a failed write() names no file: the target is meant
            err.filename = str(path)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """A temporary folder beside `target` for a folder written whole and then moved into place with os.replace.

    The caller writes into it and moves it with `move_folder_into_place`; it is removed if the caller did not.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield workdir
    finally:
        if workdir.exists():
            shutil.rmtree(workdir, ignore_errors=True)


def move_folder_into_place(workdir: str | Path, target: str | Path) -> None:
    """os.replace(workdir, target), after giving the folder and everything in it the permissions a plain mkdir
    and open() would have: mkdtemp's 0700 and the 0600 of files some libraries write through temporary files
    would survive the rename and lock colleagues on a shared cluster out of a model folder."""
    workdir = Path(workdir)
    for folder, _, files in os.walk(workdir):
        os.chmod(folder, 0o777 & ~_UMASK)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~_UMASK)
    os.replace(workdir, target)


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks so that a large file is never held in memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
