"""The one rule that says a measurement was limited by the load tool, not the server."""

from __future__ import annotations

# Below this share of its core the server was waiting for requests: the load tool set Req/s.
SATURATION_THRESHOLD = 0.90


def is_load_bound(server_core_busy: float) -> bool:
    """True when the server's pinned core was busy less than SATURATION_THRESHOLD of the
    time: it sat idle waiting for requests, so the load tool set the pace."""
    return server_core_busy < SATURATION_THRESHOLD


# At or above this share of its pinned CPUs a load host was at its limit: it could not
# have sent more, so where the server was also idle, this host set Req/s.
LOAD_HOST_LIMIT = 0.90


def load_host_at_limit(cpu_share: float) -> bool:
    """True when a load host's tool used at least LOAD_HOST_LIMIT of its pinned CPUs."""
    return cpu_share >= LOAD_HOST_LIMIT
