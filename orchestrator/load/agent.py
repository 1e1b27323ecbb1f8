"""One load host's part of a pass that several load hosts run together.

This file is also a program: orch copies it to each load host and runs it there with the
host's python3 (so it imports nothing but the standard library). orch writes a spec
(JSON) and starts `python3 agent.py SPEC` pinned to the host's load CPUs. The agent:

1. for k6, starts it paused with its REST API on a free local port and waits until its
   VUs are initialised (k6's status "paused before run"); for wrk, does nothing yet;
2. writes the ready file with its clock, then waits for the go file, which holds the
   start time (on this host's clock: orch has corrected it for the clock's offset);
3. at that time resumes k6 through its REST API (or starts wrk) and notes when it did;
4. waits for the tool, forwarding SIGTERM, SIGINT and SIGHUP to it (the tool also dies
   with the agent: PR_SET_PDEATHSIG), and takes the tool's CPU time from wait4;
5. for k6, reduces the `http_req_duration` samples of its CSV output to a histogram of
   whole microseconds (exact: every sample is counted), timing that, and deletes the CSV
   unless told to keep it; for h2load, runs the spec's `after` command (orch's reducer of
   its per-request log, which writes its own histogram file);
6. writes the result file (JSON) atomically and exits 0; 2 when the tool failed (or
   was stopped), 1 when the pass could not run.
"""

from __future__ import annotations

import collections
import ctypes
import http.client
import json
import mmap
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

K6_API = "@ORCH_K6_API@"  # stands for the REST API's address in the spec's argv
READY_SECONDS = 120.0  # k6's VU initialisation, at most
GO_SECONDS = 120.0  # orch's go, at most
POLL_SECONDS = 0.002
CHUNK_BYTES = 64 << 20
K6_PAUSED_BEFORE_RUN = 4  # k6's execution status while it waits for a resume
RESUME = json.dumps(
    {"data": {"type": "status", "id": "default", "attributes": {"paused": False}}}
).encode()
_PR_SET_PDEATHSIG = 1
# One k6 CSV row of the request duration: name, timestamp, value (ms, 6 decimals), tags.
# Matched from the newline before it: a literal start lets the regex engine skip ahead
# with its fast search (an anchored `^` pattern is six times slower).
_DURATION_ROW = re.compile(rb"\nhttp_req_duration,[^,\n]*,([^,\n]*)")


class AgentError(Exception):
    """The pass could not run on this host; the message says why."""


@dataclass(frozen=True)
class AgentSpec:
    """What orch asks of one agent: the tool's command and the files of the pass."""

    argv: list[str]  # K6_API stands for k6's REST API address
    output: str  # the tool's console output
    ready: str  # written when the tool is ready to start
    go: str  # orch writes the start time (this host's clock) here
    result: str  # the PassRecord, written at the end
    env: dict[str, str] = field(default_factory=dict)
    samples: str | None = None  # k6's CSV output, reduced to a histogram
    keep_samples: bool = False  # keep that CSV after reducing it
    k6_paused: bool = False  # start k6 paused, resume it at the start time
    ok_statuses: list[int] = field(default_factory=lambda: [0])
    after: list[str] | None = None  # run once the tool succeeded (h2load's log reducer)

    def to_json(self) -> str:
        """The spec file's text."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AgentSpec:
        """A spec from its file's text (missing optional keys take their defaults)."""
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class ReducedHistogram:
    """k6's request durations reduced on the load host, with what reducing cost."""

    us: list[tuple[int, int]]  # (whole microseconds, count), ascending
    method: str
    seconds: float
    cpu_seconds: float
    samples: int


