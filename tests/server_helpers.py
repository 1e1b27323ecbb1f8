"""Helpers for testing the benchmark servers against the contract in servers/README.md.

Everything here is bounded in time: every socket operation has a timeout and every wait
has an explicit deadline, so a misbehaving server makes a test fail, never hang.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVERS_DIR = REPO / "servers"
#: Set to test binaries built elsewhere (e.g. an older commit's) as they are: nothing is built.
BIN_DIR_ENV = "ORCH_SERVER_BIN_DIR"
PREBUILT_BIN_DIR: Path | None = (
    Path(os.environ[BIN_DIR_ENV]).resolve() if os.environ.get(BIN_DIR_ENV) else None
)
BIN_DIR = PREBUILT_BIN_DIR if PREBUILT_BIN_DIR is not None else SERVERS_DIR / "bin"

#: The six servers of this repository, in servers.yaml's order (grouped by API).
SERVER_NAMES: tuple[str, ...] = (
    "c-epoll",
    "rust-epoll",
    "zig-epoll",
    "c-io_uring",
    "rust-io_uring",
    "zig-io_uring",
)

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-type: text/html\r\nContent-length: 17\r\n\r\nHave a nice day!\n"
)
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
TERMINATOR = b"\r\n\r\n"
MAX_HEAD = 8192

#: Generous because a first Rust or Zig release build can take minutes on 2 cores.
BUILD_TIMEOUT = 1200.0
STARTUP_TIMEOUT = 5.0
IO_TIMEOUT = 5.0
KILL_TIMEOUT = 5.0

_LISTENING_RE = re.compile(r"listening on (?P<host>[0-9.]+):(?P<port>[0-9]+)\n")
#: The start-up line printed before the listening line (servers/README.md).
STARTUP_RE = re.compile(
    r"server: api=(?P<api>epoll|io_uring) kernel=(?P<kernel>\S+)"
    r"(?: setup_flags=0x(?P<setup_flags>[0-9a-f]+) features=0x(?P<features>[0-9a-f]+))?\n"
)


class Deadline:
    """A point in time a bounded operation must finish by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self._end


def describe(data: bytes, limit: int = 160) -> str:
    """Render bytes for a failure message: length plus a truncated repr."""
    if len(data) <= limit:
        return f"{len(data)} bytes {data!r}"
    return f"{len(data)} bytes {data[:limit]!r}..."


def describe_mismatch(expected: bytes, got: bytes) -> str:
    """Explain how `got` differs from `expected` (lengths and first differing offset)."""
    if expected == got:
        return "identical"
    pairs = enumerate(zip(expected, got, strict=False))
    offset = next((i for i, (a, b) in pairs if a != b), min(len(expected), len(got)))
    start = max(0, offset - 20)
    return (
        f"expected {len(expected)} bytes, got {len(got)} bytes; first difference at offset "
        f"{offset}: expected {expected[start : offset + 40]!r}, got {got[start : offset + 40]!r}"
    )


def assert_responses(got: bytes, count: int, what: str) -> None:
    """Assert `got` is exactly `count` copies of the 81-byte response."""
    expected = RESPONSE * count
    assert got == expected, (
        f"{what}: expected exactly {count} response(s) ({len(expected)} bytes); "
        f"{describe_mismatch(expected, got)}"
    )


# --- building -------------------------------------------------------------------------


def make_command(*args: str) -> list[str]:
    """`make -C servers ARGS` with the Zig the tests' own Python carries (ziglang),
    whatever python3 is on PATH."""
    return ["make", "-C", str(SERVERS_DIR), f"ZIG={sys.executable} -m ziglang", *args]


