"""Whether the benchmark port is free on the target, and which process holds it if not.

Two looks: the target's own socket table (`ss`), which sees a listener whatever its
backlog, and a TCP connect from the load host as the load tool would dial, which also
sees what `ss` cannot (a forwarded or NATed address). A connect alone is not enough: a
listener whose accept queue is full drops the probe's SYN and looks free.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory

POLL_SECONDS = 0.02
WILDCARDS = frozenset({"0.0.0.0", "::", "*"})
_SS_USER = re.compile(r'users:\(\("([^"]+)",pid=(\d+)')


@dataclass(frozen=True)
class Listener:
    """A listening socket on the port: its local address and who holds it."""

    address: str
    holder: str  # ` by NAME (PID N)`, or '' when ss cannot tell


def _address(local: str) -> str:
    """`127.0.0.1:80`, `[::]:80`, `*:80`, `10.0.0.1%eth0:80` -> the address alone."""
    address = local.rsplit(":", 1)[0].split("%", 1)[0]
    return address.removeprefix("[").removesuffix("]")


def listeners(host: Host, port: int) -> list[Listener] | None:
    """The TCP listeners on `port` on `host`, or None when `ss` cannot be used there."""
    out = host.run(["ss", "-Hltnp", f"sport = :{port}"], timeout=30, check=False)
    if not out.ok:
        return None
    found = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        user = _SS_USER.search(line)
        holder = f" by {user[1]} (PID {user[2]})" if user else ""
        found.append(Listener(_address(fields[3]), holder))
    return found


def _clashes(listen_address: str, listener: Listener) -> bool:
    """Whether a server binding `listen_address` would collide with `listener`."""
    return (
        listen_address in WILDCARDS
        or listener.address in WILDCARDS
        or listener.address == listen_address
    )


def port_holder(inv: Inventory, target: Host, load: Host, port: int | None = None) -> str | None:
    """None when the servers' port (or `port`) is free; else who holds it (` by NAME (PID
    N)` or '')."""
    port = port or inv.target.listen.port
    found = listeners(target, port)
    if found is not None:
        clashing = [x for x in found if _clashes(inv.target.listen.address, x)]
        if clashing:
            return clashing[0].holder
    if load.tcp_probe(inv.dial_address, port, timeout=0.5):
        return ""
    return None


def wait_port_free(
    inv: Inventory, target: Host, load: Host, seconds: float, port: int | None = None
) -> str | None:
    """Wait up to `seconds` for the port to be free; None when it is, else its holder."""
    deadline = time.monotonic() + seconds
    while (holder := port_holder(inv, target, load, port)) is not None:
        if time.monotonic() >= deadline:
            return holder
        time.sleep(POLL_SECONDS)
    return None


def port_in_use(inv: Inventory, target: Host, holder: str, port: int | None = None) -> str:
    """`port P is already in use on target T by NAME (PID N)` for messages."""
    port = port or inv.target.listen.port
    return f"port {port} is already in use on target {target.name}{holder}"
