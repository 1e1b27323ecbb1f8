"""Open the `Host` objects an inventory describes."""

from __future__ import annotations

from orchestrator.errors import UserError
from orchestrator.hosts import Host, LocalHost
from orchestrator.inventory import Inventory


def open_host(inv: Inventory, name: str, accept_new_host_keys: bool = False) -> Host:
    """A Host for the inventory entry `name`.

    accept_new_host_keys: trust and record keys of hosts not yet in known_hosts (never a
    changed key); the inventory's own setting of the same name also allows it.
    """
    spec = inv.hosts[name]
    if spec.connection == "local":
        return LocalHost(name, spec.address)
    raise UserError(f"inventory hosts.{name}: SSH hosts are not supported by this version yet")


def open_hosts(inv: Inventory, accept_new_host_keys: bool = False) -> tuple[Host, Host]:
    """(target, load); one shared Host object when both are the same entry."""
    target = open_host(inv, inv.target.host, accept_new_host_keys)
    load = target if inv.is_loopback else open_host(inv, inv.load.host, accept_new_host_keys)
    return target, load
