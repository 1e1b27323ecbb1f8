"""`orch system` on an inventory's hosts: read each host once, tune each machine once, put
back what was saved; and, for runs, put back what a killed run left changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.errors import UserError
from orchestrator.hosts.base import CommandResult
from orchestrator.inventory import Inventory
from orchestrator.log import Log
from orchestrator.system.access import SystemAccess
from orchestrator.system.change_set import Change, ChangeSet, Scope
from orchestrator.system.changes import (
    apply,
    in_use,
    plan_changes,
    require_root,
    reset_from_saved,
    saved_change_sets,
)
from orchestrator.system.ethtool import CommandRunner, read_ethtool
from orchestrator.system.model import SystemFacts
from orchestrator.system.tune import tune_wishes
from orchestrator.system.warning_rules import machines

MANUAL_TUNE = "tune"  # the change set of `orch system tune`
RUN_TUNE = "run-tune"  # the change set of `orch run --tune`
ETHTOOL_TIMEOUT_SECONDS = 30.0


@dataclass
class SystemHost:
    """One inventory host as `orch system` sees it: its files, the CPUs pinned there by
    role, the interface the run's traffic crosses there, and how commands run there
    (None: the host's own `run`; tests give recorded output)."""

    name: str
    access: SystemAccess
    roles: dict[str, list[int]]
    interface: str | None = None
    run_command: CommandRunner | None = None

    @property
    def role_label(self) -> str:
        """`target`, `load` or `target, load`."""
        names = {"server": "target", "load": "load"}
        return ", ".join(names[role] for role in self.roles) or "no role"


def host_roles(inv: Inventory, name: str) -> dict[str, list[int]]:
    """The CPUs the inventory pins on host `name`, by role (server, load)."""
    roles: dict[str, list[int]] = {}
    if inv.target.host == name:
        roles["server"] = list(inv.target.cpus)
    loads = [cpu for member in inv.load_members if member.host == name for cpu in member.cpus]
    if loads:
        roles["load"] = sorted(set(loads))
    return roles


def read_system(host: SystemHost) -> SystemFacts:
    """Read one host: the collector over its files, ethtool for its interface."""
    args = [f"--role={role}:{','.join(map(str, cpus))}" for role, cpus in host.roles.items()]
    if host.interface:
        args.append(f"--interface={host.interface}")
    facts = SystemFacts.model_validate(host.access.collect("facts", *args))
    network = facts.network
    if network is not None and network.present:
        ethtool = read_ethtool(host.run_command or _host_runner(host), network.interface)
        network = network.model_copy(update={"ethtool": ethtool})
        facts = facts.model_copy(update={"network": network})
    return facts


def _host_runner(host: SystemHost) -> CommandRunner:
    def run(argv: Sequence[str]) -> CommandResult:
        return host.access.host.run(argv, timeout=ETHTOOL_TIMEOUT_SECONDS, check=False)

    return run


def read_hosts(hosts: Sequence[SystemHost]) -> dict[str, SystemFacts]:
    """Each host's facts, by inventory name."""
    return {host.name: read_system(host) for host in hosts}


@dataclass
class TuneResult:
    """What a tune did on one machine (reached through host `host`)."""

    machine: str
    host: str
    change_set: ChangeSet | None
    made: list[Change] = field(default_factory=list)  # by this tune (the set may hold more)
    already: list[str] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)  # not on this machine


def tune_hosts(
    hosts: Sequence[SystemHost],
    facts: Mapping[str, SystemFacts],
    name: str = MANUAL_TUNE,
    scope: Scope = "manual",
) -> list[TuneResult]:
    """Tune every machine once: everything is planned (and refused, when a setting cannot
    be written or orch is not root) before any machine changes."""
    by_name = {host.name: host for host in hosts}
    planned = []
    for machine in machines(facts):
        through = by_name[machine.names[0]]
        wishes = tune_wishes(machine)
        plan = plan_changes(through.access, wishes.wishes)
        require_root(through.access, plan.euid, "tuning")
        if plan.refused:
            more = f" (and {len(plan.refused) - 1} more)" if len(plan.refused) > 1 else ""
            raise UserError(f"{through.access.describe()}: cannot tune {plan.refused[0]}{more}")
        planned.append((machine, through, wishes, plan))
    results = []
    for machine, through, wishes, plan in planned:
        change_set = apply(through.access, plan, name, scope)
        results.append(
            TuneResult(
                machine=machine.label,
                host=through.name,
                change_set=change_set,
                made=plan.changes,
                already=plan.already,
                left_alone=[*wishes.not_here, *plan.absent],
            )
        )
    return results


def reset_hosts(
    hosts: Sequence[SystemHost], scope: Scope | None = None
) -> list[tuple[str, list[ChangeSet]]]:
    """Put back every change set saved on the hosts (of `scope`, or all): per host, the
    sets it put back. A set an orch run still uses is refused (UserError)."""
    done = []
    for host in hosts:
        require_root(host.access, host.access.collect("files")["euid"], "orch system reset")
        saved = [s for s in saved_change_sets(host.access) if scope is None or s.scope == scope]
        _refuse_in_use(host, saved)
        done.append((host.name, reset_from_saved(host.access, [s.name for s in saved])))
    return done


def restore_left_by_runs(hosts: Sequence[SystemHost], log: Log) -> None:
    """Put back what an `orch run` killed before it could reset left changed (its saved
    run-scope change sets), saying so; refuse when that run still runs."""
    for host in hosts:
        left = [s for s in saved_change_sets(host.access) if s.scope == "run"]
        if not left:
            continue
        _refuse_in_use(host, left)
        for change_set in reset_from_saved(host.access, [s.name for s in left]):
            log(
                f"{host.name}: put back {len(change_set.changes)} settings left changed by a "
                f"run that did not end (`{change_set.made_by}` at {change_set.made_at})"
            )


def _refuse_in_use(host: SystemHost, saved: Sequence[ChangeSet]) -> None:
    for change_set in saved:
        if change_set.scope == "run" and in_use(change_set):
            raise UserError(
                f"{host.access.describe()}: its settings were changed by an orch run that "
                f"still runs (PID {change_set.pid}, `{change_set.made_by}`); let it end first"
            )
