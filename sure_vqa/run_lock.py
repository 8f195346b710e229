"""One process at a time per run: training of one experiment folder, inference or evaluation of one eval folder.

Two shells, or two Slurm jobs of one grid cell, started on the same run would otherwise both do all the work into
one log, and the first to finish would pull the log from under the second. Each stage takes an exclusive lock in
the folder before any work (`filelock`, an OS-level lock: it is released when its process ends, even by kill -9,
so a crashed run never leaves a stale lock). A second run says who holds the lock and exits with code 2, or, with
`wait_for_lock=true`, waits for it and then carries on (and so skips a run the first one finished).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from sure_vqa import naming
from sure_vqa.config import ConfigError


class RunBusy(ConfigError):
    """Another process holds the run's lock."""


def _holder_text(holder_file: Path) -> str:
    try:
        holder = json.loads(holder_file.read_text(encoding="utf-8"))
        return (f"pid {holder['pid']} on {holder['host']}, since {holder['started']}: "
                f"{' '.join(holder.get('argv') or [])}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


@contextmanager
def run_lock(folder: Path, stage: str, rank: int = 0, wait: bool = False) -> Iterator[None]:
    """Holds `folder`'s lock for `stage` (one lock per rank of a multi-process run) for the block.

    Raises RunBusy, naming the holder, when another process has it and `wait` is False.
    """
    lock_file = folder / naming.run_lock_name(stage, rank)
    holder_file = folder / naming.run_lock_holder_name(stage, rank)
    lock = FileLock(str(lock_file), is_singleton=False)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise
            print(f"waiting for the {stage} run of {folder} that holds its lock ({_holder_text(holder_file)})",
                  file=sys.stderr, flush=True)
            lock.acquire(timeout=-1)
    except Timeout:  # a TimeoutError, so an OSError: caught first
        raise RunBusy(
            f"another {stage} run of {folder} is in progress ({_holder_text(holder_file)}); let it finish, "
            "or rerun with wait_for_lock=true to wait for it and then continue"
        ) from None
    except OSError as err:
        raise ConfigError(f"{folder} cannot be written ({err.strerror or err}); the {stage} stage writes there: "
                          "fix its permissions, or set paths.experiment_root (or eval_dir) to a folder you can "
                          "write") from None
    try:
        holder_file.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "argv": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }), encoding="utf-8")
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()
