"""run.json of a run in progress, kept current as the plan grows, servers start and are
verified, and the run ends."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.load.points import LoadPoint
from orchestrator.load.tool import LoadTool
from orchestrator.log import Log
from orchestrator.measure.cell import Cell
from orchestrator.results.cell_result import CellResult, utc_now
from orchestrator.results.precision_record import PrecisionRecord
from orchestrator.results.record import RunRecord, RunStatus
from orchestrator.results.rundir import RunDirectory
from orchestrator.results.verification import Verification
from orchestrator.run.sequence import DoneCallback
from orchestrator.split_pass.members import LoadMember, load_model
from orchestrator.verify.verify import Verifier


class RecordKeeper:
    """run.json of a run in progress, kept current: the plan grows (a rate search adds
    points as it goes), servers start and are verified, and the record says how the run
    ended."""

    def __init__(
        self,
        run_dir: RunDirectory,
        record: RunRecord,
        tool: LoadTool,
        members: Sequence[LoadMember] = (),
    ) -> None:
        self.run_dir = run_dir
        self.record = record
        self.tool = tool
        self.members = list(members)

    def extend(self, point: LoadPoint, cells: Sequence[Cell]) -> None:
        """Add `point` (when new) and `cells` to the plan before they run."""
        record = self.record
        points, models = list(record.points), dict(record.load_models)
        if point.key not in models:
            points.append(point)
            models[point.key] = load_model(
                self.tool, self.members, record.profile_of(point.key), point
            )
        plan = [*record.plan, *(cell.key for cell in cells)]
        self.record = record.model_copy(
            update={"points": points, "load_models": models, "plan": plan}
        )
        self.run_dir.write_run(self.record)

    def plan_cells(self, cells: Sequence[Cell]) -> None:
        """Add cells at points the plan already has, before they run."""
        plan = [*self.record.plan, *(cell.key for cell in cells)]
        self.record = self.record.model_copy(update={"plan": plan})
        self.run_dir.write_run(self.record)

    def set_precision(self, precision: PrecisionRecord) -> None:
        """Keep how far a run to a precision got (its time spent, how it ended)."""
        self.record = self.record.model_copy(update={"precision": precision})
        self.run_dir.write_run(self.record)

    def note(self, result: CellResult) -> None:
        """Keep the first start-up line each server printed (its API and ring setup)."""
        line = result.server_startup
        if line and result.server not in self.record.server_startup:
            lines = {**self.record.server_startup, result.server: line}
            self.record = self.record.model_copy(update={"server_startup": lines})
            self.run_dir.write_run(self.record)

    def verified(self, found: Verification) -> None:
        """Keep what verify found of a server (a resumed run's replaces the earlier)."""
        found_by_name = {**self.record.verification, found.server: found}
        self.record = self.record.model_copy(update={"verification": found_by_name})
        self.run_dir.write_run(self.record)

    def verifier(self, log: Log) -> Verifier:
        """A Verifier that keeps each result in run.json and says it."""

        def keep(found: Verification) -> None:
            self.verified(found)
            log(f"verify {found.server}: {found.summary()}")

        return Verifier(keep)

    def noting(self, on_done: DoneCallback) -> DoneCallback:
        """`on_done` that first notes what the cell says about its server."""

        def done(index: int, cell: Cell, result: CellResult) -> None:
            self.note(result)
            on_done(index, cell, result)

        return done

    def end(self, status: RunStatus, **why: str) -> None:
        """Write how the run ended."""
        self.run_dir.write_run(self.record.ended(status, finished_at=utc_now(), **why))
