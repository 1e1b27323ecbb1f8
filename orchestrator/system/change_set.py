"""A change set: changes orch made to a host, each with what undoes it, as saved on the
host before anything is written and as run.json keeps it. Pure data (pydantic only).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["manual", "run"]  # manual: until `orch system reset`; run: until it ends
ServiceAction = Literal["stop", "start"]
PLACEMENT_SET = "run-placement"  # the change set that places a run's receive work


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileChange(_Change):
    """One file written: its whole old text (written back as it was) and the new value."""

    kind: Literal["file"] = "file"
    path: str  # on the host
    old: str
    new: str
    what: str = ""  # in words, e.g. `CPU 0 governor`

    def describe(self) -> str:
        """`what: old -> new`."""
        return f"{self.what or self.path}: {self.old.strip()} -> {self.new.strip()}"

    def describe_undo(self) -> str:
        """`what: back to old`."""
        return f"{self.what or self.path}: back to {self.old.strip()}"


class ServiceChange(_Change):
    """One service stopped (undone by starting it) or started (undone by stopping it)."""

    kind: Literal["service"] = "service"
    service: str
    action: ServiceAction
    what: str = ""

    @property
    def undo(self) -> ServiceAction:
        """The action that puts it back."""
        return "start" if self.action == "stop" else "stop"

    def describe(self) -> str:
        """`what: stopped` (or started)."""
        done = "stopped" if self.action == "stop" else "started"
        return f"{self.what or self.service}: {done}"

    def describe_undo(self) -> str:
        """`what: started again` (or stopped again)."""
        done = "started" if self.undo == "start" else "stopped"
        return f"{self.what or self.service}: {done} again"


Change = Annotated[FileChange | ServiceChange, Field(discriminator="kind")]


class ChangeSet(_Change):
    """Changes made on one host under one name, in the order they were made."""

    name: str  # its state file's name, e.g. `tune` (orch system tune) or `run-tune`
    scope: Scope
    host: str  # the inventory name it was made through
    made_at: str
    made_by: str  # the orch command line
    controller: str  # the machine orch ran on
    pid: int  # orch's process there
    changes: list[Change] = []
