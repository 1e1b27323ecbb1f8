"""A host's files as orch's system code reaches them: under a root directory (`/`, or a
captured tree in tests), read by the collector program run with the host's python3,
written through the `Host` interface."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import Host, last_line
from orchestrator.system import collector
from orchestrator.system.services import Services, SystemdServices

COLLECTOR_NAME = "orch-system-collector.py"
COLLECTOR_TIMEOUT_SECONDS = 60.0
NOT_FOUND = 127


@dataclass
class SystemAccess:
    """A host, the root its files are under, and how its services are stopped and started.

    workdir: orch's working directory there (the collector program is provided under it).
    services: None for systemd on the host; tests give their own.
    """

    host: Host
    workdir: str
    root: str = "/"
    services: Services | None = None
    _program: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The host's inventory name."""
        return self.host.name

    def describe(self) -> str:
        """The host as messages name it (and the root, when it is not `/`)."""
        where = "" if self.root == "/" else f" (root {self.root})"
        return f"{self.host.describe()}{where}"

    def path(self, host_path: str) -> str:
        """Where the host's file `host_path` is under the root."""
        if self.root == "/":
            return host_path
        return posixpath.join(self.root, host_path.lstrip("/"))

    def service_control(self) -> Services:
        """The host's services (systemd unless tests gave their own)."""
        if self.services is None:
            self.services = SystemdServices(self.host)
        return self.services

    def collect(self, mode: str, *args: str) -> Any:
        """Run the collector in `mode` on the host and return what it printed (JSON)."""
        if self._program is None:
            remote = f"{self.workdir}/bin/{COLLECTOR_NAME}"
            self._program = self.host.provide_file(Path(collector.__file__), remote)
        argv = [self.host.python, self._program, mode, "--root", self.root, *args]
        done = self.host.run(argv, timeout=COLLECTOR_TIMEOUT_SECONDS, check=False)
        if done.exit_code == NOT_FOUND:
            raise UserError(
                f"{self.host.describe()}: orch reads the system with python3 3.8 or newer "
                f"there, and {self.host.python} cannot be run: {last_line(done.stderr)}"
            )
        if not done.ok and "SyntaxError" in done.stderr:
            raise UserError(
                f"{self.host.describe()}: orch reads the system with python3 3.8 or newer "
                f"there, and {self.host.python} is older"
            )
        if not done.ok:
            raise HostError(
                f"{self.host.describe()}: reading the system failed: "
                f"{last_line(done.stderr or done.stdout)}"
            )
        try:
            return json.loads(done.stdout)
        except ValueError:
            raise HostError(
                f"{self.host.describe()}: the system collector printed no JSON: "
                f"{last_line(done.stdout)}"
            ) from None
