"""Operating-system failures (a full disk, a folder that can't be written) as one line for the user.

A full disk mid-run is not a bug in the program, so it gets no traceback: `config.run_entry` prints what
`describe` returns, which names the path, the free space where it applies, and that nothing finished was
changed (every result file is written to a temporary file and moved into place only when complete, logs and
caches are appended to, so the finished files stay as they were). The libraries report the same failure in
different clothes (an OSError, torch's RuntimeError from its zip writer, safetensors' error, SQLite's "disk is
full"), so each is recognised here and nowhere else.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_OS_ERROR = 1
# The failures that are the machine's, not the program's: reported in one line.
HANDLED_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO,
                  errno.EMFILE, errno.ENFILE}
SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# How a full disk reads when a library wraps it in its own exception (torch's zip writer, safetensors, SQLite).
_FULL_DISK_TEXTS = ("no space left on device", "storagefull", "disk is full", "disk quota exceeded",
                    "file write failed")
PATH_ATTRIBUTE = "sure_vqa_path"


def _os_error(err: BaseException) -> tuple[int, str] | None:
    """(errno, description) of an OS failure in `err` or its causes; None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in HANDLED_ERRNOS:
            return current.errno, current.strerror or os.strerror(current.errno)
        text = str(current).lower()
        if isinstance(current, RuntimeError | sqlite3.OperationalError) or type(current).__name__ == "SafetensorError":
            if any(part in text for part in _FULL_DISK_TEXTS):
                return errno.ENOSPC, os.strerror(errno.ENOSPC)
            if "inline_container" in text and "unexpected pos" in text:  # torch's zip writer after a short write
                detail = str(current).splitlines()[0].strip()
                return errno.ENOSPC, f"a write came up short, most often a full disk (torch: {detail})"
        current = current.__cause__ or current.__context__
    return None


def _path_of(err: BaseException) -> str | None:
    current: BaseException | None = err
    while current is not None:
        path = getattr(current, PATH_ATTRIBUTE, None) or (current.filename if isinstance(current, OSError) else None)
        if path:
            return str(path)
        current = current.__cause__ or current.__context__
    return None


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system that holds `path` (its nearest existing folder)."""
    current = Path(path).absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    try:
        return shutil.disk_usage(current).free
    except OSError:
        return None


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def describe(err: BaseException) -> str | None:
    """The one-line message for an OS failure anywhere in `err`'s chain; None when it is not one."""
    found = _os_error(err)
    if found is None:
        return None
    code, reason = found
    path = _path_of(err)
    where = f"cannot write {path}" if path else "a file could not be written"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = f"cannot write or read {path}" if path else "a file could not be written or read"
    details = reason
    if code in SPACE_ERRNOS and path:
        free = free_bytes(path)
        if free is not None:
            details += f"; {_size(free)} free on that file system"
    advice = ("free some space" if code in SPACE_ERRNOS else "fix the permissions or choose another folder"
              if code in (errno.EACCES, errno.EPERM, errno.EROFS) else "fix the cause")
    return (f"{where} ({details}). Nothing finished was changed: results are moved into place only when "
            f"complete. {advice[0].upper()}{advice[1:]} and rerun the same command; it continues where it stopped")


@contextmanager
def writing_to(path: str | Path) -> Iterator[None]:
    """Names `path` in the message of an OS failure raised in the block without a file name of its own (a
    write() that fails on a full disk says only "No space left on device")."""
    try:
        yield
    except BaseException as err:
        if _os_error(err) is not None and _path_of(err) is None:
            try:
                setattr(err, PATH_ATTRIBUTE, str(path))
            except AttributeError:  # an exception type that takes no attributes: reported without the path
                pass
        raise
