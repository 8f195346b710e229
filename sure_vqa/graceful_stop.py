"""Stopping a long stage cleanly on SIGTERM or SIGINT (docs/study.md#preemption-and-requeueing).

Slurm sends SIGTERM before it preempts or times out a job, and a user presses Ctrl-C. Inside a `stoppable()`
block the first such signal only sets a flag; the stage looks at it where stopping loses nothing (after a batch of
answers, a batch of judge replies, an optimiser step), keeps what it has (the prediction log is flushed, the judge
cache holds every reply, training writes a checkpoint) and raises `Stopped` with a sentence saying what was kept.
`config.run_entry` turns that into one line on stderr and exit code 128 + the signal (143 for SIGTERM, 130 for
SIGINT), so the run's lock and its holder file are released on the way out. A second signal of the same kind is
not waited on: the handler that was there before runs (the default one ends the process at once).

Under submitit (hydra/launcher=submitit_slurm) the preemption signal (USR2 unless `SUBMITIT_PREEMPT_SIGNAL` says
otherwise) is treated the same way, and once the stage has stopped, submitit's own handler runs: it requeues the
job, which resumes from what was kept.

Outside a `stoppable()` block nothing is changed, so a command that never looks at the flag still ends on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# submitit's preemption signal: its own environment variable and default (submitit/core/job_environment.py).
SUBMITIT_SIGNAL_ENV = "SUBMITIT_PREEMPT_SIGNAL"
SUBMITIT_DEFAULT_SIGNAL = "USR2"


class Stopped(Exception):
    """A stage stopped on a signal after keeping its work; `kept` says what was kept and how to resume."""

    def __init__(self, signum: int, kept: str) -> None:
        self.signum = signum
        self.kept = kept
        super().__init__(f"stopped by {signal.Signals(signum).name}: {kept}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_state: dict[str, Any] = {"depth": 0, "requested": None, "received": set(), "previous": {}}


def _submitit_signal() -> int | None:
    """The preemption signal when this process is a submitit job (it sets SUBMITIT_EXECUTOR), else None."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    name = os.environ.get(SUBMITIT_SIGNAL_ENV, SUBMITIT_DEFAULT_SIGNAL).upper().removeprefix("SIG")
    return getattr(signal, f"SIG{name}", None)


def _handler(signum: int, frame: Any) -> None:
    _state["received"].add(signum)
    if _state["requested"] == signum:  # the second one: no more waiting
        previous = _state["previous"].get(signum, signal.SIG_DFL)
        signal.signal(signum, previous)
        if callable(previous):
            previous(signum, frame)
        else:
            signal.raise_signal(signum)
        return
    if _state["requested"] is None:
        _state["requested"] = signum


def requested() -> int | None:
    """The signal that asked this process to stop, or None."""
    return _state["requested"]


def check(kept: str | Callable[[], str]) -> None:
    """Raises `Stopped` if a stop was asked for; `kept` (or what it returns) says what was kept."""
    signum = _state["requested"]
    if signum is not None:
        raise Stopped(signum, kept() if callable(kept) else kept)


def handled_signals() -> list[int]:
    signals = [signal.SIGTERM, signal.SIGINT]
    preempt = _submitit_signal()
    if preempt is not None and preempt not in signals:
        signals.append(preempt)
    return signals


@contextmanager
def stoppable() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT (and submitit's preemption signal) ask the stage to stop at its next
    `check`. Nested blocks share one installation. Signals can only be handled in the main thread: elsewhere
    the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state["depth"] == 0:
        _state["requested"] = None
        _state["received"] = set()
        _state["previous"] = {sig: signal.getsignal(sig) for sig in handled_signals()}
        for sig in _state["previous"]:
            signal.signal(sig, _handler)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            for sig, previous in _state["previous"].items():
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)


def hand_over(stopped: Stopped) -> None:
    """After a stop, if submitit's preemption signal was among the signals received (Slurm may send SIGTERM
    too, in either order): runs submitit's handler, which checkpoints the job's arguments and requeues it (and
    exits). Does nothing otherwise."""
    preempt = _submitit_signal()
    previous = _state["previous"].get(preempt) if preempt is not None else None
    if preempt in _state["received"] and callable(previous):
        previous(preempt, None)
