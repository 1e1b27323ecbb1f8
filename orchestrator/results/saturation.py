"""The one rule that says a measurement was limited by the load tool, not the server."""

from __future__ import annotations

# Below this share of its core the server was waiting for requests: the load tool set Req/s.
SATURATION_THRESHOLD = 0.90


def is_load_bound(server_core_busy: float) -> bool:
    """True when the server's pinned core was busy less than SATURATION_THRESHOLD of the
    time: it sat idle waiting for requests, so the load tool set the pace."""
    return server_core_busy < SATURATION_THRESHOLD