def run_make(command: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run a make command to its end, its output and errors together in `stdout`
    (raises subprocess.TimeoutExpired after `timeout` s)."""
    return subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class BuildResult:
    """The outcome of building one server with make."""

    name: str
    ok: bool
    output: str

    @property
    def binary(self) -> Path:
        """Where the Makefile puts this server's binary."""
        return BIN_DIR / self.name


def build_servers(names: Sequence[str], timeout: float = BUILD_TIMEOUT) -> dict[str, BuildResult]:
    """Build `names` with one `make -C servers -k NAME...`, then judge each one.

    `-k` lets one broken server not stop the others. A server counts as built when
    `make -q bin/NAME` afterwards says its binary is up to date with its sources, so a
    stale binary left from an earlier build never passes for a failed rebuild.
    """
    if not names:
        return {}
    if PREBUILT_BIN_DIR is not None:
        return {
            name: BuildResult(
                name=name,
                ok=os.access(BIN_DIR / name, os.X_OK),
                output=f"not built: {BIN_DIR_ENV}={PREBUILT_BIN_DIR} holds no executable {name}",
            )
            for name in names
        }
    command = make_command("-k", *names)
    try:
        proc = run_make(command, timeout)
        output = proc.stdout.decode(errors="replace")
        header = f"$ {' '.join(command)}\n(exit status {proc.returncode})\n"
    except subprocess.TimeoutExpired as exc:
        partial = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else ""
        output = partial
        header = f"$ {' '.join(command)}\n(killed after {timeout:.0f} s)\n"
    except OSError as exc:
        output = ""
        header = f"$ {' '.join(command)}\n(could not run: {exc})\n"
    results: dict[str, BuildResult] = {}
    for name in names:
        try:
            up_to_date = (
                subprocess.run(
                    make_command("-q", f"bin/{name}"),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=60,
                    check=False,
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            up_to_date = False
        ok = up_to_date and os.access(BIN_DIR / name, os.X_OK)
        results[name] = BuildResult(name=name, ok=ok, output=header + output)
    return results


# --- processes ------------------------------------------------------------------------


class ServerStartError(AssertionError):
    """The server did not start and announce itself as the contract requires."""


def _nofile_limiter(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


class RunningServer:
    """A server process started as `BINARY --host HOST --port PORT`.

    The constructor waits (bounded) for the `listening on HOST:PORT` line on stdout and
    checks it names the requested host (and port, unless 0); the one line allowed before it
    is kept as `startup_line` (None if there was none). stdout and stderr go to
    files rather than pipes, so a chatty server can never block on a full pipe. `kill()`
    (also called on context-manager exit) SIGKILLs the process by PID.
    """

    def __init__(
        self,
        binary: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = STARTUP_TIMEOUT,
        nofile_limit: int | None = None,
    ) -> None:
        """Start `binary`; `nofile_limit` caps its RLIMIT_NOFILE (soft and hard)."""
        self.binary = binary
        self._tmpdir = tempfile.TemporaryDirectory(prefix=f"{binary.name}-")
        self._stdout_path = Path(self._tmpdir.name) / "stdout"
        self._stderr_path = Path(self._tmpdir.name) / "stderr"
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(binary), "--host", host, "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                close_fds=True,
                preexec_fn=None if nofile_limit is None else _nofile_limiter(nofile_limit),
            )
        self.pid: int = self.proc.pid
        try:
            self.startup_line, self.listening_line = self._wait_for_listening_line(startup_timeout)
            match = _LISTENING_RE.fullmatch(self.listening_line)
            if match is None:
                raise ServerStartError(
                    f"{binary.name}: expected the stdout line after the start-up line to be "
                    f"'listening on ADDR:PORT\\n', got {self.listening_line!r} "
                    f"(after {self.startup_line!r})"
                )
            self.host: str = match["host"]
            self.port: int = int(match["port"])
            if self.host != host:
                raise ServerStartError(
                    f"{binary.name} started with --host {host}: expected the listening line "
                    f"to name {host}, got {self.listening_line!r}"
                )
            if port == 0 and self.port == 0:
                raise ServerStartError(
                    f"{binary.name} started with --port 0: expected the real bound port in the "
                    f"listening line, got {self.listening_line!r}"
                )
            if port != 0 and self.port != port:
                raise ServerStartError(
                    f"{binary.name} started with --port {port}: expected the listening line to "
                    f"name port {port}, got {self.listening_line!r}"
                )
        except BaseException:
            self.kill()
            raise

    def _wait_for_listening_line(self, timeout: float) -> tuple[str | None, str]:
        """(the start-up line or None, the line after it): the first two lines when the
        first is not a listening line, else (None, the first line)."""
        deadline = Deadline(timeout)
        while True:
            data = self._stdout_path.read_bytes()
            lines = [line + "\n" for line in data.decode(errors="replace").split("\n")[:-1]]
            if lines and lines[0].startswith("listening on"):
                return None, lines[0]
            if len(lines) >= 2:
                return lines[0], lines[1]
            status = self.proc.poll()
            if status is not None:
                raise ServerStartError(
                    f"{self.binary.name}: expected a 'listening on' line, but the process "
                    f"exited with status {status}; stdout: {describe(data)}; "
                    f"stderr: {self.stderr()!r}"
                )
            if deadline.expired():
                raise ServerStartError(
                    f"{self.binary.name}: expected a 'listening on' line within {timeout} s, "
                    f"got stdout {describe(data)} (not flushed?); stderr: {self.stderr()!r}"
                )
            time.sleep(0.01)

    def stdout(self) -> str:
        """Everything the server has written to stdout so far."""
        return self._stdout_path.read_bytes().decode(errors="replace")

    def stderr(self) -> str:
        """Everything the server has written to stderr so far (at most the last 4 KiB)."""
        try:
            data = self._stderr_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data[-4096:].decode(errors="replace")

    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        return self.host, self.port

    def assert_alive(self, context: str = "") -> None:
        """Fail if the server process has exited."""
        status = self.proc.poll()
        where = f" {context}" if context else ""
        assert status is None, (
            f"expected the server to be running{where}, but it exited with status {status}; "
            f"stderr: {self.stderr()!r}"
        )

    def signal_and_wait(self, sig: int, timeout: float) -> tuple[int | None, float]:
        """Send `sig` by PID and wait up to `timeout` s; return (exit status or None, seconds)."""
        start = time.monotonic()
        os.kill(self.pid, sig)
        try:
            status: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        return status, time.monotonic() - start

    def kill(self) -> None:
        """SIGKILL the process by PID (if still running), reap it and remove its output files."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=KILL_TIMEOUT)
        self._tmpdir.cleanup()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


class ServerBuilds:
    """Builds servers with make at most once per session and remembers the results.

    Creating it builds every server in `wanted` in one make run; a server asked for
    later that was not wanted is built on its own then.
    """

    def __init__(self, wanted: Sequence[str]) -> None:
        self._results: dict[str, BuildResult] = build_servers(list(dict.fromkeys(wanted)))

    def result(self, name: str) -> BuildResult:
        """The build result for `name`, building it now if it was not among those wanted."""
        if name not in self._results:
            self._results.update(build_servers([name]))
        return self._results[name]


class ServerLauncher:
    """One server under test: its binary (failing the test if it did not build) and
    the processes started from it, all killed on teardown."""

    def __init__(self, name: str, builds: ServerBuilds) -> None:
        self.name = name
        self._builds = builds
        self._running: list[RunningServer] = []

    def binary(self) -> Path:
        """The built binary; fails the calling test with make's output if the build failed."""
        build = self._builds.result(self.name)
        if not build.ok:
            pytest.fail(
                f"expected make to build servers/bin/{self.name} up to date with its "
                f"sources, it did not; make's output (last 12,000 characters):\n"
                f"{build.output[-12000:]}",
                pytrace=False,
            )
        return build.binary

    def start(
        self, host: str = "127.0.0.1", port: int = 0, nofile_limit: int | None = None
    ) -> RunningServer:
        """Start the server (default: 127.0.0.1, kernel-chosen port) and wait until it listens."""
        server = RunningServer(self.binary(), host=host, port=port, nofile_limit=nofile_limit)
        self._running.append(server)
        return server

    def kill_all(self) -> None:
        """Kill (by PID) every server this launcher started."""
        for server in self._running:
            server.kill()
        self._running.clear()


@dataclass(frozen=True)
class CompletedRun:
    """The outcome of running a binary to completion (or killing it at the deadline)."""

    returncode: int | None  # None: still running at the deadline, then killed
    stdout: str
    stderr: str
    seconds: float


def run_binary(binary: Path, args: Sequence[str], timeout: float) -> CompletedRun:
    """Run `binary args...`, SIGKILLing it by PID if it is still running after `timeout`."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=KILL_TIMEOUT)
        returncode = None
    return CompletedRun(
        returncode=returncode,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
        seconds=time.monotonic() - start,
    )


# --- /proc ----------------------------------------------------------------------------


def fd_count(pid: int) -> int:
    """How many descriptors process `pid` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid: int, limit: int = 12) -> list[str]:
    """What up to `limit` of the process's descriptors point at, for failure messages."""
    targets = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int)[:limit]:
        try:
            targets.append(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            targets.append(f"{fd}->?")
    return targets


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the parenthesised command name, which may itself contain spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def thread_names(pid: int) -> list[str]:
    """`TID:comm` for every task (thread) of process `pid`."""
    names = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        except OSError:
            comm = "?"
        names.append(f"{tid}:{comm}")
    return names


def lowest_free_fd(pid: int) -> int:
    """The descriptor number process `pid` would get next (the lowest one not open)."""
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
    return next(fd for fd in range(len(used) + 1) if fd not in used)


def nofile_limits(pid: int) -> tuple[int, int]:
    """Process `pid`'s RLIMIT_NOFILE as (soft, hard)."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    return soft, hard


def set_soft_nofile(pid: int, soft: int) -> None:
    """Set process `pid`'s soft RLIMIT_NOFILE (as `prlimit --pid PID --nofile=SOFT:HARD`).

    The hard limit is left as it is: lowering the soft limit, and raising it back up to
    the hard one, needs no privilege.
    """
    hard = nofile_limits(pid)[1]
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` s pass; return its last value."""
    deadline = Deadline(timeout)
    while True:
        if predicate():
            return True
        if deadline.expired():
            return False
        time.sleep(min(interval, deadline.remaining()))


def raise_nofile_limit(needed: int) -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; return the new soft limit.

    Fails (AssertionError) if even the hard limit is below `needed`.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert limit == resource.RLIM_INFINITY or limit >= needed, (
        f"expected an RLIMIT_NOFILE hard limit of at least {needed} for this test, got {limit}"
    )
    return limit


# --- sockets --------------------------------------------------------------------------


def free_port(host: str, also_free_on: Sequence[str] = ()) -> int:
    """A TCP port that was free on `host` (and on every `also_free_on` address) a moment ago.

    Binds port 0 on `host` to let the kernel choose, then checks the other addresses.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
            if all(_port_free(other, port) for other in also_free_on):
                return port
    raise AssertionError(f"expected to find a port free on {host} and {list(also_free_on)}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def connect(host: str, port: int, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A blocking client socket with a timeout and TCP_NODELAY (so each send is one segment)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def set_reset_on_close(sock: socket.socket) -> None:
    """Make `close()` send RST instead of FIN (SO_LINGER on, zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def recv_exactly(sock: socket.socket, count: int, what: str, timeout: float = IO_TIMEOUT) -> bytes:
    """Receive exactly `count` bytes within `timeout` s, or fail saying what did arrive.

    `what` names the exchange (e.g. "16 pipelined requests") for the failure message.
    """
    deadline = Deadline(timeout)
    chunks: list[bytes] = []
    got = 0
    while got < count:
        remaining = deadline.remaining()
        so_far = b"".join(chunks)
        if remaining <= 0:
            raise AssertionError(
                f"{what}: expected {count} bytes within {timeout} s, got {describe(so_far)}"
            )
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(count - got, 1 << 20))
        except TimeoutError:
            raise AssertionError(
                f"{what}: expected {count} bytes within {timeout} s, got {describe(so_far)}"
            ) from None
        except ConnectionError as exc:
            raise AssertionError(
                f"{what}: expected {count} bytes, got {describe(so_far)} and then {exc!r}"
            ) from None
        if not chunk:
            raise AssertionError(
                f"{what}: expected {count} bytes, got {describe(so_far)} and then EOF "
                "(the server closed the connection)"
            )
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_until_eof(
    sock: socket.socket, what: str, timeout: float = IO_TIMEOUT, limit: int = 1 << 24
) -> bytes:
    """Receive until a clean EOF within `timeout` s; fail on timeout, reset or > `limit` bytes."""
    deadline = Deadline(timeout)
    chunks: list[bytes] = []
    got = 0
    while True:
        remaining = deadline.remaining()
        if remaining <= 0 or got > limit:
            raise AssertionError(
                f"{what}: expected EOF within {timeout} s, got {describe(b''.join(chunks))} "
                "and the connection is still open"
            )
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except ConnectionError as exc:
            raise AssertionError(
                f"{what}: expected data then a clean EOF, got {describe(b''.join(chunks))} "
                f"and then {exc!r}"
            ) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)


def expect_responses(
    sock: socket.socket, count: int, what: str, timeout: float = IO_TIMEOUT
) -> None:
    """Receive `count` responses' worth of bytes and check they are exactly the response."""
    assert_responses(recv_exactly(sock, count * len(RESPONSE), what, timeout), count, what)


def expect_silence(sock: socket.socket, wait: float, after: str) -> None:
    """Fail if anything (data, EOF or a reset) arrives on `sock` within `wait` s."""
    sock.settimeout(wait)
    try:
        chunk = sock.recv(65536)
    except TimeoutError:
        return
    except ConnectionError as exc:
        raise AssertionError(
            f"expected nothing more within {wait} s after {after}, got {exc!r}"
        ) from None
    if not chunk:
        raise AssertionError(
            f"expected nothing more within {wait} s after {after} (keep-alive), "
            "got EOF: the server closed the connection"
        )
    raise AssertionError(
        f"expected nothing more within {wait} s after {after}, got {describe(chunk)}"
    )


def expect_closed(sock: socket.socket, timeout: float, what: str) -> None:
    """Fail unless the server closes `sock` (EOF or reset) within `timeout` s, sending nothing."""
    deadline = Deadline(timeout)
    received = b""
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise AssertionError(
                f"{what}: expected the server to close the connection within {timeout} s, "
                f"it is still open (received {describe(received)})"
            )
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionError:
            chunk = b""
        if not chunk:
            assert not received, (
                f"{what}: expected the connection closed without an answer, got "
                f"{describe(received)} before the close"
            )
            return
        received += chunk


def fetch_one(host: str, port: int, context: str, timeout: float = IO_TIMEOUT) -> None:
    """A fresh client sends one request and must get exactly one response."""
    try:
        with connect(host, port, timeout) as sock:
            sock.sendall(REQUEST)
            got = recv_exactly(sock, len(RESPONSE), f"{context}: a fresh client", timeout)
    except OSError as exc:
        raise AssertionError(
            f"{context}: expected a fresh client to be answered, got {exc!r}"
        ) from None
    assert_responses(got, 1, f"{context}: fresh client")


def open_connections(
    host: str, port: int, count: int, timeout: float = IO_TIMEOUT
) -> list[socket.socket]:
    """Open `count` non-blocking connections and wait (bounded) until all are established."""
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex((host, port))
            if err not in (0, 115):  # 115: EINPROGRESS
                raise AssertionError(
                    f"expected connection {len(socks)}/{count} to start, got {os.strerror(err)}"
                )
            sel.register(sock, selectors.EVENT_WRITE)
        deadline = Deadline(timeout)
        pending = count
        while pending:
            if deadline.expired():
                raise AssertionError(
                    f"expected {count} connections established within {timeout} s, "
                    f"{pending} still pending"
                )
            for key, _ in sel.select(deadline.remaining()):
                sock = key.fileobj  # type: ignore[assignment]
                sel.unregister(sock)
                pending -= 1
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise AssertionError(
                        f"expected {count} connections to succeed, one failed with "
                        f"{os.strerror(err)}"
                    )
    except BaseException:
        close_all(socks)
        raise
    finally:
        sel.close()
    return socks


def connect_small_window(host: str, port: int, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A client socket with a tiny receive buffer, so the server's output backs up quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def send_without_reading(sock: socket.socket, payload: bytes, seconds: float) -> int:
    """Send as much of `payload` as the server takes within `seconds`, never reading.

    Returns the number of bytes sent. The socket is left non-blocking. A server may
    legitimately stop reading while its own output is blocked, so this gives up at the
    deadline instead of blocking like `sendall` would.
    """
    sock.setblocking(False)
    view = memoryview(payload)
    sent = 0
    deadline = Deadline(seconds)
    while sent < len(view) and not deadline.expired():
        try:
            sent += sock.send(view[sent:])
        except BlockingIOError:
            time.sleep(0.005)
    return sent


def close_all(socks: Iterable[socket.socket]) -> None:
    """Close every socket, ignoring errors."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


@dataclass
class Exchange:
    """What one connection received in `exchange()`."""

    data: bytes
    error: str | None  # "EOF" or the exception if the connection ended early


def exchange(
    socks: Sequence[socket.socket],
    outgoing: Sequence[bytes],
    expected_len: Sequence[int],
    what: str,
    timeout: float,
    on_tick: Callable[[], None] | None = None,
) -> list[Exchange]:
    """Send `outgoing[i]` on `socks[i]` and receive `expected_len[i]` bytes, all concurrently.

    Sockets are driven non-blocking through one selector, so a slow or stuck connection
    cannot block the others. `what` names the traffic for the failure message. Fails if
    not every connection has finished (received its
    bytes, or ended early) within `timeout` s. Extra bytes that arrive in the same read are
    kept in `data`, so callers comparing exactly will see them. `on_tick` is called once
    per selector wakeup, to observe the server while the traffic is in flight.
    """
    sel = selectors.DefaultSelector()
    out = [memoryview(b) for b in outgoing]
    sent = [0] * len(socks)
    received: list[list[bytes]] = [[] for _ in socks]
    got = [0] * len(socks)
    errors: list[str | None] = [None] * len(socks)

    def interest(i: int) -> int:
        events = 0
        if sent[i] < len(out[i]):
            events |= selectors.EVENT_WRITE
        if got[i] < expected_len[i]:
            events |= selectors.EVENT_READ
        return events

    try:
        active = 0
        for i, sock in enumerate(socks):
            sock.setblocking(False)
            events = interest(i)
            if events:
                sel.register(sock, events, i)
                active += 1
        deadline = Deadline(timeout)
        while active:
            if deadline.expired():
                waiting = [i for i in range(len(socks)) if errors[i] is None and interest(i)]
                first = waiting[0]
                raise AssertionError(
                    f"{what}: expected all {len(socks)} connections served within {timeout} s; "
                    f"{len(waiting)} still waiting, e.g. connection {first} sent "
                    f"{sent[first]}/{len(out[first])} bytes and received "
                    f"{got[first]}/{expected_len[first]} bytes"
                )
            if on_tick is not None:
                on_tick()
            for key, mask in sel.select(deadline.remaining()):
                i = key.data
                sock = socks[i]
                try:
                    if mask & selectors.EVENT_WRITE and sent[i] < len(out[i]):
                        sent[i] += sock.send(out[i][sent[i] :])
                    if mask & selectors.EVENT_READ:
                        chunk = sock.recv(1 << 20)
                        if not chunk:
                            errors[i] = "EOF"
                        else:
                            received[i].append(chunk)
                            got[i] += len(chunk)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    errors[i] = repr(exc)
                events = interest(i) if errors[i] is None else 0
                if events:
                    sel.modify(sock, events, i)
                else:
                    sel.unregister(sock)
                    active -= 1
    finally:
        sel.close()
    return [Exchange(b"".join(received[i]), errors[i]) for i in range(len(socks))]


def summarise_exchanges(results: Sequence[Exchange], expected: bytes, what: str) -> str:
    """Describe how many results differ from `expected` and how the first few differ."""
    bad = [(i, r) for i, r in enumerate(results) if r.data != expected]
    lines = [
        f"{what}: expected every connection to get exactly {describe(expected, 40)}; "
        f"{len(bad)} of {len(results)} did not"
    ]
    for i, r in bad[:3]:
        ended = f", then {r.error}" if r.error else ""
        lines.append(f"  connection {i}: {describe_mismatch(expected, r.data)}{ended}")
    return "\n".join(lines)


def garbage(rng: random.Random, size: int) -> bytes:
    """`size` random bytes, rich in CR and LF, that never contain CRLFCRLF."""
    data = bytearray(
        rng.choice(b"\r\n") if rng.random() < 0.3 else rng.randrange(256) for _ in range(size)
    )
    # Breaking one CRLFCRLF can never create another, so a single pass suffices.
    i = data.find(TERMINATOR)
    while i != -1:
        data[i + 3] = 0
        i = data.find(TERMINATOR, i)
    return bytes(data)
