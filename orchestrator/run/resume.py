"""Turn a run directory back into what finishing it needs: its options and missing cells,
all from its typed run record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.catalogue.read import load_catalogue, recorded_catalogue
from orchestrator.errors import UserError
from orchestrator.measure.cell import Cell
from orchestrator.results.precision_record import percent_text
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
    more_seconds: float | None = None  # a run to a precision given this much more time


def plan_resume(
    path: Path, accept_new_host_keys: bool = False, more_seconds: float | None = None
) -> ResumePlan:
    """Read RUN_DIR/run.json; refuse (UserError) a folder that is not a run, or a run
    with every planned cell already measured and no rounds left to add. `more_seconds`
    (`--budget` with `--resume`) gives a run to a precision that much more time, also
    when its budget was spent."""
    run_dir = RunDirectory.open(path)
    record = run_dir.read_run()
    precision = record.precision
    if more_seconds is not None and precision is None:
        raise UserError(
            f"--budget: {path} ran a fixed number of rounds, not to a precision; there is no "
            "budget to extend"
        )
    if more_seconds is not None and precision is not None and precision.outcome == "reached":
        raise UserError(
            f"--budget: {path} already reached {percent_text(precision.target)} for every "
            "compared pair; nothing to resume"
        )
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
    # A run to a precision stopped between rounds lacks no planned cell, only rounds.
    rounds_left = precision is not None and (
        precision.outcome == "running" or more_seconds is not None
    )
    if not missing and not rounds_left:
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
        table_points=record.table_points,
        point_profiles=record.point_profiles,
        receive_work=check_receive_work(
            record.system.receive_work if record.system else "as-is", f"{source}: receive_work"
        ),
        tune=record.system is not None and record.system.tune,
    )
    return ResumePlan(run_dir, options, planned, missing, more_seconds)
