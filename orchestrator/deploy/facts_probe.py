"""Collect host facts (kernel, distro, CPU, memory, io_uring support, tool versions) in one
command."""

from __future__ import annotations

import shlex

from orchestrator.facts import HostFacts
from orchestrator.hosts.base import Host

# One shell script, so a remote host costs one round trip. Each line is `key=value`.
_FACTS_SCRIPT = r"""
echo "hostname=$(uname -n)"
echo "kernel=$(uname -r)"
echo "arch=$(uname -m)"
. /etc/os-release 2>/dev/null; echo "distro=${PRETTY_NAME:-unknown}"
echo "cpu_model=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
echo "cores=$(nproc --all 2>/dev/null || getconf _NPROCESSORS_ONLN)"
echo "memory_kib=$(grep -m1 MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
echo "clock_ticks=$(getconf CLK_TCK)"
echo "io_uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo absent)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
"""


def parse_facts(text: str) -> dict[str, str]:
    """`key=value` lines into a dict."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs


def collect_facts(host: Host, tool_commands: dict[str, list[str]] | None = None) -> HostFacts:
    """Read a host's facts; `tool_commands` maps a tool name to the argv printing its version."""
    script = _FACTS_SCRIPT
    for name, argv in (tool_commands or {}).items():
        script += f'echo "tool.{name}=$({shlex.join(argv)} 2>&1 | head -n1)"\n'
    pairs = parse_facts(host.run(["sh", "-c", script], timeout=30).stdout)
    tools = {key[5:]: value for key, value in pairs.items() if key.startswith("tool.")}
    return HostFacts(
        hostname=pairs.get("hostname", host.name),
        kernel=pairs.get("kernel", "unknown"),
        arch=pairs.get("arch", "unknown"),
        distro=pairs.get("distro", "unknown"),
        cpu_model=pairs.get("cpu_model", ""),
        cores=int(pairs.get("cores") or 0),
        memory_kib=int(pairs.get("memory_kib") or 0),
        clock_ticks=int(pairs.get("clock_ticks") or 100),
        io_uring_disabled=pairs.get("io_uring_disabled", "absent"),
        boot_id=pairs.get("boot_id", ""),
        tools=tools,
    )
