"""`LocalHost`: this machine, driven with subprocess."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from orchestrator.errors import HostError
from orchestrator.hosts.base import (
    STOP_GRACE_SECONDS,
    CommandResult,
    Host,
    failure_message,
    pinned,
)
from orchestrator.hosts.processes import kill_group

PARTIAL_SUFFIX = ".orch-partial"


class LocalHost(Host):
    """This machine: commands are orch's own children, files are copied in place."""

    def __init__(self, name: str = "local", address: str = "127.0.0.1") -> None:
        super().__init__(name, address)
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def python(self) -> str:
        """The interpreter orch runs on (its venv holds the pinned ziglang and k6)."""
        return sys.executable

    def describe(self) -> str:
        """The host's name."""
        return self.name

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
        """Run a command here; its CPU time comes from wait4's resource usage."""
        full = pinned(argv, cpus)
        full_env = {**os.environ, **env} if env else None
        started = time.monotonic()
        # orch reaps nothing else while this runs, so the delta is this command's CPU.
        cpu_before = _children_cpu_seconds()
        try:
            proc = subprocess.Popen(
                _orphan_guard(full, cwd),
                cwd=cwd,
                env=full_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            if check:
                raise HostError(
                    f"{self.describe()}: cannot run {full[0]}: {exc.strerror}"
                ) from None
            # Like a shell (and SshHost): a program that cannot be started exits 127.
            return CommandResult(
                argv=tuple(full),
                exit_code=127,
                stdout="",
                stderr=f"{full[0]}: {exc.strerror}",
                wall_seconds=time.monotonic() - started,
                cpu_seconds=0.0,
            )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.communicate()
            raise HostError(
                f"{self.describe()}: {shlex.join(full)} did not finish within {timeout:.0f} s"
            ) from None
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
        result = CommandResult(
            argv=tuple(full),
            exit_code=proc.returncode,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            wall_seconds=time.monotonic() - started,
            cpu_seconds=_children_cpu_seconds() - cpu_before,
        )
        if check and not result.ok:
            raise HostError(failure_message(self, result))
        return result

    def put_file(self, local: Path, remote: str) -> None:
        """Copy a file and its mode; the copy gets a fresh mtime, as an upload would."""
        target = Path(self.expand(remote))

        def upload(partial: Path) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, partial)
            shutil.copymode(local, partial)

        _copy_atomically(upload, target, f"cannot upload {local} to {target}", self.describe())

    def get_file(self, remote: str, local: Path) -> None:
        """Copy a file; `local` holds the old content or the whole new one, never a part."""
        local.parent.mkdir(parents=True, exist_ok=True)
        source = self.expand(remote)
        _copy_atomically(
            lambda partial: shutil.copy2(source, partial),
            local,
            f"cannot fetch {remote}",
            self.describe(),
        )

    def provide_file(self, local: Path, remote: str) -> str:
        """This machine already has it: the local path, unchanged (`remote` is unused)."""
        return str(local)

    def read_text(self, path: str) -> str:
        """Read a file."""
        try:
            return Path(self.expand(path)).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise HostError(f"{self.describe()}: cannot read {path}: {exc.strerror}") from None

    def write_text(self, path: str, text: str) -> None:
        """Write a file."""
        target = Path(self.expand(path))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise HostError(f"{self.describe()}: cannot write {path}: {exc.strerror}") from None

    def expand(self, path: str) -> str:
        """Expand ~ for the user running orch."""
        return os.path.expanduser(path)

    def start_background(
        self,
        argv: Sequence[str],
        *,
        log_path: str,
        cpus: Sequence[int] | None = None,
        cwd: str | None = None,
    ) -> int:
        """Start a process in its own session so signals to orch's terminal don't reach it."""
        log_file = Path(self.expand(log_path))
        log_file.parent.mkdir(parents=True, exist_ok=True)
        full = pinned(argv, cpus)
        with log_file.open("wb") as log:
            try:
                proc = subprocess.Popen(
                    _orphan_guard(full, cwd),
                    cwd=cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise HostError(
                    f"{self.describe()}: cannot start {full[0]}: {exc.strerror}"
                ) from None
        self._children[proc.pid] = proc
        return proc.pid

    def exit_status(self, pid: int) -> int | None:
        """Poll a child started by start_background."""
        proc = self._children.get(pid)
        if proc is None:
            raise HostError(f"{self.describe()}: process {pid} was not started by orch")
        return proc.poll()

    def stop(self, pid: int, *, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM the PID, wait up to `grace` s, then SIGKILL; return the exit status."""
        proc = self._children.pop(pid, None)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def running_children(self) -> list[int]:
        """PIDs started here and not yet stopped (for cleanup on interruption)."""
        return [pid for pid, proc in self._children.items() if proc.poll() is None]

    def tcp_probe(self, address: str, port: int, timeout: float = 1.0) -> bool:
        """Try one TCP connection."""
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return True
        except OSError:
            return False

    def close(self) -> None:
        """Stop anything still running that this host started."""
        for pid in list(self._children):
            self.stop(pid)


def _orphan_guard(argv: Sequence[str], cwd: str | None) -> list[str]:
    """Prefix argv so the process is SIGKILLed when orch dies, even by kill -9.

    orch's own Ctrl-C/SIGTERM handling stops what it started by PID; this covers the case
    where orch cannot run any handler. setpriv execs, so the PID stays the command's own.
    Skipped when setpriv is missing or the program cannot be found here (Popen then
    reports it exactly as before).
    """
    guard = shutil.which("setpriv")
    program = argv[0] if argv else ""
    if guard is None or (cwd is not None and not os.path.isabs(program) and "/" in program):
        return list(argv)
    if shutil.which(program) is None:
        return list(argv)
    return [guard, "--pdeathsig", "KILL", "--", *argv]


def _children_cpu_seconds() -> float:
    """User+sys CPU of every child this process has reaped so far."""
    usage = os.times()
    return usage.children_user + usage.children_system


def _copy_atomically(copy: Callable[[Path], object], target: Path, what: str, host: str) -> None:
    """`copy` into a temporary name beside `target`, then rename it over `target`: a reader
    sees the old file or the whole new one, never a part. An error is HostError naming
    `what` failed on `host`; the temporary file never stays."""
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    try:
        copy(partial)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise HostError(f"{host}: {what}: {exc.strerror or exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
