"""What a host is (kernel, distro, CPU, memory, io_uring support, tool versions), as the
run record keeps it and the report's System Specs show it."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict


class HostFacts(BaseModel):
    """What a machine is, as the report header shows it."""

    model_config = ConfigDict(extra="forbid")

    hostname: str
    kernel: str
    arch: str
    distro: str
    cpu_model: str
    cores: int
    memory_kib: int
    clock_ticks: int
    io_uring_disabled: str
    tools: dict[str, str] = {}
    boot_id: str = ""  # the running kernel's: hosts with one boot id are one machine

    @property
    def memory_gib(self) -> float:
        """Total memory in GiB."""
        return self.memory_kib / 1024 / 1024

    def kernel_at_least(self, major: int, minor: int) -> bool:
        """Compare the kernel release with major.minor."""
        match = re.match(r"(\d+)\.(\d+)", self.kernel)
        if match is None:
            return False
        return (int(match[1]), int(match[2])) >= (major, minor)

    def io_uring_problem(self) -> str | None:
        """Why the io_uring servers cannot run here, or None when they can."""
        if not self.kernel_at_least(6, 1):
            return (
                f"kernel {self.kernel} is older than 6.1 (DEFER_TASKRUN, multishot recv "
                "and buffer rings are needed)"
            )
        if self.io_uring_disabled == "2":
            return "io_uring is disabled (sysctl kernel.io_uring_disabled=2)"
        return None

    def summary(self) -> str:
        """One line like the seed's System Specs."""
        return (
            f"{self.hostname}: Linux {self.kernel} ({self.arch}), {self.distro}, "
            f"{self.cpu_model or 'unknown CPU'}, {self.cores} cores, "
            f"{self.memory_gib:.1f} GiB"
        )
