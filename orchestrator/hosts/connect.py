"""Open the `Host` objects an inventory describes, and close them again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from orchestrator.errors import UserError
from orchestrator.hosts.base import Host
from orchestrator.hosts.local import LocalHost
from orchestrator.inventory import Inventory

if TYPE_CHECKING:
    from orchestrator.hosts.ssh_connection import SshLink


def open_host(inv: Inventory, name: str, accept_new_host_keys: bool = False) -> Host:
    """A Host for the inventory entry `name`.

    accept_new_host_keys: trust and record keys of hosts not yet in known_hosts (never a
    changed key); the inventory's own setting of the same name also allows it.
    """
    spec = inv.hosts[name]
    if spec.connection == "local":
        return LocalHost(name, spec.address)
    # Imported here: loopback runs never pay for importing fabric and paramiko.
    from orchestrator.hosts.ssh import SshHost
    from orchestrator.hosts.ssh_connection import SshLink
    from orchestrator.hosts.ssh_settings import fabric_config

    # jump_host may name another inventory entry (itself maybe behind a jump): build the
    # gateway chain from its far end. Anything else is `user@host:port`, which the link
    # parses itself.
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
    gateway: SshLink | Literal[False] | None = None
    try:
        for hop in reversed(chain[1:]):
            hop_spec = inv.hosts[hop]
            if hop_spec.connection == "local":
                gateway = False  # "via this machine" = directly
            else:
                gateway = SshLink(
                    hop,
                    hop_spec,
                    config=fabric_config(),
                    accept_new_host_keys=accept_new_host_keys,
                    gateway=gateway,
                )
    except BaseException:
        if gateway:
            gateway.close()
        raise
    # The chain is opened from its far end when the host connects, so each failure names
    # the hop it happened on.
    return SshHost(name, spec, accept_new_host_keys=accept_new_host_keys, gateway=gateway)


def open_hosts(inv: Inventory, accept_new_host_keys: bool = False) -> tuple[Host, Host]:
    """(target, first load host); one shared Host object when both are the same entry."""
    hosts = open_run_hosts(inv, accept_new_host_keys, first_load_only=True)
    return hosts.target, hosts.load


@dataclass
class RunHosts:
    """The target and every load host of an inventory, opened; an entry that is both the
    target and a load host is one Host object."""

    target: Host
    loads: list[Host]

    @property
    def load(self) -> Host:
        """The first (in the single-host form, the only) load host."""
        return self.loads[0]

    def close(self) -> None:
        """Close every host once: each stops what it started and still runs."""
        _close_each(list(dict.fromkeys([self.target, *self.loads])))


def _close_each(hosts: list[Host]) -> None:
    """Close the hosts in order; a failure to close one still closes the others."""
    if hosts:
        try:
            hosts[0].close()
        finally:
            _close_each(hosts[1:])


def open_run_hosts(
    inv: Inventory, accept_new_host_keys: bool = False, first_load_only: bool = False
) -> RunHosts:
    """Open the target and the load hosts (only the first with `first_load_only`)."""
    target = open_host(inv, inv.target.host, accept_new_host_keys)
    loads: list[Host] = []
    members = inv.load_members[:1] if first_load_only else inv.load_members
    try:
        for member in members:
            same = member.host == inv.target.host
            loads.append(target if same else open_host(inv, member.host, accept_new_host_keys))
    except BaseException:
        RunHosts(target, loads).close()
        raise
    return RunHosts(target, loads)


def close_hosts(target: Host, load: Host) -> None:
    """Close both hosts (once when they are one): each stops what it started and still runs."""
    try:
        target.close()
    finally:
        if load is not target:
            load.close()
