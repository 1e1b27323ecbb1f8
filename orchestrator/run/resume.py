"""Turn a run directory back into what finishing it needs: inventory, options, missing cells."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.inventory import Inventory, parse_inventory
from orchestrator.load.points import profile_from_record
from orchestrator.results.cell import RUN_FILE, RunDirectory
from orchestrator.run.execute import RunOptions
from orchestrator.run.plan import Cell
from orchestrator.servers import server_by_name


@dataclass(frozen=True)
class Resumption:
    """A run to finish: its directory, recorded inventory and options, and what is missing."""

    run_dir: RunDirectory
    inventory: Inventory
    options: RunOptions
    planned: list[Cell]
    missing: list[Cell]


def _plan(record: dict[str, Any], source: str) -> list[Cell]:
    cells = []
    for key in record.get("plan") or []:
        name, _, repetition = str(key).rpartition("/")
        try:
            cells.append(Cell(server_by_name(name), int(repetition)))
        except (UserError, ValueError):
            raise UserError(f"{source}: plan: unknown cell '{key}'") from None
    if not cells:
        raise UserError(f"{source}: the run has no plan to resume")
    return cells


def _tool(record: dict[str, Any]) -> tuple[str, int]:
    """(--load-tool name, pipeline depth) of the recorded load tool."""
    tool = record.get("load_tool") or {"kind": "k6", "pipeline": 1}
    pipeline = int(tool.get("pipeline") or 1)
    if tool.get("kind", "k6") == "k6":
        return "k6", 1
    return ("wrk-pipelined" if pipeline > 1 else "wrk"), pipeline


def plan_resumption(path: Path, accept_new_host_keys: bool = False) -> Resumption:
    """Read RUN_DIR/run.json; refuse (UserError) a folder that is not a run, or a run
    with every planned cell already measured."""
    run_dir = RunDirectory.open(path)
    record = run_dir.read_run()
    source = str(run_dir.path / RUN_FILE)
    planned = _plan(record, source)
    measured = run_dir.measured()
    missing = [cell for cell in planned if cell.key not in measured]
    if not missing:
        raise UserError(
            f"{path}: the run is already complete ({len(planned)} of {len(planned)} cells "
            "measured); nothing to resume"
        )
    if "inventory" not in record or "profile" not in record:
        raise UserError(f"{source}: no inventory or profile recorded; cannot resume")
    inventory = parse_inventory(record["inventory"], f"{source} inventory")
    tool, pipeline = _tool(record)
    servers = list(dict.fromkeys(cell.server for cell in planned))
    options = RunOptions(
        servers=servers,
        profile=profile_from_record(record["profile"]),
        repetitions=int(record.get("repetitions") or 1),
        baseline=record.get("baseline"),
        out=run_dir.path.parent,
        label=run_dir.path.name,
        accept_new_host_keys=accept_new_host_keys,
        load_tool=tool,
        pipeline=pipeline,
    )
    return Resumption(run_dir, inventory, options, planned, missing)
