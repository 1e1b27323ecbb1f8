"""Open the `Host` objects an inventory describes."""

from __future__ import annotations

from orchestrator.errors import UserError
from orchestrator.hosts.base import Host, LocalHost
from orchestrator.inventory import Inventory


def open_host(inv: Inventory, name: str, accept_new_host_keys: bool = False) -> Host:
    """A Host for the inventory entry `name`.

    accept_new_host_keys: trust and record keys of hosts not yet in known_hosts (never a
    changed key); the inventory's own setting of the same name also allows it.
    """
    from orchestrator.hosts.ssh import SshHost

    spec = inv.hosts[name]
    if spec.connection == "local":
        return LocalHost(name, spec.address)
    # jump_host may name another inventory entry (itself maybe behind a jump): open the
    # chain from its far end. Anything else is `user@host:port`, which SshHost parses.
    chain = [name]
    while (hop := inv.hosts[chain[-1]].jump_host) in inv.hosts:
        if hop in chain:
            loop = " -> ".join([*chain, hop])
            raise UserError(
                f"inventory hosts.{name}.jump_host: the jump hosts form a loop ({loop})"
            )
        chain.append(hop)
        if inv.hosts[hop].connection == "local":
            break
    jump: Host | None = None
    for hop in reversed(chain[1:]):
        hop_spec = inv.hosts[hop]
        if hop_spec.connection == "local":
            jump = LocalHost(hop, hop_spec.address)  # "via this machine" = directly
        else:
            jump = SshHost(hop, hop_spec, accept_new_host_keys=accept_new_host_keys, jump=jump)
    return SshHost(name, spec, accept_new_host_keys=accept_new_host_keys, jump=jump)


def open_hosts(inv: Inventory, accept_new_host_keys: bool = False) -> tuple[Host, Host]:
    """(target, load); one shared Host object when both are the same entry."""
    target = open_host(inv, inv.target.host, accept_new_host_keys)
    load = target if inv.is_loopback else open_host(inv, inv.load.host, accept_new_host_keys)
    return target, load


def close_hosts(target: Host, load: Host) -> None:
    """Close both hosts (once when they are one): each stops what it started and still runs."""
    try:
        target.close()
    finally:
        if load is not target:
            load.close()
