"""DataLoader workers that end with their parent.

A worker of torch's DataLoader notices a dead parent only when it next waits for work (every few seconds, and
not while it is busy), so a training or inference process killed with SIGKILL left its workers running, each
holding its share of memory (about 800 MB in the probe). On Linux the kernel can send a process a signal when
its parent dies (prctl PR_SET_PDEATHSIG); each worker asks for SIGKILL that way as its first act. torch has no
setting for this and no well-kept package wraps prctl for a worker, hence ctypes. Elsewhere the workers keep
torch's own watchdog.

Workers also get SIGTERM and SIGINT back to their defaults: they inherit the parent's graceful-stop handler
(sure_vqa.graceful_stop), which would make a worker ignore the SIGTERM Slurm sends to every process of a job.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Asks the kernel to send `signum` to this process when its parent dies; False where it can't (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class DieWithParent:
    """A DataLoader `worker_init_fn` (picklable) that ties the worker's life to the process that created the
    loader, then runs the `then` init function it wraps (the Trainer's worker seeding, for example)."""

    def __init__(self, then: Callable[[int], Any] | None = None) -> None:
        self.parent_pid = os.getpid()
        self.then = then

    def __call__(self, worker_id: int) -> None:
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != self.parent_pid:  # the parent died before the request was made
            os._exit(1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent handles it
        if self.then is not None:
            self.then(worker_id)
