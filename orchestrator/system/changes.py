"""Changes with an undo: any code that changes a host's settings for a benchmark (tune; the
placement of network receive work) lists what it wishes, `plan_changes` reads what is
there now, `apply` saves the change set ON THE HOST and only then writes, and
`reset_from_saved` replays saved sets backwards and removes them.

The state is one JSON file per change set in STATE_DIR on the host (under the root in
tests): machine-wide, as the settings are, so any later orch (`orch system reset`, the
next `orch run` after a kill -9) finds it whatever inventory or workdir it was given.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import HostError, UserError
from orchestrator.system.access import SystemAccess
from orchestrator.system.change_set import (
    Change,
    ChangeSet,
    FileChange,
    Scope,
    ServiceAction,
    ServiceChange,
)

STATE_DIR = "/var/lib/orch/changes"


@dataclass(frozen=True)
class FileWish:
    """Write `value` to the host's file `path` (a sysfs or procfs setting)."""

    path: str
    value: str
    what: str = ""  # in words, for messages and the record: `CPU 0 governor`


@dataclass(frozen=True)
class ServiceWish:
    """Stop or start a service."""

    service: str
    action: ServiceAction
    what: str = ""


Wish = FileWish | ServiceWish


@dataclass
class Plan:
    """What `apply` would do on one host, with the old values read now."""

    host: str
    euid: int
    changes: list[Change] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # wishes that hold already
    absent: list[str] = field(default_factory=list)  # files the host does not have
    refused: list[str] = field(default_factory=list)  # what cannot be changed, and why


def state_path(name: str) -> str:
    """The host path of change set `name`'s state file."""
    return f"{STATE_DIR}/{name}.json"


def plan_changes(access: SystemAccess, wishes: Sequence[Wish]) -> Plan:
    """Read the current value of every wished file (one collector run) and sort the
    wishes: to change, already so, absent here, or refused (read-only, a service orch
    cannot control)."""
    files = [wish.path for wish in wishes if isinstance(wish, FileWish)]
    found = access.collect("files", *files)
    plan = Plan(host=access.name, euid=int(found["euid"]))
    for wish in wishes:
        what = wish.what or (wish.path if isinstance(wish, FileWish) else wish.service)
        if isinstance(wish, ServiceWish):
            problem = access.service_control().problem(wish.service, wish.action)
            if problem is None:
                plan.changes.append(
                    ServiceChange(service=wish.service, action=wish.action, what=what)
                )
            else:
                plan.refused.append(f"{what}: {problem}")
            continue
        current = found["files"][wish.path]
        text = current["text"]
        if text is None:
            plan.absent.append(f"{what}: {wish.path} does not exist")
        elif text.strip() == wish.value.strip():
            plan.already.append(f"{what}: already {wish.value.strip()}")
        elif not current["writable"]:
            plan.refused.append(f"{what}: {wish.path} is read-only")
        else:
            plan.changes.append(
                FileChange(path=wish.path, old=text, new=wish.value.strip() + "\n", what=what)
            )
    return plan


def apply(access: SystemAccess, plan: Plan, name: str, scope: Scope = "manual") -> ChangeSet | None:
    """Make the plan's changes as change set `name`: saved on the host first, then
    written in order. A set of that name already saved is extended (its old values, the
    ones to put back, are kept). Anything refused, or not being root, is a UserError
    before anything is written; a write that fails puts back what was done before it.
    Returns the set as saved (None when there was nothing to change)."""
    if plan.refused:
        more = f" (and {len(plan.refused) - 1} more)" if len(plan.refused) > 1 else ""
        raise UserError(f"{access.describe()}: cannot change {plan.refused[0]}{more}")
    if not plan.changes:
        return None
    require_root(access, plan.euid, "changing its settings")
    earlier = next((s for s in saved_change_sets(access) if s.name == name), None)
    change_set = ChangeSet(
        name=name,
        scope=scope,
        host=access.name,
        made_at=datetime.now(UTC).isoformat(timespec="seconds"),
        made_by=" ".join(["orch", *sys.argv[1:]]),
        controller=socket.gethostname(),
        pid=os.getpid(),
        changes=_merged(earlier.changes if earlier else [], plan.changes),
    )
    _save(access, change_set)
    done: list[Change] = []
    for change in plan.changes:
        try:
            _make(access, change, undo=False)
        except (HostError, UserError) as exc:
            failed = _undo_each(access, done)
            if not done:
                back = "; nothing else was changed"
            elif not failed:
                back = f"; the {len(done)} changes made before it were put back"
            else:  # the saved state stays: a reset puts back what is left
                back = f"; putting back those before it failed ({failed[0]}): run orch system reset"
            if not failed:
                if earlier is None:
                    _remove(access, name)
                else:
                    _save(access, earlier)
            why = str(exc).removeprefix(f"{access.host.describe()}: ")
            raise UserError(
                f"{access.describe()}: cannot change {change.what}: {why}{back}"
            ) from None
        done.append(change)
    return change_set


