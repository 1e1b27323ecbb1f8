"""The hosts' systems around a run: read (and with --tune, tuned) before the first cell,
recorded in run.json, and put back when the run ends, however it ends; what a killed
run left changed is put back before the next one starts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import Host
from orchestrator.hosts.connect import RunHosts
from orchestrator.inventory import Inventory
from orchestrator.log import Log
from orchestrator.measure.interface import detect_interface
from orchestrator.results.rundir import RunDirectory
from orchestrator.run.placement import PLACEMENT, ReceiveWork, place_receive_work
from orchestrator.run.signals import Interrupted, RunInterrupted, signal_name
from orchestrator.run.start_record import peer_address
from orchestrator.system.access import SystemAccess
from orchestrator.system.changes import reset_from_saved
from orchestrator.system.model import SystemRecord
from orchestrator.system.session import (
    RUN_TUNE,
    SystemHost,
    host_roles,
    read_hosts,
    tune_hosts,
)
from orchestrator.system.show import tune_lines
from orchestrator.system.warning_rules import find_warnings


def hosts_by_name(inv: Inventory, hosts: RunHosts) -> dict[str, Host]:
    """The run's hosts by inventory name, each once (the target first)."""
    names = [inv.target.host, *(member.host for member in inv.load_members)]
    found: dict[str, Host] = {}
    for name, host in zip(names, [hosts.target, *hosts.loads], strict=True):
        found.setdefault(name, host)
    return found


def interface_of(inv: Inventory, name: str, host: Host) -> str | None:
    """The interface the run's traffic crosses on host `name`: the target's toward its
    peer (or the inventory's), a load host's toward the address it dials."""
    if name == inv.target.host:
        return inv.target.interface or detect_interface(host, peer_address(inv))
    member = next(member for member in inv.load_members if member.host == name)
    return detect_interface(host, inv.dial_address_of(member))


def system_hosts(inv: Inventory, hosts: Mapping[str, Host]) -> list[SystemHost]:
    """Each host once, as `orch system` reads it: its roles' CPUs and its interface."""
    return [
        SystemHost(
            name=name,
            access=SystemAccess(host, inv.workdir_of(name)),
            roles=host_roles(inv, name),
            interface=interface_of(inv, name, host),
        )
        for name, host in hosts.items()
    ]


@dataclass(frozen=True)
class Placement:
    """Where the run puts the target's receive work, and what it needs to know for it."""

    work: ReceiveWork = "as-is"
    interface: str | None = None
    server_cpus: tuple[int, ...] = ()


@contextlib.contextmanager
def run_system(
    hosts: Sequence[SystemHost],
    tune: bool,
    log: Log,
    run_dir: RunDirectory | None = None,
    placement: Placement = Placement(),
) -> Iterator[SystemRecord]:
    """Read the hosts' systems (after tuning them when `tune`, and placing the target's
    receive work as asked) and yield the record of them; whatever was changed is put back
    on the way out (end, failure, Ctrl-C, SIGTERM). A signal before the yield is a
    RunInterrupted for `run_dir`."""
    tuned = placed = False
    try:
        try:
            facts = read_hosts(hosts)
            record = SystemRecord(hosts=facts, tune=tune)
            if tune:
                tuned = True  # from here on, whatever it saved is put back on the way out
                results = tune_hosts(hosts, facts, RUN_TUNE, "run")
                for line in tune_lines(results):
                    log(f"tune: {line.strip()}")
                if any(result.made for result in results):
                    facts = read_hosts(hosts)  # as the run finds them
                record = SystemRecord(
                    hosts=facts,
                    tune=True,
                    changes=[r.change_set for r in results if r.change_set is not None],
                    not_tuned={r.machine: r.left_alone for r in results if r.left_alone},
                )
            if placement.work != "as-is":
                placed = True
                target = hosts[0]
                placed_set = place_receive_work(
                    target,
                    placement.work,
                    placement.interface,
                    placement.server_cpus,
                    bool(facts[target.name].irqbalance_pids),
                    log,
                )
                if placed_set is not None:
                    facts = read_hosts(hosts)  # as the run finds them
                    changes = [*record.changes, placed_set]
                    record = record.model_copy(update={"hosts": facts, "changes": changes})
            record = record.model_copy(
                update={"warnings": find_warnings(facts), "receive_work": placement.work}
            )
        except (KeyboardInterrupt, Interrupted) as stop:
            raise RunInterrupted(run_dir, signal_name(stop)) from None
        yield record
    finally:
        if placed:
            put_back(hosts[:1], log, PLACEMENT, "receive work")
        if tuned:
            put_back(hosts, log)


def put_back(
    hosts: Sequence[SystemHost], log: Log, name: str = RUN_TUNE, what: str = "tune"
) -> None:
    """Put back the run's change set `name` (its tune, or its placement of receive work)
    on every host; a failure is said, not raised (the state stays saved: the next run or
    `orch system reset` puts it back)."""
    for host in hosts:
        try:
            for change_set in reset_from_saved(host.access, [name]):
                log(f"{what}: {host.name}: put back {len(change_set.changes)} settings")
        except (UserError, HostError) as exc:
            log(f"{what}: {exc} (the next orch run or orch system reset puts it back)")
