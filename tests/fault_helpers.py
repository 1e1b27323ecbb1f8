"""Helpers for the fault tests: run orch in the background, find and count what it started.

Every wait has a deadline, so a fault that orch mishandles fails a test, never hangs it.
Processes are found through /proc: servers by their binary (a workdir's servers/bin or
the checkout's), k6 and wrk by a command line naming a workdir (the script orch passes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orch_helpers import ORCH, SHORT_CELL, no_core_dumps
from server_helpers import REPO, SERVER_NAMES

LOAD_TOOLS = ("k6", "wrk", "h2load")
# The faults need a load that runs, not a measurement worth keeping.
FAULT_CELL = (*SHORT_CELL, "--vus", "10")
LEFTOVERS_FILE = os.environ.get("ORCH_TEST_LEFTOVERS")


class Background:
    """`orch ARGS` running in the background; output goes to files (never a full pipe)."""

    def __init__(self, args: Sequence[str], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._out = folder / "orch.stdout"
        self._err = folder / "orch.stderr"
        with self._out.open("wb") as out, self._err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*ORCH, *args],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=no_core_dumps,
            )

    @property
    def stdout(self) -> str:
        """What orch printed so far."""
        return self._out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """What orch printed on stderr so far."""
        return self._err.read_text(errors="replace")

    def running(self) -> bool:
        """True while orch has not exited."""
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for orch to exit; SIGKILL it (and fail) after `timeout` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # orch prints where every thread is
            time.sleep(1)
            self.kill()
            raise AssertionError(
                f"orch did not exit within {timeout} s\n{self.stdout}\n{self.stderr}"
            ) from None

    def kill(self) -> None:
        """SIGKILL orch by PID if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        """stdout and stderr, for assertion messages."""
        return f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@contextlib.contextmanager
def background(args: Sequence[str], folder: Path) -> Iterator[Background]:
    """Start orch in the background; it is killed by PID if the test ends first."""
    run = Background(args, folder)
    try:
        yield run
    finally:
        run.kill()


@dataclass(frozen=True)
class Proc:
    """One live process as /proc shows it."""

    pid: int
    exe: str
    cmdline: str
    netns: int

    @property
    def name(self) -> str:
        """The executable's file name."""
        return os.path.basename(self.exe.removesuffix(" (deleted)"))


def processes() -> list[Proc]:
    """Every live (non-zombie) process this test can see."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                continue
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            netns = os.stat(entry / "ns" / "net").st_ino
        except (OSError, IndexError):
            continue
        found.append(Proc(int(entry.name), exe, cmdline, netns))
    return found


def started_by_orch(proc: Proc, workdirs: Sequence[Path]) -> bool:
    """A server binary from a workdir or the checkout, or a load tool whose command line
    names a workdir (k6's or wrk's script, h2load's log)."""
    bins = [str(Path(w) / "servers" / "bin") for w in workdirs] + [str(REPO / "servers" / "bin")]
    if proc.name in SERVER_NAMES and any(proc.exe.startswith(b + "/") for b in bins):
        return True
    return proc.name in LOAD_TOOLS and any(str(w) in proc.cmdline for w in workdirs)


def orch_processes(workdirs: Sequence[Path], netns: int | None = None) -> list[Proc]:
    """Servers and load tools orch started from `workdirs` (in network namespace `netns`)."""
    return [
        p
        for p in processes()
        if started_by_orch(p, workdirs) and (netns is None or p.netns == netns)
    ]


def netns_inode(name: str) -> int:
    """The inode identifying the named network namespace (/run/netns/NAME)."""
    return os.stat(Path("/run/netns", name)).st_ino


def count_left(
    test: str,
    hosts: dict[str, int | None],
    workdirs: Sequence[Path],
    settle: float = 5.0,
    also: Callable[[int | None], int] | None = None,
) -> dict[str, int]:
    """How many orch processes are left on each host (`name -> netns`, None: any), plus
    what `also` counts there, after giving signals up to `settle` s to land; printed and
    recorded for the closing note."""
    deadline = time.monotonic() + settle
    while True:
        counts = {
            host: len(orch_processes(workdirs, ns)) + (also(ns) if also else 0)
            for host, ns in hosts.items()
        }
        if not any(counts.values()) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    print(f"processes left after {test}: {counts}")
    if LEFTOVERS_FILE:
        with open(LEFTOVERS_FILE, "a", encoding="utf-8") as file:
            file.write(json.dumps({"test": test, "left": counts}) + "\n")
    return counts


def kill_by_pid(pids: Sequence[int], sig: int = signal.SIGKILL) -> None:
    """Signal each PID (gone already is fine)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, run: Background) -> Any:
    """Poll `predicate` until it returns something true; fail if orch exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if not run.running():
            raise AssertionError(f"orch exited before {what}\n{run.output()}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout} s\n{run.output()}")
        time.sleep(0.02)


class ResettingListener:
    """Holds a TCP port like a foreign process would: accepts and resets every connection."""

    def __init__(self, host: str, port: int, bind_within: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + bind_within
        while True:
            try:
                self.sock.bind((host, port))
                break
            except OSError:
                if time.monotonic() >= deadline:
                    self.sock.close()
                    raise
                time.sleep(0.005)
        self.sock.listen(1024)
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        linger = struct.pack("ii", 1, 0)  # SO_LINGER on with 0 s: close() sends a reset
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                # A client that reset before accept() (ECONNABORTED) must not end the loop.
                if self._stop.is_set():
                    return
                continue
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            conn.close()

    def close(self) -> None:
        """Stop accepting and free the port."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