def saved_change_sets(access: SystemAccess) -> list[ChangeSet]:
    """The change sets saved on the host, oldest first."""
    found = []
    for entry in access.collect("saved", STATE_DIR):
        try:
            found.append(ChangeSet.model_validate_json(entry["text"]))
        except ValidationError:
            raise UserError(
                f"{access.describe()}: {entry['path']} is not a change set orch saved "
                "(remove it once its settings are as they should be)"
            ) from None
    return sorted(found, key=lambda change_set: change_set.made_at)


def reset_from_saved(
    access: SystemAccess, names: Sequence[str] | None = None, scope: Scope | None = None
) -> list[ChangeSet]:
    """Put back the saved change sets (those named, or of `scope`; all by default), newest
    first, each change in reverse order, and remove each set's state once it is put back.
    Returns the sets put back. A change that cannot be put back is a UserError after the
    others were tried; its state stays, so a second reset tries again."""
    chosen = [
        change_set
        for change_set in saved_change_sets(access)
        if (names is None or change_set.name in names)
        and (scope is None or change_set.scope == scope)
    ]
    if not chosen:
        return []
    require_root(access, access.collect("files")["euid"], "putting back its settings")
    for change_set in reversed(chosen):
        failed = _undo_each(access, change_set.changes)
        if failed:
            raise UserError(
                f"{access.describe()}: cannot put back {failed[0]} (saved in "
                f"{state_path(change_set.name)}, kept: orch system reset tries again)"
            )
        _remove(access, change_set.name)
    return chosen


def in_use(change_set: ChangeSet) -> bool:
    """True when the orch that made a run's change set still runs: on this machine, not
    this process. (Another controlling machine's runs cannot be seen from here.)"""
    if change_set.controller != socket.gethostname() or change_set.pid == os.getpid():
        return False
    try:
        cmdline = Path(f"/proc/{change_set.pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"orch" in cmdline


def require_root(access: SystemAccess, euid: int, doing: str) -> None:
    """UserError unless orch is root on the host (a captured tree needs no root)."""
    if access.root == "/" and euid != 0:
        raise UserError(
            f"{access.host.describe()}: {doing} needs root there (orch runs as uid {euid})"
        )


def _merged(earlier: list[Change], new: list[Change]) -> list[Change]:
    """`earlier` with `new` after it; a file changed in both keeps its first old value."""
    merged = list(earlier)
    for change in new:
        if isinstance(change, ServiceChange) and change in merged:
            continue  # stopped again: the first stop is what a reset undoes
        twin = next(
            (
                index
                for index, old in enumerate(merged)
                if isinstance(old, FileChange)
                and isinstance(change, FileChange)
                and old.path == change.path
            ),
            None,
        )
        if twin is None:
            merged.append(change)
        else:
            first = merged[twin]
            assert isinstance(first, FileChange) and isinstance(change, FileChange)
            merged[twin] = first.model_copy(update={"new": change.new})
    return merged


def _make(access: SystemAccess, change: Change, *, undo: bool) -> None:
    if isinstance(change, FileChange):
        access.host.write_text(access.path(change.path), change.old if undo else change.new)
    else:
        access.service_control().act(change.service, change.undo if undo else change.action)


def _undo_each(access: SystemAccess, changes: Sequence[Change]) -> list[str]:
    """Undo `changes` last first, going on past failures; what could not be undone."""
    failed = []
    for change in reversed(changes):
        try:
            _make(access, change, undo=True)
        except (HostError, UserError) as exc:
            failed.append(f"{change.what}: {exc}")
    return failed


def _save(access: SystemAccess, change_set: ChangeSet) -> None:
    """Write the set's state file whole (a temporary file renamed into place)."""
    with tempfile.TemporaryDirectory(prefix="orch-changes-") as scratch:
        local = Path(scratch) / f"{change_set.name}.json"
        local.write_text(change_set.model_dump_json(indent=2) + "\n", encoding="utf-8")
        access.host.put_file(local, access.path(state_path(change_set.name)))


def _remove(access: SystemAccess, name: str) -> None:
    access.host.run(["rm", "-f", access.path(state_path(name))], timeout=30)
