"""wrk: finding it, the command line for a load point, and parsing the JSON its Lua hook
prints.

wrk keeps a fixed number of connections busy for a fixed time (a closed loop): a point's
`vus` are its connections, the profile's total duration its run time, with one thread per
load CPU (never more threads than connections). wrk takes whole seconds only: a shorter or
fractional duration (a sweep's quarter-second warm-up) runs under coreutils `timeout`,
which sends wrk the SIGINT that ends it early; wrk then stops its threads, reports what it
measured in that time and exits 0.
`wrk/orch.lua` pipelines requests when given a depth and prints one `ORCH_WRK_JSON {...}`
line from wrk's done() hook.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import CommandResult, Host
from orchestrator.load.points import LoadPoint, Profile, connections_text
from orchestrator.load.result import Latency, LatencyHistogram, LoadResult
from orchestrator.load.tool import LoadCommand, find_program

SCRIPT = "wrk/orch.lua"
OUTPUT_FILE = "wrk-output.txt"
JSON_MARK = "ORCH_WRK_JSON "
PIPELINE_DEPTH = 16  # as in the well-known plaintext test
# wrk's percentile keys (from the Lua hook) and the Latency fields they fill.
_PERCENTILES = {
    "50": "p50",
    "75": "p75",
    "90": "p90",
    "99": "p99",
    "99.9": "p999",
    "99.99": "p9999",
}


def find_wrk(configured: str | None, host: Host) -> str:
    """wrk on the load host: `configured` (the inventory's load.wrk_path), else wrk on PATH."""
    return find_program(host, "wrk", configured, "load.wrk_path", "wrk")


def wrk_version(host: Host, path: str) -> str:
    """wrk's version line (`wrk -v` prints it and exits non-zero)."""
    out = host.run([path, "-v"], timeout=30, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def wrk_seconds(profile: Profile) -> int:
    """The profile's duration in the whole seconds wrk accepts (rounded up)."""
    return max(1, math.ceil(profile.duration - 1e-9))


def cut_short(profile: Profile) -> bool:
    """Whether wrk's whole seconds overshoot the profile, so SIGINT must end it on time."""
    return wrk_seconds(profile) - profile.duration > 1e-9


def seconds_text(profile: Profile) -> str:
    """The profile's duration as the load model reports it, e.g. `5` or `0.25`."""
    return f"{profile.duration:g}" if cut_short(profile) else str(wrk_seconds(profile))


def threads_for(cpus: Sequence[int], connections: int | None = None) -> int:
    """One wrk thread per load CPU, but no more threads than connections."""
    threads = max(1, len(cpus))
    return threads if connections is None else max(1, min(threads, connections))


def wrk_command(
    wrk: str, script: str, url: str, profile: Profile, point: LoadPoint, threads: int
) -> list[str]:
    """argv for one wrk run of `point` for the profile's duration against `url`."""
    if point.kind == "open":
        raise UserError(
            "--rate: wrk has no open model; use --load-tool h2load (or k6) for a fixed rate"
        )
    argv = [
        wrk,
        "--threads",
        str(threads_for(range(threads), point.vus)),
        "--connections",
        str(point.vus),
        "--duration",
        f"{wrk_seconds(profile)}s",
        "--script",
        script,
        url,
    ]
    if point.pipeline > 1:
        argv += ["--", str(point.pipeline)]
    if cut_short(profile):
        # --preserve-status: wrk's own exit status (0), not timeout's 124.
        timer = ["timeout", "--preserve-status", "--signal=INT", f"{profile.duration:g}s"]
        argv = [*timer, *argv]
    return argv


def _number(data: dict[str, Any], key: str, source: str) -> float:
    value = data.get(key)
    if not isinstance(value, (int, float)):
        raise HostError(f"{source}: wrk summary lacks a number for '{key}'")
    return float(value)


def parse_wrk_output(text: str, pipeline: int = 1, source: str = "wrk output") -> LoadResult:
    """Turn wrk's output (its text, then the hook's JSON line) into a LoadResult.

    Failed requests are all of wrk's error counts (non-2xx/3xx answers, connect, read,
    write errors and timeouts). Pipelined runs carry no latencies: wrk times a whole batch
    and its coordinated-omission correction, counting responses rather than batches,
    corrupts the percentiles.
    """
    lines = [line for line in text.splitlines() if line.startswith(JSON_MARK)]
    if not lines:
        raise HostError(f"{source}: no {JSON_MARK.strip()} line (did wrk run {SCRIPT}?)")
    try:
        data: dict[str, Any] = json.loads(lines[-1][len(JSON_MARK) :])
        errors: dict[str, Any] = data["errors"]
        latency: dict[str, Any] = data["latency_us"]
        percentiles: dict[str, Any] = latency["percentiles"]
    except (ValueError, KeyError, TypeError) as exc:
        raise HostError(f"{source}: unreadable wrk summary ({exc})") from None
    seconds = _number(data, "duration_us", source) / 1e6
    requests = int(_number(data, "requests", source))
    failed = sum(int(_number(errors, key, source)) for key in errors)
    histogram = _histogram(data.get("histogram"), source)
    figures: dict[str, float] = {}
    if pipeline <= 1 and requests > 0:
        mean = _number(latency, "mean", source) / 1000
        if histogram is not None and histogram.total > 0:
            # The whole histogram gives every percentile; wrk's own line is a cross-check.
            return LoadResult(
                tool="wrk",
                requests=requests,
                failed_requests=failed,
                duration_seconds=seconds,
                requests_per_second=requests / seconds if seconds > 0 else 0.0,
                latency=histogram.latency(mean),
                histogram=histogram,
            )
        figures = {
            "min": _number(latency, "min", source) / 1000,
            "mean": mean,
            "max": _number(latency, "max", source) / 1000,
        }
        for key, name in _PERCENTILES.items():
            if key in percentiles:
                figures[name] = _number(percentiles, key, source) / 1000
    return LoadResult(
        tool="wrk" if pipeline <= 1 else f"wrk-pipelined-{pipeline}",
        requests=requests,
        failed_requests=failed,
        duration_seconds=seconds,
        requests_per_second=requests / seconds if seconds > 0 else 0.0,
        latency=Latency(**figures),
    )


def _histogram(data: Any, source: str) -> LatencyHistogram | None:
    """The hook's `histogram` (value/count pairs in microseconds), when it printed one."""
    if data is None:
        return None
    try:
        return LatencyHistogram(
            buckets=[(float(value), int(count)) for value, count in data["us"]],
            method=f"wrk {data['method']}",
            reduce_seconds=float(data["seconds"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HostError(f"{source}: unreadable wrk histogram ({exc})") from None


@dataclass(frozen=True)
class Wrk:
    """wrk on a load host, with orch's Lua hook; `name` is what --load-tool called it."""

    path: str
    script: str  # wrk/orch.lua on the load host
    threads: int = 1  # one per load CPU
    version: str = ""
    name: str = "wrk"  # or wrk-pipelined
    pipeline: int = 1  # the run's default depth, for its label
    kind: str = "wrk"

    @property
    def label(self) -> str:
        """`wrk`, or `wrk-pipelined-16` when the run pipelines."""
        return f"wrk-pipelined-{self.pipeline}" if self.pipeline > 1 else "wrk"

    @property
    def raw_output_name(self) -> str:
        """File name for the tool's console output in the cell directory."""
        return OUTPUT_FILE

    def command(
        self, url: str, profile: Profile, point: LoadPoint, output_dir: str, prefix: str = ""
    ) -> LoadCommand:
        """wrk holding the point's connections for the profile's duration."""
        argv = wrk_command(self.path, self.script, url, profile, point, self.threads)
        return LoadCommand(argv, {}, None)

    def succeeded(self, result: CommandResult) -> bool:
        """wrk exits 0 when it ran."""
        return result.ok

    def parse(
        self, output: str, summary: str | None, profile: Profile, point: LoadPoint, source: str
    ) -> LoadResult:
        """The LoadResult of one run from wrk's console output."""
        return parse_wrk_output(output, point.pipeline, source=source)

    def model(self, profile: Profile, point: LoadPoint) -> str:
        """The load model of a wrk run in words."""
        threads = threads_for(range(self.threads), point.vus)
        depth = (
            f", {point.pipeline} requests pipelined per connection" if point.pipeline > 1 else ""
        )
        return (
            f"closed loop: wrk, {connections_text(point.vus)} on {threads} "
            f"thread(s) for {seconds_text(profile)} s{depth}"
        )
