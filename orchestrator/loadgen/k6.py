"""k6: the command line for a profile and the parser of its `--summary-export` JSON."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import HostError
from orchestrator.loadgen.base import LoadResult
from orchestrator.profiles import Profile

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
    """Environment that aims k6/simple.js at `url` with the profile's stages."""
    return {"TARGET_URL": url, "ORCH_STAGES": json.dumps(profile.k6_stages())}


def parse_k6_summary(text: str, duration_seconds: float, source: str = "k6 summary") -> LoadResult:
    """Turn k6's exported summary into a LoadResult.

    Req/s is requests over the profile's duration, as k6's own `http_reqs` rate is.
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
    return LoadResult(
        tool="k6",
        requests=int(reqs.get("count", 0)),
        failed_requests=failed_count,
        duration_seconds=duration_seconds,
        requests_per_second=float(reqs.get("rate", 0.0)),
        latency_ms=latency,
        dropped_iterations=dropped,
    )
