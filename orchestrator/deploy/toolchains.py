"""Check the compilers the selected servers need on the target; say how to get what's missing."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.hosts.base import Host
from orchestrator.pins import pinned_version
from orchestrator.servers import ServerSpec

ZIG_VERSION = pinned_version("ziglang")


@dataclass(frozen=True)
class Requirement:
    """One tool a build needs, how to see it is there, and how to get it."""

    name: str
    probe: str  # shell snippet that prints the version and exits 0 when usable
    install: str


def zig_command(host: Host) -> list[str]:
    """Zig from the pinned PyPI package, run by the host's Python."""
    return [host.python, "-m", "ziglang"]


def requirements(servers: Sequence[ServerSpec], zig: Sequence[str]) -> list[Requirement]:
    """What building `servers` needs."""
    needed = [Requirement("make", "make --version | head -n1", "apt-get install make")]
    languages = {server.language for server in servers}
    if "c" in languages:
        needed.append(
            Requirement(
                "C compiler (cc)", "cc --version | head -n1", "apt-get install gcc (or clang)"
            )
        )
    if any(s.language == "c" and s.needs_io_uring for s in servers):
        needed.append(
            Requirement(
                "liburing headers",
                "printf '#include <liburing.h>\\n' | cc -E -x c - >/dev/null && "
                "(dpkg-query -W -f '${Version}' liburing-dev 2>/dev/null || echo present)",
                "apt-get install liburing-dev",
            )
        )
    if "rust" in languages:
        needed.append(
            Requirement("cargo", "cargo --version", "apt-get install cargo (Rust 1.63+), or rustup")
        )
    if "zig" in languages:
        zig_cmd = shlex.join(zig)
        needed.append(
            Requirement(
                f"zig {ZIG_VERSION}",
                f'v=$({zig_cmd} version 2>/dev/null) && [ "$v" = {ZIG_VERSION} ] && echo "$v"',
                f"pip install ziglang=={ZIG_VERSION} (for {zig[0]})",
            )
        )
    return needed


@dataclass(frozen=True)
class ToolchainReport:
    """Versions found and the requirements that are missing."""

    versions: dict[str, str]
    missing: tuple[Requirement, ...]

    def problem(self, host: Host) -> str | None:
        """One line naming every missing tool and its install command, or None."""
        if not self.missing:
            return None
        parts = "; ".join(f"{req.name} (install: {req.install})" for req in self.missing)
        return f"target {host.name}: missing toolchain: {parts}"


def check_toolchains(
    host: Host, servers: Sequence[ServerSpec], zig: Sequence[str]
) -> ToolchainReport:
    """Probe every requirement in one command on the host."""
    needed = requirements(servers, zig)
    script = "".join(
        f'if out=$({req.probe} 2>/dev/null); then echo "ok {i} $out"; else echo "missing {i}"; fi\n'
        for i, req in enumerate(needed)
    )
    lines = host.run(["sh", "-c", script], timeout=60).stdout.splitlines()
    versions: dict[str, str] = {}
    missing: list[Requirement] = []
    for line in lines:
        status, _, rest = line.partition(" ")
        index, _, version = rest.partition(" ")
        if not index.isdigit():
            continue
        req = needed[int(index)]
        if status == "ok":
            versions[req.name] = version.strip()
        else:
            missing.append(req)
    return ToolchainReport(versions, tuple(missing))
