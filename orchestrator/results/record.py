"""`run.json`: the typed, versioned record of a run (what was asked, on which hosts, with
which tools, the plan, how it ended). Written by the run, read by report, compare, resume
and list; nothing reads run.json by string key except the upgrade of old files here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.catalogue.entry import ServerEntry
from orchestrator.facts import HostFacts
from orchestrator.inventory import Inventory
from orchestrator.load.points import LoadPoint, Profile, Stage, parse_duration
from orchestrator.results.cell_result import CellKey
from orchestrator.results.cost import MeasurementRecord
from orchestrator.results.precision_record import PrecisionRecord
from orchestrator.results.verification import Verification
from orchestrator.system.model import SystemRecord

# 3: several load hosts (inventory load.hosts, facts.load_hosts); 4: how cells cost the
# target (`measurement`) and the hosts' system facts, warnings and tune (`system`), both
# absent from older files
FORMAT_VERSION = 4
# The servers of runs recorded before the catalogue (no `servers` in run.json): the six
# reference servers, in the order their tables listed them.
LEGACY_ORDER = ("c-epoll", "rust-epoll", "zig-epoll", "c-io_uring", "rust-io_uring", "zig-io_uring")
RunStatus = Literal["running", "complete", "interrupted", "stopped"]
ToolName = Literal["k6", "wrk", "wrk-pipelined", "h2load"]
# Where a cell's files live below cells/: orch 0.1.0 had no load points in the path.
CellLayout = Literal["server/point/repetition", "server/repetition"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunFacts(_Record):
    """Facts of the run's hosts by role (`load`: the first load host's)."""

    target: HostFacts
    load: HostFacts
    load_hosts: dict[str, HostFacts] = {}  # every load host's, by name, when there are several


class K6Provision(_Record):
    """Which k6 binary the load host used and where it came from."""

    path: str
    source: str  # inventory, PATH, bundled, bundled (uploaded)


class LoadToolRecord(_Record):
    """The load tool of the run."""

    name: ToolName  # what --load-tool called it
    kind: Literal["k6", "wrk", "h2load"]
    label: str  # as the report names it, e.g. wrk-pipelined-16
    path: str
    version: str = ""
    threads: int = 1
    pipeline: int = 1  # the run's default depth


class ResumeRecord(_Record):
    """One `orch run --resume` of this run."""

    at: str
    command: str
    orch_commit: str
    cells: list[CellKey]
    measurement: MeasurementRecord | None = None  # the resumed part's baseline and CPUs
    system: SystemRecord | None = None  # the hosts' systems when it resumed


class RunRecord(_Record):
    """Everything about a run except its cells' measurements."""

    format_version: int = FORMAT_VERSION
    cell_layout: CellLayout = "server/point/repetition"
    id: str
    command: str
    orch_version: str
    orch_commit: str
    started_at: str
    finished_at: str | None = None
    status: RunStatus = "running"
    interrupted_by: str | None = None
    stop_reason: str | None = None
    inventory: Inventory
    facts: RunFacts
    tools: dict[str, str] = {}
    k6: K6Provision
    load_tool: LoadToolRecord
    profile: Profile
    points: list[LoadPoint] = Field(min_length=1)
    load_models: dict[str, str]  # point key -> the load model in words
    repetitions: int = Field(ge=1)
    baseline: str | None = None
    interface: str | None = None
    placement: str = ""
    traffic_note: str = ""
    plan: list[CellKey]
    resumed: list[ResumeRecord] = []
    server_startup: dict[str, str] = {}  # server -> the start-up line it printed (its ring)
    # The catalogue entries of the run's servers, in catalogue order (none before orch
    # had a catalogue), what verify found of each, and whether failing it was allowed.
    servers: dict[str, ServerEntry] = {}
    verification: dict[str, Verification] = {}
    allow_unverified: bool = False
    measurement: MeasurementRecord | None = None  # how cells cost the target (orch 0.3)
    # A run to a precision: what it asked of the verdict and how far it got. The main job
    # measures its table point once with the run's profile (`table_points`, which the
    # verdict leaves out) and its verdict point with a short profile (`point_profiles`).
    precision: PrecisionRecord | None = None
    point_profiles: dict[str, Profile] = {}
    table_points: list[str] = []
    # The hosts' system facts, warnings and any tune applied for the run (none before
    # orch recorded them).
    system: SystemRecord | None = None

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        version = data.get("format_version")
        if version is None and "points" not in data:  # orch 0.1.0 had no load points
            return _from_0_1(data)
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ValueError(
                f"written by a newer orch (run format {version}; this orch reads up to "
                f"{FORMAT_VERSION})"
            )
        return data

    @property
    def server_order(self) -> list[str]:
        """The run's servers in catalogue order."""
        if self.servers:
            return list(self.servers)
        names = list(dict.fromkeys(key.server for key in self.plan))
        known = [name for name in LEGACY_ORDER if name in names]
        return known + sorted(name for name in names if name not in known)

    @property
    def unverified(self) -> list[str]:
        """Servers whose verify did not pass (their rows are marked, the verdict leaves
        them out); runs from before verify have none."""
        return [name for name, found in self.verification.items() if not found.passed]

    @property
    def single_point(self) -> bool:
        """True when the run measured one load point (cells are then named server/rep)."""
        return len(self.points) == 1

    @property
    def ordered_points(self) -> list[LoadPoint]:
        """The points as reports list them: by model, then connections, rate and depth (a
        rate search measures its rates out of order)."""
        kinds = {"ramp": 0, "closed": 1, "open": 2}
        return sorted(self.points, key=lambda p: (kinds[p.kind], p.rate or 0, p.vus, p.pipeline))

    def profile_of(self, key: str) -> Profile:
        """The profile of the cells at one point."""
        return self.point_profiles.get(key, self.profile)

    @property
    def verdict_points(self) -> list[LoadPoint]:
        """The points the verdict speaks of: all but those measured only for the table."""
        return [point for point in self.ordered_points if point.key not in self.table_points]

    def point(self, key: str) -> LoadPoint:
        """The load point with this key."""
        for point in self.points:
            if point.key == key:
                return point
        raise KeyError(key)

    def load_model(self, key: str | None = None) -> str:
        """The load model in words, of one point (the first when `key` is None)."""
        return self.load_models.get(key or self.points[0].key, "")

    @property
    def is_open_model(self) -> bool:
        """True when every point is an open-model point (a fixed arrival rate)."""
        return all(point.is_open for point in self.points)

    def cell_label(self, key: CellKey) -> str:
        """How messages name a cell: without the point when the run has only one."""
        return key.label(with_point=not self.single_point)

    def ended(
        self,
        status: RunStatus,
        interrupted_by: str | None = None,
        stop_reason: str | None = None,
        finished_at: str | None = None,
    ) -> RunRecord:
        """This record saying how the run ended."""
        return self.model_copy(
            update={
                "status": status,
                "interrupted_by": interrupted_by,
                "stop_reason": stop_reason,
                "finished_at": finished_at,
            }
        )


