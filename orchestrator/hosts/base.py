"""The `Host` interface: the only code that knows whether a machine is this one or remote.

Everything else (deploy, run, facts) talks to machines through these methods, so
loopback mode and two-machine mode share all other logic. What differs between machines
is asked of the host as a capability (`python`, `provide_file`), never by testing which
kind of host it is.
"""

from __future__ import annotations

import shlex
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class CommandResult:
    """What one finished command did."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    wall_seconds: float
    cpu_seconds: float | None = None  # user+sys of the command and its children, when known

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0


def last_line(text: str) -> str:
    """The last line of a command's output, to quote in an error (`no output` if none)."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def describe_exit(status: int | None) -> str:
    """How a process ended, to follow its name: `exited with status 3`, or `was killed by
    SIGSEGV (signal 11)` for the negative statuses both hosts report for a signal."""
    if status is None:
        return "ended without an exit status"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by {name} (signal {-status})"
    return f"exited with status {status}"


def pinned(argv: Sequence[str], cpus: Sequence[int] | None) -> list[str]:
    """Prefix argv with taskset so it runs only on `cpus` (taskset execs, keeping the PID)."""
    if not cpus:
        return list(argv)
    return ["taskset", "-c", ",".join(str(cpu) for cpu in cpus), *argv]


class Host(ABC):
    """A machine orch drives: run commands, move files, start and stop pinned processes."""

    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.address = address

    @property
    @abstractmethod
    def python(self) -> str:
        """The command that runs Python 3 on this host (for `python -m ziglang` and probes)."""

    @abstractmethod
    def describe(self) -> str:
        """A short label for messages, e.g. `local` or `target1 (10.0.0.2)`."""

    @abstractmethod
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 120.0,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        cpus: Sequence[int] | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run a command to completion (killed after `timeout` seconds).

        With check=True a non-zero exit raises HostError naming the host and the command.
        """

    @abstractmethod
    def put_file(self, local: Path, remote: str) -> None:
        """Copy a local file and its mode to `remote` (parent directories are created);
        `remote` never holds a part of the file."""

    @abstractmethod
    def get_file(self, remote: str, local: Path) -> None:
        """Copy the host's file `remote` and its mode to `local`; `local` holds the old
        content or the whole new one, never a part."""

    @abstractmethod
    def provide_file(self, local: Path, remote: str) -> str:
        """Make the bundled file `local` available on the host and return its path there.

        `remote` is where it goes if it has to be copied; a host that sees this machine's
        files may return `local` itself.
        """

    @abstractmethod
    def read_text(self, path: str) -> str:
        """Return the content of a text file on the host."""

    @abstractmethod
    def write_text(self, path: str, text: str) -> None:
        """Write a text file on the host (parent directories are created)."""

    @abstractmethod
    def expand(self, path: str) -> str:
        """Expand `~` in a path as the host's user sees it."""

    @abstractmethod
    def start_background(
        self,
        argv: Sequence[str],
        *,
        log_path: str,
        cpus: Sequence[int] | None = None,
        cwd: str | None = None,
    ) -> int:
        """Start a long-running process pinned to `cpus`, output to `log_path`; return its PID."""

    @abstractmethod
    def exit_status(self, pid: int) -> int | None:
        """The exit status of a process started here, or None while it still runs."""

    @abstractmethod
    def stop(self, pid: int, *, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """Stop a process by PID: SIGTERM, then SIGKILL after `grace` s. Return its status."""

    @abstractmethod
    def running_children(self) -> list[int]:
        """PIDs started here and not yet stopped (for cleanup on interruption)."""

    @abstractmethod
    def tcp_probe(self, address: str, port: int, timeout: float = 1.0) -> bool:
        """True when a TCP connection to address:port succeeds from this host."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for most hosts
        """Release connections held to the host."""


def failure_message(host: Host, result: CommandResult) -> str:
    """The one-line error for a command that exited non-zero: host, command, last line."""
    detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
    tail = detail[-1] if detail else "no output"
    return f"{host.describe()}: {shlex.join(result.argv)} exited {result.exit_code}: {tail}"
