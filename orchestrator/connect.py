"""Open the `Host` objects an inventory describes."""

from __future__ import annotations

from orchestrator.errors import UserError
from orchestrator.hosts import Host, LocalHost
from orchestrator.inventory import Inventory


def open_host(inv: Inventory, name: str) -> Host:
    """A Host for the inventory entry `name`."""
    spec = inv.hosts[name]
    if spec.connection == "local":
        return LocalHost(name, spec.address)
    raise UserError(f"inventory hosts.{name}: SSH hosts are not supported by this version yet")


def open_hosts(inv: Inventory) -> tuple[Host, Host]:
    """(target, load); one shared Host object when both are the same entry."""
    target = open_host(inv, inv.target.host)
    load = target if inv.is_loopback else open_host(inv, inv.load.host)
    return target, load
