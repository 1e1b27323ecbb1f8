"""The plan of a run: which server is measured in which order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.servers import ServerSpec


@dataclass(frozen=True)
class Cell:
    """One measurement: a server at one repetition."""

    server: ServerSpec
    repetition: int  # 1-based

    @property
    def key(self) -> str:
        """`server/repetition`, unique within a run."""
        return f"{self.server.name}/{self.repetition}"


def build_plan(servers: Sequence[ServerSpec], repetitions: int) -> list[Cell]:
    """Cells interleaved across repetitions, each round starting one server later.

    Interleaving spreads slow drifts of the machine (heat, background work) over all
    servers instead of loading them onto whichever server happens to run last.
    """
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    cells: list[Cell] = []
    count = len(servers)
    for round_index in range(repetitions):
        shift = round_index % count if count else 0
        order = list(servers[shift:]) + list(servers[:shift])
        cells.extend(Cell(server, round_index + 1) for server in order)
    return cells
