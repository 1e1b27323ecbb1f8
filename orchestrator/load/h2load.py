"""h2load (nghttp2's load tool, HTTP/1.1 only here): finding it, the command line for a
load point, and its output and reduced per-request log parsed into a LoadResult.

An open-model point holds `rate` req/s with h2load's `--rps` per connection: orch opens
one connection per 100 req/s (or the connections given), and h2load's rate timer of each
connection ticks every 10 ms at most, sending that connection's request. The timers of
connections opened at once tick together, so orch opens them over one tick, a group per
millisecond (`--rate` connections per `--rate-period` of 1 ms, h2load's shortest): the
requests then arrive in groups each millisecond, not all at once every 10 ms. h2load
takes no duration with `--rate`, so the point is `rate x duration` requests (`-n`), each
connection its share at its rate: a pass lasts the duration when the server keeps up,
longer when it does not (the achieved rate then falls short of the offered one).

h2load's HTTP/1.1 client sends one request at a time per connection: a request due while
the previous answer is still awaited waits for it, and its latency is counted from when
it was sent, not when it was due (coordinated omission). orch counts the answers slower
than the interval between a connection's requests (`late_requests`): each delayed the
next request on its connection. A closed-loop point is `-c` connections for the duration
(`-D`) without `--rps`.

The measured pass writes h2load's per-request log (`--log-file`), reduced on the load
host by `h2load_log.py` into a histogram of whole microseconds and the window from the
first request's start to the last answer; the warm-up pass runs without the log, so the
two passes together show what the log costs h2load.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import CommandResult, Host
from orchestrator.load.points import LoadPoint, Profile, connections_text, k6_duration
from orchestrator.load.result import Latency, LatencyHistogram, LoadResult
from orchestrator.load.tool import LoadCommand, find_program

OUTPUT_FILE = "h2load-output.txt"
LOG_FILE = "h2load-requests.tsv"
SUMMARY_FILE = "h2load-histogram.json"
# h2load's rate timer fires every max(10 ms, 1/rps): above 100 req/s per connection one
# tick would queue several requests behind one another.
MAX_RATE_PER_CONNECTION = 100
_COUNTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout$",
    re.MULTILINE,
)
_REQUEST_TIMES = re.compile(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", re.MULTILINE)
_FINISHED = re.compile(r"^finished in (\S+),", re.MULTILINE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def find_h2load(configured: str | None, host: Host) -> str:
    """h2load on the load host: `configured` (the inventory's load.h2load_path), else
    h2load on PATH."""
    return find_program(host, "h2load", configured, "load.h2load_path", "nghttp2-client")


def h2load_version(host: Host, path: str) -> str:
    """h2load's version line, e.g. `h2load nghttp2/1.52.0`."""
    out = host.run([path, "--version"], timeout=30, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def connections_for(rate: int) -> int:
    """The connections orch opens for `rate` req/s: one per 100 req/s."""
    return max(1, math.ceil(rate / MAX_RATE_PER_CONNECTION))


def check_rate_connections(rate: int, connections: int) -> None:
    """Refuse (UserError) a rate that would send more than 100 req/s per connection."""
    if rate > connections * MAX_RATE_PER_CONNECTION:
        raise UserError(
            f"--connections: h2load sends at most {MAX_RATE_PER_CONNECTION} req/s per "
            f"connection (its rate timer ticks every 10 ms at most), so {rate:,} req/s needs "
            f"at least {connections_for(rate):,} connections, not {connections:,} (or leave "
            "--connections out: orch then opens one per 100 req/s)"
        )


def threads_for(cpus: Sequence[int], connections: int) -> int:
    """One h2load thread per load CPU, never more threads than connections."""
    return max(1, min(len(cpus), connections))


def rate_per_connection(point: LoadPoint) -> float:
    """req/s each connection of an open point sends."""
    return (point.rate or 0) / point.vus


def interval_us(point: LoadPoint) -> float:
    """Microseconds between two requests of one connection at an open point."""
    return 1e6 / rate_per_connection(point)


def groups_per_tick(point: LoadPoint) -> int:
    """Over how many 1 ms connection groups the connections of an open point are opened:
    as many as one tick of a connection's rate timer lasts (10 ms at 100 req/s each)."""
    tick_ms = 1000 / min(rate_per_connection(point), MAX_RATE_PER_CONNECTION)
    return max(1, min(point.vus, math.floor(tick_ms)))


def requests_of(profile: Profile, point: LoadPoint) -> int:
    """The requests an open point sends in the profile's duration."""
    return round((point.rate or 0) * profile.duration)


def check_requests(profile: Profile, point: LoadPoint, option: str = "--duration") -> None:
    """Refuse (UserError) an open point whose pass (of `option`'s length) gives a
    connection no request."""
    requests = requests_of(profile, point)
    if requests < point.vus:
        raise UserError(
            f"{option}: {point.describe()} on {connections_text(point.vus)} sends "
            f"{requests:,} requests in {profile.duration:g} s, fewer than its connections; "
            f"h2load needs one per connection at least (give a longer {option})"
        )


def h2load_command(
    h2load: str, url: str, profile: Profile, point: LoadPoint, threads: int, log: str | None
) -> list[str]:
    """argv for one h2load run of `point` for the profile's duration, with its
    per-request log written to `log` when given."""
    if point.pipeline > 1:
        raise UserError("--pipeline: orch runs h2load one request at a time per connection")
    threads = max(1, min(threads, point.vus))
    argv = [h2load, "--h1", "--clients", str(point.vus), "--threads", str(threads)]
    if point.is_open:
        check_requests(profile, point)
        per_period = max(threads, math.ceil(point.vus / groups_per_tick(point)))
        argv += [
            "--requests",
            str(requests_of(profile, point)),
            "--rps",
            format(rate_per_connection(point), ".12g"),
            "--rate",  # connections opened per period (not requests)
            str(per_period),
            "--rate-period",
            "1ms",
        ]
    else:
        argv += ["--duration", k6_duration(profile.duration)]
    if log is not None:
        argv += ["--log-file", log]
    return [*argv, url]


def _ms(text: str, source: str) -> float:
    match = _DURATION.fullmatch(text)
    if match is None:
        raise HostError(f"{source}: unreadable h2load duration '{text}'")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


@dataclass(frozen=True)
class Counts:
    """h2load's `requests:` line."""

    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timed_out: int


def parse_counts(text: str, source: str = "h2load output") -> Counts:
    """The request counts h2load printed at its end."""
    found = _COUNTS.findall(text)
    if not found:
        raise HostError(f"{source}: no 'requests:' line (did h2load finish?)")
    _, started, done, succeeded, failed, errored, timed_out = map(int, found[-1])
    return Counts(started, done, succeeded, failed, errored, timed_out)


@dataclass(frozen=True)
class ReducedLog:
    """h2load's per-request log as its reducer on the load host left it."""

    histogram: LatencyHistogram
    failed_rows: int
    mean_ms: float | None  # exact, from the sum of every answered request's latency
    first_start: float | None  # the first request's start, seconds since the epoch
    last_start: float | None  # the last request's start

    @property
    def window_seconds(self) -> float | None:
        """From the first request's start to the last's."""
        if self.first_start is None or self.last_start is None:
            return None
        return self.last_start - self.first_start


def parse_reduced(summary: str, source: str) -> ReducedLog:
    """The JSON h2load_log.py wrote."""
    try:
        data: dict[str, Any] = json.loads(summary)
        histogram = LatencyHistogram(
            buckets=[(float(us), int(count)) for us, count in data["us"]],
            method=str(data["method"]),
            reduce_seconds=float(data["seconds"]),
        )
        sum_us, failed_rows = int(data["sum_us"]), int(data["failed_rows"])
        first, last = data["first_start_us"], data["last_start_us"]
    except (ValueError, KeyError, TypeError) as exc:
        raise HostError(f"{source}: unreadable reduced h2load log ({exc})") from None
    total = histogram.total
    return ReducedLog(
        histogram=histogram,
        failed_rows=failed_rows,
        mean_ms=sum_us / total / 1000 if total else None,
        first_start=None if first is None else int(first) / 1e6,
        last_start=None if last is None else int(last) / 1e6,
    )


def late_answers(histogram: LatencyHistogram, point: LoadPoint) -> int:
    """Answers slower than the interval between a connection's requests: each one kept
    the next request on its connection from starting on time."""
    limit = interval_us(point)
    return sum(count for value, count in histogram.buckets if value > limit)


def parse_h2load(
    output: str, summary: str | None, profile: Profile, point: LoadPoint, source: str
) -> LoadResult:
    """A LoadResult from h2load's output and, for a measured pass, its reduced log.

    Requests are those that ended (`done`); failed are h2load's failed (answers other than
    2xx/3xx, and the errors it counted). Req/s of an open point is its requests over the
    duration, or over the span from the first request's start to the last's where that
    is longer (the server fell behind; from the log, else h2load's own run time); of a
    closed point, over the duration h2load held. A pass that started no request failed
    (it could not connect).
    """
    counts = parse_counts(output, source)
    if counts.started == 0 and counts.done == 0:
        raise HostError(f"{source}: h2load started no request (could it connect?)")
    latency = Latency()
    times = _REQUEST_TIMES.findall(output)
    if times and counts.done:
        low, high, mean = times[-1]
        latency = Latency(min=_ms(low, source), max=_ms(high, source), mean=_ms(mean, source))
    seconds = profile.duration
    reduced = parse_reduced(summary, source) if summary is not None else None
    started_at = None
    if point.is_open:
        # The timers pace the requests: a pass ends before its duration only when requests
        # were lost (failed), and lasts longer when the server fell behind.
        finished = _FINISHED.findall(output)
        if reduced is not None and reduced.window_seconds is not None:
            seconds = max(seconds, reduced.window_seconds)
            started_at = reduced.first_start
        elif finished:
            seconds = max(seconds, _ms(finished[-1], source) / 1000)
    result = LoadResult(
        tool="h2load",
        requests=counts.done,
        failed_requests=counts.failed,
        errored_requests=counts.errored,
        timed_out_requests=counts.timed_out,
        duration_seconds=seconds,
        requests_per_second=counts.done / seconds if seconds > 0 else 0.0,
        latency=latency,
        offered_rate=float(point.rate) if point.is_open and point.rate else None,
        started_at=started_at,
    )
    if reduced is None:
        return result
    logged = reduced.histogram.total + reduced.failed_rows
    if logged != counts.done:
        raise HostError(
            f"{source}: h2load's log holds {logged:,} requests but its summary counts "
            f"{counts.done:,} done"
        )
    return result.model_copy(
        update={
            "histogram": reduced.histogram,
            "latency": reduced.histogram.latency(reduced.mean_ms),
            "late_requests": late_answers(reduced.histogram, point) if point.is_open else None,
        }
    )


@dataclass(frozen=True)
class H2load:
    """h2load on a load host, with orch's log reducer there (`reducer`, run by `python`)."""

    path: str
    reducer: str
    python: str = "python3"
    threads: int = 1  # one per load CPU
    version: str = ""
    keep_log: bool = False  # keep the per-request log after reducing it (audits, tests)
    name: str = "h2load"
    kind: str = "h2load"

    @property
    def label(self) -> str:
        """How the report names the tool."""
        return "h2load"

    @property
    def raw_output_name(self) -> str:
        """File name for the tool's console output in the cell directory."""
        return OUTPUT_FILE

    def command(
        self, url: str, profile: Profile, point: LoadPoint, output_dir: str, prefix: str = ""
    ) -> LoadCommand:
        """h2load holding `point`; the measured pass (no prefix) logs every request, and
        its log is reduced on the load host into `output_dir`/h2load-histogram.json."""
        if prefix:  # the warm-up: no log (its cost shows against the measured pass)
            argv = h2load_command(self.path, url, profile, point, self.threads, None)
            return LoadCommand(argv, {}, None)
        log, summary = f"{output_dir}/{LOG_FILE}", f"{output_dir}/{SUMMARY_FILE}"
        argv = h2load_command(self.path, url, profile, point, self.threads, log)
        after = [self.python, self.reducer, log, summary, *(["--keep"] if self.keep_log else [])]
        return LoadCommand(argv, {}, summary, after)

    def succeeded(self, result: CommandResult) -> bool:
        """h2load exits 0 when it ran (failed requests are counted in its output)."""
        return result.ok

    def parse(
        self, output: str, summary: str | None, profile: Profile, point: LoadPoint, source: str
    ) -> LoadResult:
        """The LoadResult of one run from h2load's output and its reduced log."""
        return parse_h2load(output, summary, profile, point, source)

    def model(self, profile: Profile, point: LoadPoint) -> str:
        """The load model of an h2load run in words."""
        return describe_model(profile, point, threads_for(range(self.threads), point.vus))


def describe_model(profile: Profile, point: LoadPoint, threads: int | None) -> str:
    """h2load's load model of `point` in words (its threads named when given)."""
    on = f" on {threads} thread(s)" if threads else ""
    where = f"{connections_text(point.vus)}{on} for {profile.duration:g} s"
    if point.is_open:
        return (
            f"open model: h2load --rps, {point.rate or 0:,} req/s on {where}, "
            f"{rate_per_connection(point):.4g} req/s per connection, one request at a time "
            "per connection (HTTP/1.1)"
        )
    return f"closed loop: h2load, {where}"
