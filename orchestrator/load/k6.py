"""k6: the command line for a profile and the parser of its `--summary-export` JSON."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import HostError
from orchestrator.load.points import Profile, k6_duration
from orchestrator.load.result import LoadResult

SCRIPT = "k6/simple.js"
SUMMARY_FILE = "k6-summary.json"


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


def k6_environment(url: str, profile: Profile) -> dict[str, str]:
    """Environment that aims k6/simple.js at `url` with the profile's stages, or for an
    open-model profile its constant arrival rate, duration and VU ceiling."""
    env = {"TARGET_URL": url, "ORCH_STAGES": json.dumps(profile.k6_stages())}
    if profile.rate is not None:
        env["ORCH_RATE"] = str(profile.rate)
        env["ORCH_DURATION"] = k6_duration(profile.duration)
        env["ORCH_MAX_VUS"] = str(profile.max_vus)
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
        latency_ms=latency,
        dropped_iterations=dropped,
    )
