"""How a run ends early: SIGTERM/SIGHUP/Ctrl-C raise, so every path stops what it started
by PID; a lost host stops the run cleanly."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from orchestrator.results.rundir import RunDirectory


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived during a run; the message is the signal's name."""


class RunInterrupted(Exception):
    """The run stopped early on a signal; what was measured is in `run_dir` (None when
    the signal came before the run directory existed)."""

    def __init__(self, run_dir: RunDirectory | None, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.run_dir = run_dir
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a death by that signal."""
        return 128 + signal.Signals[self.signal_name].value


class RunStopped(Exception):
    """A host could not be reached any more, so the run stopped; `reason` names it."""

    def __init__(self, run_dir: RunDirectory, reason: str) -> None:
        super().__init__(reason)
        self.run_dir = run_dir
        self.reason = reason


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Interrupted, SIGINT KeyboardInterrupt (even when orch was
    started with SIGINT ignored), so every path stops what it started by PID."""
    handlers = {
        signal.SIGTERM: _raise_interrupted,
        signal.SIGHUP: _raise_interrupted,
        signal.SIGINT: signal.default_int_handler,
    }
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def signal_name(stop: BaseException) -> str:
    """The name of the signal an Interrupted or KeyboardInterrupt stands for."""
    return str(stop) if isinstance(stop, Interrupted) else "SIGINT"
