"""The lab's network: a bridge, and per machine a namespace joined to it by a veth pair.

Commands run through `LocalHost` (named `lab` in messages), so a failing `ip` command
is one line naming the command and its last line of output.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import CommandResult
from orchestrator.hosts.local import LocalHost
from orchestrator.lab.topology import BRIDGE, BRIDGE_ADDRESS, PREFIX_LENGTH, ROLES, Role
from orchestrator.log import Log

NETNS_DIR = Path("/run/netns")
COMMAND_TIMEOUT_SECONDS = 30.0


LAB_HOST = LocalHost("lab")


def run(argv: Sequence[str], *, check: bool = True) -> CommandResult:
    """Run a command here within the lab's time limit; with check, failing is a HostError."""
    return LAB_HOST.run(argv, timeout=COMMAND_TIMEOUT_SECONDS, check=check)


def link_exists(name: str) -> bool:
    """True when a network interface of that name exists in this namespace."""
    return Path("/sys/class/net", name).exists()


def netns_exists(name: str) -> bool:
    """True when a named network namespace exists."""
    return (NETNS_DIR / name).exists()


def namespace_pids(namespace: str) -> list[int]:
    """The processes in a network namespace (none when it does not exist)."""
    listed = run(["ip", "netns", "pids", namespace], check=False).stdout.split()
    return [int(pid) for pid in listed if pid.isdigit()]


def _disable_ipv6(interface: str, namespace: str | None = None) -> None:
    # No IPv6 autoconfiguration chatter on the lab links: eth0's counters then count the
    # benchmark's packets and little else.
    key = f"net.ipv6.conf.{interface}.disable_ipv6=1"
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    run([*prefix, "sysctl", "-qw", key], check=False)


def check_subnet_free() -> None:
    """The lab's subnet must not already be routed somewhere else on this machine."""
    subnet = ipaddress.ip_network(f"{BRIDGE_ADDRESS}/{PREFIX_LENGTH}", strict=False)
    listed = run(["ip", "-j", "-4", "addr", "show"], check=False).stdout or "[]"
    for link in json.loads(listed):
        for info in link.get("addr_info", []):
            network = ipaddress.ip_network(
                f"{info.get('local')}/{info.get('prefixlen', 32)}", strict=False
            )
            if network.overlaps(subnet):
                raise UserError(
                    f"orch lab: {subnet} is already in use on interface {link.get('ifname')} "
                    f"({info.get('local')}/{info.get('prefixlen')}); the lab needs that subnet"
                )


def build_network(log: Log, roles: Sequence[Role] = ROLES) -> None:
    """The bridge with its address, and each role's namespace with eth0 on the bridge."""
    log(f"bridge {BRIDGE} {BRIDGE_ADDRESS}/{PREFIX_LENGTH}")
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _disable_ipv6(BRIDGE)
    run(["ip", "addr", "add", f"{BRIDGE_ADDRESS}/{PREFIX_LENGTH}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    for role in roles:
        ns = role.namespace
        log(f"namespace {ns}: eth0 {role.address}/{PREFIX_LENGTH} via {role.veth}")
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", role.veth, "type", "veth", "peer", "name", role.peer])
        _disable_ipv6(role.veth)
        run(["ip", "link", "set", role.peer, "netns", ns])
        run(["ip", "-n", ns, "link", "set", role.peer, "name", "eth0"])
        _disable_ipv6("all", ns)
        _disable_ipv6("eth0", ns)
        run(["ip", "-n", ns, "addr", "add", f"{role.address}/{PREFIX_LENGTH}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "link", "set", role.veth, "master", BRIDGE])
        run(["ip", "link", "set", role.veth, "up"])


def remove_network(log: Log, roles: Sequence[Role] = ROLES) -> None:
    """Delete the veths, namespaces and bridge that exist (the processes must be gone)."""
    for role in roles:
        if link_exists(role.veth):
            run(["ip", "link", "del", role.veth], check=False)
        if netns_exists(role.namespace):
            log(f"deleting namespace {role.namespace}")
            run(["ip", "netns", "del", role.namespace])
    if link_exists(BRIDGE):
        log(f"deleting bridge {BRIDGE}")
        run(["ip", "link", "del", BRIDGE])


def check_bridged_path(roles: Sequence[Role] = ROLES) -> None:
    """Each load namespace -> the target namespace through the bridge (a firewall may
    block it)."""
    target, *loads = roles
    probe = "import socket, sys\nsocket.create_connection((sys.argv[1], 22), 3).close()\n"
    for load in loads:
        done = run(
            ["ip", "netns", "exec", load.namespace, sys.executable, "-c", probe, target.address],
            check=False,
        )
        if not done.ok:
            raise HostError(
                f"lab: {load.namespace} cannot reach {target.address}:22 across {BRIDGE} "
                "(is bridged traffic filtered by a firewall, e.g. br_netfilter?)"
            )
