"""Run records and cell results for tests, always through the typed models: made without
running (`make_*`), or read back from a run directory orch wrote."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.facts import HostFacts
from orchestrator.inventory import Inventory
from orchestrator.load.points import PROFILES, LoadPoint, Profile
from orchestrator.load.result import Latency, LoadResult
from orchestrator.results.cell_result import CellKey, CellResult
from orchestrator.results.record import K6Provision, LoadToolRecord, RunFacts, RunRecord
from orchestrator.results.rundir import RunDirectory

INVENTORY = {
    "hosts": {"local": {"connection": "local"}},
    "target": {"host": "local", "cpus": [0]},
    "load": {"host": "local", "cpus": [1]},
}
FACTS = HostFacts(
    hostname="box",
    kernel="6.1.0",
    arch="x86_64",
    distro="Debian GNU/Linux 12 (bookworm)",
    cpu_model="Test CPU",
    cores=2,
    memory_kib=2 * 1048576,
    clock_ticks=100,
    io_uring_disabled="0",
)
SMOKE_POINT = LoadPoint(kind="ramp", vus=20)


def make_record(
    run_id: str = "test-run",
    *,
    plan: Sequence[str] = (),
    points: Sequence[LoadPoint] = (SMOKE_POINT,),
    profile: Profile = PROFILES["smoke"],
    tool: str = "k6",
    pipeline: int = 1,
    models: dict[str, str] | None = None,
    **fields: Any,
) -> RunRecord:
    """A complete record of a loopback run; `plan` as `server/repetition` (first point) or
    `server/point/repetition`."""
    keys = []
    for text in plan:
        parts = text.split("/")
        server, point, rep = (parts[0], points[0].key, parts[1]) if len(parts) == 2 else parts
        keys.append(CellKey(server=server, point=point, repetition=int(rep)))
    kind = tool if tool in ("k6", "h2load") else "wrk"
    label = f"wrk-pipelined-{pipeline}" if pipeline > 1 else kind
    return RunRecord(
        id=run_id,
        command="orch run",
        orch_version="0.2.0",
        orch_commit="test",
        started_at="2026-01-01T00:00:00+00:00",
        inventory=Inventory.model_validate(INVENTORY),
        facts=RunFacts(target=FACTS, load=FACTS),
        k6=K6Provision(path="/usr/bin/k6", source="PATH"),
        load_tool=LoadToolRecord.model_validate(
            {
                "name": tool,
                "kind": kind,
                "label": label,
                "path": f"/usr/bin/{kind}",
                "pipeline": pipeline,
            }
        ),
        profile=profile,
        points=list(points),
        load_models=models or {p.key: f"closed loop: {kind}" for p in points},
        repetitions=max((k.repetition for k in keys), default=1),
        plan=keys,
        **fields,
    )


def make_run_dir(parent: Path, record: RunRecord | None = None, label: str = "t") -> RunDirectory:
    """A new run directory holding `record` (a default one when None) as run.json."""
    run_dir = RunDirectory.create(parent, label)
    run_dir.write_run((record or make_record()).model_copy(update={"id": run_dir.path.name}))
    return run_dir


def make_cell(
    key: str,
    *,
    status: str = "ok",
    rps: float = 200.0,
    requests: int = 1000,
    failed: int = 0,
    latency: Latency | None = None,
    point: str = SMOKE_POINT.key,
    **fields: Any,
) -> CellResult:
    """A cell `server/repetition` at `point`."""
    server, repetition = key.split("/")
    language, api = server.split("-", 1)
    return CellResult(
        server=server,
        api=api,
        language=language,
        point=point,
        repetition=int(repetition),
        status="ok" if status == "ok" else "failed",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:05+00:00",
        load=LoadResult(
            tool="k6",
            requests=requests,
            failed_requests=failed,
            duration_seconds=requests / rps if rps else 5.0,
            requests_per_second=rps,
            latency=latency or Latency(p50=1.0),
        ),
        **fields,
    )


# --- reading a run orch wrote -------------------------------------------------------------


def one_run_dir(out: Path) -> Path:
    """The single run directory under `out`."""
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def read_record(run_dir: Path) -> RunRecord:
    """The run's run.json, typed."""
    return RunDirectory.open(run_dir).read_run()


def read_cells(run_dir: Path) -> list[CellResult]:
    """Every cell result of the run, typed."""
    return RunDirectory.open(run_dir).read_cells()


def only_cell(run_dir: Path) -> CellResult:
    """The result of a run's only cell."""
    (cell,) = read_cells(run_dir)
    return cell


def cell_result(run_dir: Path, key: str) -> CellResult:
    """The result of cell `server/repetition` in a run of one load point."""
    found = [c for c in read_cells(run_dir) if c.key.label(with_point=False) == key]
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


def cell_path(run_dir: Path, key: str) -> Path:
    """The folder of cell `server/repetition` in a run of one load point."""
    server, repetition = key.split("/")
    found = sorted((run_dir / "cells" / server).glob(f"*/{repetition}"))
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


def cell_glob(server: str, repetition: int) -> str:
    """A glob below a results folder matching the result.json of one cell."""
    return f"*/cells/{server}/*/{repetition}/result.json"


def read_json(path: Path) -> Any:
    """Parse a JSON file that has no model of its own (the results.json export)."""
    return json.loads(path.read_text(encoding="utf-8"))


def whole_json_files(run_dir: Path) -> list[Path]:
    """Every JSON file of the run, each asserted whole (it parses)."""
    files = sorted(run_dir.rglob("*.json"))
    for path in files:
        read_json(path)
    return files
