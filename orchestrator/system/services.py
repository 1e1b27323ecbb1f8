"""Services orch may stop for a run and start again (irqbalance): through systemd on the
host; tests give their own `Services`."""

from __future__ import annotations

from typing import Protocol

from orchestrator.errors import UserError
from orchestrator.hosts.base import Host, last_line
from orchestrator.system.change_set import ServiceAction

SYSTEMCTL_TIMEOUT_SECONDS = 60.0
NOT_FOUND = 127  # the shell's status for a program it cannot find


class Services(Protocol):
    """Stops and starts a host's services."""

    def problem(self, service: str, action: ServiceAction) -> str | None:
        """Why `action` cannot be done to `service` here, or None when it can."""

    def act(self, service: str, action: ServiceAction) -> None:
        """Stop or start `service`; UserError (one line) when that fails."""


class SystemdServices:
    """A host's services as systemd runs them (`systemctl`)."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def problem(self, service: str, action: ServiceAction) -> str | None:
        """None when systemd knows `service` (a stop also needs it active)."""
        state = self.host.run(
            ["systemctl", "is-active", f"{service}.service"],
            timeout=SYSTEMCTL_TIMEOUT_SECONDS,
            check=False,
        )
        if state.exit_code == NOT_FOUND:
            return f"{service} runs, but not under systemd (no systemctl): stop it yourself"
        if action == "stop" and state.stdout.strip() != "active":
            return (
                f"{service} runs, but not as the systemd service {service}.service "
                f"({state.stdout.strip() or last_line(state.stderr)}): stop it yourself"
            )
        return None

    def act(self, service: str, action: ServiceAction) -> None:
        """`systemctl stop|start SERVICE`."""
        done = self.host.run(
            ["systemctl", action, f"{service}.service"],
            timeout=SYSTEMCTL_TIMEOUT_SECONDS,
            check=False,
        )
        if not done.ok:
            raise UserError(
                f"{self.host.describe()}: systemctl {action} {service}.service failed: "
                f"{last_line(done.stderr or done.stdout)}"
            )