def _legacy_point(profile: dict[str, Any], tool: dict[str, Any]) -> LoadPoint:
    peak = max((int(stage["target"]) for stage in profile["stages"]), default=1)
    if profile.get("rate") is not None:
        return LoadPoint(kind="open", vus=peak, rate=int(profile["rate"]))
    if tool.get("kind", "k6") == "k6":
        return LoadPoint(kind="ramp", vus=peak)
    # wrk ran max(peak, threads) connections
    connections = max(peak, int(tool.get("threads") or 1))
    return LoadPoint(kind="closed", vus=connections, pipeline=int(tool.get("pipeline") or 1))


def _legacy_key(text: str, point: str) -> dict[str, Any]:
    server, _, repetition = str(text).rpartition("/")
    return {"server": server, "point": point, "repetition": int(repetition)}


def _from_0_1(data: dict[str, Any]) -> dict[str, Any]:
    """A run.json written by orch 0.1.0 in today's shape: its one load point made
    explicit, its k6 stage strings read once, its tool label turned into the option name."""
    old_profile: dict[str, Any] = data.get("profile") or {}
    old_tool: dict[str, Any] = data.get("load_tool") or {"kind": "k6", "name": "k6", "path": ""}
    kind = old_tool.get("kind", "k6")
    pipeline = int(old_tool.get("pipeline") or 1)
    point = _legacy_point(old_profile, old_tool)
    stages = [
        Stage(seconds=parse_duration(str(stage["duration"])), target=int(stage["target"]))
        for stage in old_profile.get("stages", [])
    ]
    upgraded = {
        key: value
        for key, value in data.items()
        if key not in ("profile", "load_tool", "plan", "resumed")
    }
    upgraded.update(
        format_version=FORMAT_VERSION,
        cell_layout="server/repetition",
        profile=Profile(
            name=str(old_profile.get("name", "")),
            stages=tuple(stages),
            warmup=old_profile.get("warmup_seconds"),
        ),
        load_tool=LoadToolRecord(
            name="k6" if kind == "k6" else ("wrk-pipelined" if pipeline > 1 else "wrk"),
            kind=kind,
            label=str(old_tool.get("name", kind)),
            path=str(old_tool.get("path", "")),
            version=str(old_tool.get("version", "")),
            threads=int(old_tool.get("threads") or 1),
            pipeline=pipeline,
        ),
        points=[point],
        load_models={point.key: str(old_profile.get("model", ""))},
        plan=[_legacy_key(key, point.key) for key in data.get("plan") or []],
        resumed=[
            {**resumed, "cells": [_legacy_key(key, point.key) for key in resumed["cells"]]}
            for resumed in data.get("resumed") or []
        ],
    )
    return upgraded
