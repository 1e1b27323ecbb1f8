"""Check the tools the selected servers' builds need on the target (their catalogue entries'
`needs`); say how to get what's missing."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.hosts.base import Host
from orchestrator.pins import pinned_version

ZIG_VERSION = pinned_version("ziglang")
TOOL_ORDER = ("make", "cc", "liburing", "cargo", "zig")


@dataclass(frozen=True)
class Requirement:
    """One tool a build needs, how to see it is there, and how to get it."""

    name: str
    probe: str  # shell snippet that prints the version and exits 0 when usable
    install: str


def zig_command(host: Host) -> list[str]:
    """Zig from the pinned PyPI package, run by the host's Python."""
    return [host.python, "-m", "ziglang"]


def _requirement(tool: str, zig: Sequence[str]) -> Requirement:
    """How to probe and install one tool a catalogue entry `needs`."""
    if tool == "make":
        return Requirement("make", "make --version | head -n1", "apt-get install make")
    if tool == "cc":
        return Requirement(
            "C compiler (cc)", "cc --version | head -n1", "apt-get install gcc (or clang)"
        )
    if tool == "liburing":
        return Requirement(
            "liburing headers",
            "printf '#include <liburing.h>\\n' | cc -E -x c - >/dev/null && "
            "(dpkg-query -W -f '${Version}' liburing-dev 2>/dev/null || echo present)",
            "apt-get install liburing-dev",
        )
    if tool == "cargo":
        return Requirement(
            "cargo", "cargo --version", "apt-get install cargo (Rust 1.63+), or rustup"
        )
    zig_cmd = shlex.join(zig)
    return Requirement(
        f"zig {ZIG_VERSION}",
        f'v=$({zig_cmd} version 2>/dev/null) && [ "$v" = {ZIG_VERSION} ] && echo "$v"',
        f"pip install ziglang=={ZIG_VERSION} (for {zig[0]})",
    )


def requirements(servers: Sequence[ServerSpec], zig: Sequence[str]) -> list[Requirement]:
    """What building `servers` needs: the tools their catalogue entries name (`needs`), for
    the entries that are built, in a fixed order."""
    wanted = {tool for s in servers if s.entry.build is not None for tool in s.entry.needs}
    return [_requirement(tool, zig) for tool in TOOL_ORDER if tool in wanted]


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
