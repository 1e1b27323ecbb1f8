"""Machines orch drives: the `Host` interface, this machine, SSH hosts, and opening them.

Only this package knows whether a machine is local or remote. `SshHost` is imported on
first use, so loopback runs never import fabric and paramiko.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.hosts.base import (
    STOP_GRACE_SECONDS,
    CommandResult,
    Host,
    describe_exit,
    pinned,
)
from orchestrator.hosts.connect import RunHosts, close_hosts, open_host, open_hosts, open_run_hosts
from orchestrator.hosts.local import LocalHost

if TYPE_CHECKING:
    from orchestrator.hosts.ssh import SshHost

__all__ = [
    "STOP_GRACE_SECONDS",
    "CommandResult",
    "Host",
    "LocalHost",
    "RunHosts",
    "SshHost",
    "close_hosts",
    "describe_exit",
    "open_host",
    "open_hosts",
    "open_run_hosts",
    "pinned",
]


def __getattr__(name: str) -> Any:
    if name == "SshHost":
        from orchestrator.hosts.ssh import SshHost

        return SshHost
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