@dataclass(frozen=True)
class PassRecord:
    """What one agent's pass did (its result file): the error that stopped it, or its
    times on this host's clock, the tool's exit status and CPU, and the histogram."""

    error: str | None = None
    host_clock_at_spawn: float | None = None
    go_at: float | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    late_seconds: float = 0.0
    exit_status: int = 0  # negative: killed by that signal
    cpu_seconds: float = 0.0  # the tool's, from the start on
    init_cpu_seconds: float = 0.0  # the tool's before the start (k6 initialising VUs)
    wall_seconds: float = 0.0
    stopped_by: str | None = None  # the signal orch stopped the pass with
    histogram: ReducedHistogram | None = None

    def to_json(self) -> str:
        """The result file's text (keys left out where the pass has no value)."""
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> PassRecord:
        """A record from its file's text; ValueError when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a pass record")
        known = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        reduced = known.pop("histogram", None)
        histogram = None
        if reduced is not None:
            buckets = [(int(us), int(count)) for us, count in reduced["us"]]
            histogram = ReducedHistogram(**{**reduced, "us": buckets})
        try:
            return cls(**known, histogram=histogram)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def duration_to_us(text: bytes) -> int:
    """k6's milliseconds (`0.877597`) as whole microseconds, rounded half up, exactly
    (integer arithmetic on the digits, no binary floating point)."""
    whole, _, decimals = text.strip().partition(b".")
    nanos = int(whole or b"0") * 1_000_000 + int((decimals[:6] or b"0").ljust(6, b"0"))
    return (nanos + 500) // 1000


def reduce_k6_csv(path: str) -> dict[int, int]:
    """The `http_req_duration` samples of k6's CSV output file as {microseconds: count}.

    The file is mapped, not read (copying it costs as much as scanning it), and scanned in
    chunks that end at a newline (the one the next chunk's first row is matched from); a
    regular expression picks the value field of the duration rows (the other dozen metrics
    k6 writes per request are skipped in C), and each distinct value is converted once.
    """
    values: collections.Counter[bytes] = collections.Counter()
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return {}
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            size, start = len(data), 0
            while start < size:
                end = (
                    size
                    if start + CHUNK_BYTES >= size
                    else data.rfind(b"\n", start + 1, start + CHUNK_BYTES)
                )
                end = size if end < 0 else end
                values.update(_DURATION_ROW.findall(data, start, end))
                start = end
    histogram: dict[int, int] = {}
    for value, count in values.items():
        micros = duration_to_us(value)
        histogram[micros] = histogram.get(micros, 0) + count
    return histogram


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the tool, before exec: SIGKILL when the agent dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _write_atomic(path: str, text: str) -> None:
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(partial, path)


def _k6_api(address: str, connection: http.client.HTTPConnection | None = None) -> dict[str, Any]:
    """GET k6's status, or (given an open `connection`) PATCH it to resume the test."""
    host, _, port = address.rpartition(":")
    conn = connection or http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        if connection is None:
            conn.request("GET", "/v1/status")
        else:
            conn.request("PATCH", "/v1/status", RESUME, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        data: dict[str, Any] = json.loads(answer.read())
        if answer.status >= 300:
            raise ValueError(f"HTTP {answer.status}: {data}")
        return data
    finally:
        conn.close()


class Agent:
    """The agent of one pass, driven by its spec."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping: int | None = None  # the signal orch stopped the pass with
        self.api: str | None = None

    def on_signal(self, signum: int, frame: object) -> None:
        """Pass orch's stop on to the tool; without a tool yet, stop at once."""
        self.stopping = signum
        if self.child is None:
            raise AgentError(f"stopped by {signal.Signals(signum).name} before the start")
        # os.kill, not send_signal: that polls, and reaping the tool here would lose its
        # resource usage (its PID stays ours, unreused, until wait4 reaps it).
        if self.child.returncode is None:
            os.kill(self.child.pid, signum)

    def start_tool(self) -> None:
        argv = list(self.spec.argv)
        if K6_API in argv:
            self.api = f"127.0.0.1:{_free_port()}"
            argv = [self.api if arg == K6_API else arg for arg in argv]
        env = {**os.environ, **self.spec.env}
        with open(self.spec.output, "wb") as output:
            try:
                self.child = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise AgentError(f"cannot start {argv[0]}: {exc.strerror}") from None

    def wait_paused(self) -> None:
        """Until k6 has initialised its VUs and waits to be resumed."""
        assert self.child is not None and self.api is not None
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.child.poll() is not None:
                raise AgentError(self._ended("k6 ended before it was ready"))
            try:
                status = _k6_api(self.api)["data"]["attributes"]["status"]
            except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
                status = None
            if status == K6_PAUSED_BEFORE_RUN:
                return
            time.sleep(0.01)
        raise AgentError(f"k6 was not ready within {READY_SECONDS:g} s")

    def wait_go(self) -> float:
        """The start time orch wrote into the go file (this host's clock)."""
        deadline = time.monotonic() + GO_SECONDS
        while time.monotonic() < deadline:
            if self.child is not None and self.child.poll() is not None:
                raise AgentError(self._ended("the tool ended before the start"))
            try:
                with open(self.spec.go, encoding="utf-8") as file:
                    return float(file.read().strip())
            except (OSError, ValueError):
                time.sleep(POLL_SECONDS)
        raise AgentError(f"no go from orch within {GO_SECONDS:g} s")

    def _ended(self, what: str) -> str:
        assert self.child is not None
        if self.stopping is not None:
            return f"stopped by {signal.Signals(self.stopping).name} before the start"
        return f"{what} (exit status {self.child.returncode})"

    def connect(self) -> http.client.HTTPConnection | None:
        """For k6, a connection to its REST API opened ahead, so the resume at the start
        time costs one request, not a connection set-up too."""
        if self.api is None:
            return None
        host, _, port = self.api.rpartition(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.connect()
        except OSError as exc:
            raise AgentError(f"cannot reach k6's REST API {self.api}: {exc}") from None
        return connection

    def begin(self, connection: http.client.HTTPConnection | None) -> float:
        """Start the load now (resume k6, or start wrk); the wall-clock time it began."""
        started = time.time()
        if connection is None:
            self.start_tool()
            return started
        try:
            _k6_api(self.api or "", connection)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise AgentError(f"cannot resume k6 through its REST API {self.api}: {exc}") from None
        return started

    def cpu_so_far(self) -> float:
        """CPU seconds the tool used before the start (k6 initialising its VUs), from
        /proc: the load's CPU share counts only what it used from the start on."""
        if self.child is None:
            return 0.0
        try:
            with open(f"/proc/{self.child.pid}/stat", encoding="ascii") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def wait_tool(self) -> tuple[int, float]:
        """The tool's exit status (negative: killed by that signal) and its CPU seconds."""
        assert self.child is not None
        try:
            _, status, usage = os.wait4(self.child.pid, 0)
        except ChildProcessError:  # reaped already: no resource usage left to read
            return self.child.returncode or 0, 0.0
        self.child.returncode = (
            -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        )
        return self.child.returncode, usage.ru_utime + usage.ru_stime

    def run(self) -> PassRecord:
        """The whole pass; the result to write."""
        spec = self.spec
        spawned = time.time()
        if spec.k6_paused:
            self.start_tool()
            self.wait_paused()
        _write_atomic(spec.ready, json.dumps({"ready_at": time.time()}))
        go = self.wait_go()
        connection = self.connect()
        delay = go - time.time()
        if delay > 0:
            time.sleep(delay)
        before = self.cpu_so_far()
        started = self.begin(connection)
        status, cpu = self.wait_tool()
        ended = time.time()
        histogram = None
        if spec.samples and self.stopping is None and status in spec.ok_statuses:
            histogram = self.reduce(spec.samples)
        if spec.after and self.stopping is None and status in spec.ok_statuses:
            self.run_after(spec.after)
        return PassRecord(
            host_clock_at_spawn=spawned,
            go_at=go,
            started_at=started,
            ended_at=ended,
            late_seconds=started - go,
            exit_status=status,
            cpu_seconds=max(0.0, cpu - before),
            init_cpu_seconds=before,
            wall_seconds=ended - started,
            stopped_by=signal.Signals(self.stopping).name if self.stopping else None,
            histogram=histogram,
        )

    def run_after(self, argv: list[str]) -> None:
        """The spec's command after the tool; its failure fails the pass."""
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, preexec_fn=_die_with_parent
        )
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
            raise AgentError(f"{argv[1]} exited with status {done.returncode}: {why[-1]}")

    def reduce(self, samples: str) -> ReducedHistogram:
        """The CSV's duration samples as a histogram, with what the reduction cost."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            histogram = reduce_k6_csv(samples)
        except OSError as exc:
            raise AgentError(f"cannot read k6's samples {samples}: {exc.strerror}") from None
        reduced = ReducedHistogram(
            us=sorted(histogram.items()),
            method="k6 csv",
            seconds=time.perf_counter() - wall,
            cpu_seconds=time.process_time() - cpu,
            samples=sum(histogram.values()),
        )
        if not self.spec.keep_samples:
            os.unlink(samples)
        return reduced


def main(argv: list[str]) -> int:
    """Run the pass described by the spec file `argv[1]`."""
    with open(argv[1], encoding="utf-8") as file:
        spec = AgentSpec.from_json(file.read())
    agent = Agent(spec)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, agent.on_signal)
    try:
        result = agent.run()
    except AgentError as exc:
        if agent.child is not None and agent.child.poll() is None:
            agent.child.kill()
            agent.child.wait()
        _write_atomic(spec.result, PassRecord(error=str(exc)).to_json())
        print(f"orch load agent: {exc}", file=sys.stderr)
        return 1
    _write_atomic(spec.result, result.to_json())
    # Non-zero when the tool failed, so orch stops the other hosts without waiting.
    return 0 if result.exit_status in spec.ok_statuses else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
