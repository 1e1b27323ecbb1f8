"""What `orch system`, `orch system tune` and `orch system reset` print."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.system.change_set import ChangeSet
from orchestrator.system.changes import state_path
from orchestrator.system.describe import host_lines
from orchestrator.system.model import SystemFacts, SystemWarning
from orchestrator.system.session import SystemHost, TuneResult

INDENT = "  "


def saved_line(change_set: ChangeSet) -> str:
    """A saved change set in one line."""
    return (
        f"saved changes `{change_set.name}` ({change_set.scope}): {len(change_set.changes)} "
        f"made by `{change_set.made_by}` at {change_set.made_at}, kept in "
        f"{state_path(change_set.name)} (orch system reset puts them back)"
    )


def warning_lines(warnings: Sequence[SystemWarning]) -> list[str]:
    """The Warnings list that ends `orch system`."""
    if not warnings:
        return ["Warnings: none"]
    return [f"Warnings ({len(warnings)}):", *(f"{INDENT}- {w.describe()}" for w in warnings)]


def show_lines(
    hosts: Sequence[SystemHost],
    facts: Mapping[str, SystemFacts],
    warnings: Sequence[SystemWarning],
    saved: Mapping[str, Sequence[ChangeSet]],
) -> list[str]:
    """Each host once (its roles, what it is, its saved changes), then the warnings."""
    lines = []
    for host in hosts:
        lines.append(f"{host.access.host.describe()}: {host.role_label}")
        lines += [f"{INDENT}{line}" for line in host_lines(facts[host.name])]
        lines += [f"{INDENT}{saved_line(change_set)}" for change_set in saved.get(host.name, [])]
    return [*lines, *warning_lines(warnings)]


def tune_lines(results: Sequence[TuneResult]) -> list[str]:
    """What a tune changed on each machine, what held already, what is not there."""
    lines = []
    for result in results:
        change_set = result.change_set
        if change_set is None:
            lines.append(f"{result.machine}: nothing to change")
        else:
            lines.append(
                f"{result.machine}: changed {len(result.made)} settings, saved first in "
                f"{state_path(change_set.name)} (orch system reset puts them back):"
            )
            lines += [f"{INDENT}{change.describe()}" for change in result.made]
        lines += [f"{INDENT}{what}" for what in result.already]
        lines += [f"{INDENT}left alone: {what}" for what in result.left_alone]
    return lines


def reset_lines(done: Sequence[tuple[str, Sequence[ChangeSet]]]) -> list[str]:
    """What a reset put back on each host."""
    lines = []
    for name, sets in done:
        if not sets:
            lines.append(f"{name}: nothing saved to put back")
        for change_set in sets:
            lines.append(
                f"{name}: put back {len(change_set.changes)} settings of "
                f"`{change_set.made_by}` ({change_set.made_at}):"
            )
            lines += [f"{INDENT}{change.describe_undo()}" for change in change_set.changes]
    return lines
