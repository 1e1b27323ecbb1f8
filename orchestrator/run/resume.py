"""Turn a run directory back into what finishing it needs: its options and missing cells,
all from its typed run record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.catalogue.read import load_catalogue, recorded_catalogue
from orchestrator.errors import UserError
from orchestrator.measure.cell import Cell
from orchestrator.results.rundir import RUN_FILE, RunDirectory
from orchestrator.run.options import RunOptions
from orchestrator.run.placement import check_receive_work


@dataclass(frozen=True)
class ResumePlan:
    """A run to finish: its directory, recorded options, and what is missing."""

    run_dir: RunDirectory
    options: RunOptions
    planned: list[Cell]
    missing: list[Cell]


def plan_resume(path: Path, accept_new_host_keys: bool = False) -> ResumePlan:
    """Read RUN_DIR/run.json; refuse (UserError) a folder that is not a run, or a run
    with every planned cell already measured."""
    run_dir = RunDirectory.open(path)
    record = run_dir.read_run()
    source = str(run_dir.path / RUN_FILE)
    # A run from before the catalogue recorded no entries: its servers are the shipped ones.
    catalogue = recorded_catalogue(record.servers) if record.servers else load_catalogue()
    planned = []
    for key in record.plan:
        try:
            planned.append(
                Cell(catalogue.by_name(key.server), record.point(key.point), key.repetition)
            )
        except (UserError, KeyError):
            raise UserError(f"{source}: plan: unknown cell '{key}'") from None
    if not planned:
        raise UserError(f"{source}: the run has no plan to resume")
    measured = run_dir.measured()
    missing = [cell for cell in planned if cell.key not in measured]
    if not missing:
        raise UserError(
            f"{path}: the run is already complete ({len(planned)} of {len(planned)} cells "
            "measured); nothing to resume"
        )
    options = RunOptions(
        servers=list(dict.fromkeys(cell.server for cell in planned)),
        profile=record.profile,
        points=record.points,
        repetitions=record.repetitions,
        baseline=record.baseline,
        out=run_dir.path.parent,
        label=run_dir.path.name,
        load_tool=record.load_tool.name,
        pipeline=record.load_tool.pipeline,
        accept_new_host_keys=accept_new_host_keys,
        allow_unverified=record.allow_unverified,
        perf=record.measurement is None or record.measurement.perf != "off",
        receive_work=check_receive_work(
            record.system.receive_work if record.system else "as-is", f"{source}: receive_work"
        ),
        tune=record.system is not None and record.system.tune,
    )
    return ResumePlan(run_dir, options, planned, missing)
