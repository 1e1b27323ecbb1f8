"""k6: the command line for a load point and the parser of its `--summary-export` JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import HostError
from orchestrator.hosts.base import CommandResult
from orchestrator.load.points import LoadPoint, Profile, k6_duration
from orchestrator.load.result import Latency, LoadResult
from orchestrator.load.tool import LoadCommand

SCRIPT = "k6/simple.js"
SUMMARY_FILE = "k6-summary.json"
THRESHOLDS_CROSSED = 99  # k6's exit status when thresholds fail; its summary is valid


def k6_command(k6: str, script: str, summary_path: str) -> list[str]:
    """argv for one k6 run; `--address ''` turns off k6's REST API port (no port clashes)."""
    return [
        k6,
        "run",
        "--quiet",
        "--no-color",
        "--address",
        "",
        "--summary-export",
        summary_path,
        script,
    ]


def split_argv(
    argv: Sequence[str], api: str, segment: str, sequence: str, samples: str | None
) -> list[str]:
    """`argv` of k6_command for one of several load hosts: paused with its REST API at
    `api` (orch's agent resumes it there), running execution segment `segment` of
    `sequence`, and, with `samples`, every sample written to that CSV file (system tags
    off: only the request durations are needed from it, and every tag costs k6 time)."""
    argv = list(argv)
    at = argv.index("--address")
    argv[at : at + 2] = ["--address", api, "--paused"]
    extra = ["--execution-segment", segment, "--execution-segment-sequence", sequence]
    if samples is not None:
        extra += ["--system-tags", "", "--out", f"csv={samples}"]
    return [*argv[:-1], *extra, argv[-1]]


def k6_environment(url: str, profile: Profile, point: LoadPoint) -> dict[str, str]:
    """Environment that aims k6/simple.js at `url`: the profile's stages for a ramp point,
    constant VUs for a closed point, a constant arrival rate for an open one."""
    env = {"TARGET_URL": url, "ORCH_STAGES": json.dumps(profile.k6_stages())}
    if point.kind == "open":
        env["ORCH_RATE"] = str(point.rate)
        env["ORCH_DURATION"] = k6_duration(profile.duration)
        env["ORCH_MAX_VUS"] = str(point.vus)
    elif point.kind == "closed":
        env["ORCH_VUS"] = str(point.vus)
        env["ORCH_DURATION"] = k6_duration(profile.duration)
    return env


def parse_k6_summary(text: str, duration_seconds: float, source: str = "k6 summary") -> LoadResult:
    """Turn k6's exported summary into a LoadResult.

    Req/s is k6's own `http_reqs` rate: requests over the test's run time, which is the
    profile's duration plus any wait for the last requests; `count / rate` recovers that
    time (`duration_seconds` falls back to the profile's when k6 measured nothing).
    """
    try:
        summary: dict[str, Any] = json.loads(text)
        metrics = summary["metrics"]
        reqs = metrics["http_reqs"]
        durations = metrics["http_req_duration"]
    except (ValueError, KeyError, TypeError) as exc:
        raise HostError(
            f"{source}: not a k6 summary with http_reqs/http_req_duration ({exc})"
        ) from None
    failed = metrics.get("http_req_failed", {})
    # In k6's Rate export "passes" counts true samples, i.e. failed requests.
    failed_count = int(failed.get("passes", 0))
    dropped = int(metrics.get("dropped_iterations", {}).get("count", 0))
    latency = {
        key: float(value) for key, value in durations.items() if isinstance(value, (int, float))
    }
    count = int(reqs.get("count", 0))
    rate = float(reqs.get("rate", 0.0))
    return LoadResult(
        tool="k6",
        requests=count,
        failed_requests=failed_count,
        duration_seconds=count / rate if count and rate > 0 else duration_seconds,
        requests_per_second=rate,
        latency=Latency.from_summary_keys(latency),
        dropped_iterations=dropped,
    )


@dataclass(frozen=True)
class K6:
    """k6 on a load host: ramping, constant or arrival-rate VUs running k6/simple.js."""

    path: str  # the binary on the load host
    script: str  # k6/simple.js on the load host
    version: str = ""
    name: str = "k6"
    kind: str = "k6"

    @property
    def label(self) -> str:
        """How the report names the tool."""
        return "k6"

    @property
    def raw_output_name(self) -> str:
        """File name for the tool's console output in the cell directory."""
        return "k6-output.txt"

    def command(
        self, url: str, profile: Profile, point: LoadPoint, output_dir: str, prefix: str = ""
    ) -> LoadCommand:
        """k6 run of `point` for the profile's duration; the summary goes to `output_dir`."""
        summary = f"{output_dir}/{prefix}{SUMMARY_FILE}"
        return LoadCommand(
            k6_command(self.path, self.script, summary),
            k6_environment(url, profile, point),
            summary,
        )

    def succeeded(self, result: CommandResult) -> bool:
        """k6 exits 99 when thresholds fail, with a valid summary."""
        return result.ok or result.exit_code == THRESHOLDS_CROSSED

    def parse(
        self, output: str, summary: str | None, profile: Profile, point: LoadPoint, source: str
    ) -> LoadResult:
        """The LoadResult of one run from its summary file."""
        if summary is None:
            raise HostError(f"{source}: k6 left no summary")
        return parse_k6_summary(summary, profile.duration, source=source)

    def model(self, profile: Profile, point: LoadPoint) -> str:
        """The load model in words, as the report states it."""
        if point.kind == "open":
            return (
                f"open model: k6 constant-arrival-rate, {point.rate} req/s for "
                f"{profile.duration:g} s, up to {point.vus} VUs"
            )
        if point.kind == "closed":
            return (
                f"closed loop: k6, {point.vus} constant VUs for {profile.duration:g} s, one "
                "request per iteration"
            )
        return (
            f"closed loop: k6 ramping VUs up to {profile.max_vus} over {profile.duration:g} s, "
            "one request per iteration"
        )
