"""wrk: finding it, the command line for a profile, and parsing the JSON its Lua hook prints.

wrk keeps a fixed number of connections busy for a fixed time (a closed loop): a profile
maps to its peak VUs as connections, its total duration (whole seconds: wrk accepts no
less) and one thread per load CPU. `wrk/orch.lua` pipelines requests when given a depth
and prints one `ORCH_WRK_JSON {...}` line from wrk's done() hook.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load.points import Profile
from orchestrator.load.result import LoadResult

SCRIPT = "wrk/orch.lua"
OUTPUT_FILE = "wrk-output.txt"
JSON_MARK = "ORCH_WRK_JSON "
PIPELINE_DEPTH = 16  # as in the well-known plaintext test
# wrk's percentile keys (from the Lua hook) and the names LoadResult uses for them.
_PERCENTILES = {
    "50": "med",
    "75": "p(75)",
    "90": "p(90)",
    "99": "p(99)",
    "99.9": "p(99.9)",
    "99.99": "p(99.99)",
}


def find_wrk(inv: Inventory, host: Host) -> str:
    """wrk on the load host: the inventory's load.wrk_path, else wrk on PATH."""
    if inv.load.wrk_path:
        path = host.expand(inv.load.wrk_path)
        if not host.run(["test", "-x", path], timeout=30, check=False).ok:
            raise UserError(f"inventory load.wrk_path: {path} is not executable on {host.name}")
        return path
    found = host.run(["sh", "-c", "command -v wrk"], timeout=30, check=False).stdout.strip()
    if not found:
        raise UserError(
            f"load host {host.name}: wrk not found (apt-get install wrk, or set load.wrk_path)"
        )
    return found


def wrk_version(host: Host, path: str) -> str:
    """wrk's version line (`wrk -v` prints it and exits non-zero)."""
    out = host.run([path, "-v"], timeout=30, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def wrk_seconds(profile: Profile) -> int:
    """The profile's duration in the whole seconds wrk accepts (rounded up)."""
    return max(1, math.ceil(profile.duration - 1e-9))


def wrk_connections(profile: Profile, threads: int) -> int:
    """Connections for a profile: its peak VUs, at least one per thread."""
    return max(profile.max_vus, threads)


def wrk_command(
    wrk: str, script: str, url: str, profile: Profile, threads: int, pipeline: int = 1
) -> list[str]:
    """argv for one wrk run of `profile` against `url`; `pipeline` > 1 pipelines requests."""
    if profile.rate is not None:
        raise UserError("--rate: wrk has no open model; use --load-tool k6 for a fixed rate")
    argv = [
        wrk,
        "--threads",
        str(threads),
        "--connections",
        str(wrk_connections(profile, threads)),
        "--duration",
        f"{wrk_seconds(profile)}s",
        "--script",
        script,
        url,
    ]
    return [*argv, "--", str(pipeline)] if pipeline > 1 else argv


def describe_wrk(profile: Profile, threads: int, pipeline: int) -> str:
    """The load model of a wrk run in words."""
    depth = f", {pipeline} requests pipelined per connection" if pipeline > 1 else ""
    return (
        f"closed loop: wrk, {wrk_connections(profile, threads)} connections on {threads} "
        f"thread(s) for {wrk_seconds(profile)} s{depth}"
    )


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
    latency_ms: dict[str, float] = {}
    if pipeline <= 1 and requests > 0:
        latency_ms = {
            "min": _number(latency, "min", source) / 1000,
            "avg": _number(latency, "mean", source) / 1000,
            "max": _number(latency, "max", source) / 1000,
        }
        for key, name in _PERCENTILES.items():
            if key in percentiles:
                latency_ms[name] = _number(percentiles, key, source) / 1000
    return LoadResult(
        tool="wrk" if pipeline <= 1 else f"wrk-pipelined-{pipeline}",
        requests=requests,
        failed_requests=failed,
        duration_seconds=seconds,
        requests_per_second=requests / seconds if seconds > 0 else 0.0,
        latency_ms=latency_ms,
    )


def threads_for(cpus: Sequence[int]) -> int:
    """One wrk thread per load CPU."""
    return max(1, len(cpus))
