"""The System Specs lines of the hosts' systems: one or two per host, the warnings, and
what --tune changed for the run (only for runs that recorded them)."""

from __future__ import annotations

from orchestrator.results.record import RunRecord
from orchestrator.system.describe import summary_lines


def system_lines(record: RunRecord) -> list[str]:
    """The hosts' systems as the run found them; none for runs that did not record them."""
    system = record.system
    if system is None:
        return []
    lines = []
    for name, facts in system.hosts.items():
        lines += summary_lines(name, facts)
    if system.warnings:
        lines.append(f"- System warnings ({len(system.warnings)}; `orch system` explains each):")
        lines += [f"  - {warning.describe()}" for warning in system.warnings]
    else:
        lines.append("- System warnings: none")
    if system.tune:
        for change_set in system.changes:
            changes = "; ".join(change.describe() for change in change_set.changes)
            lines.append(f"- Tuned for the run on {change_set.host} (put back after it): {changes}")
        for machine, notes in system.not_tuned.items():
            lines.append(f"- Not tuned on {machine}: {'; '.join(notes)}")
        if not system.changes:
            lines.append("- `--tune` changed nothing: every setting it tunes was absent or set")
    return lines
