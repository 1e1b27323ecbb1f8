"""The plan of a run: which server is measured at which load point, in which order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.load.points import LoadPoint
from orchestrator.results.cell import CellKey
from orchestrator.servers import ServerSpec


@dataclass(frozen=True)
class Cell:
    """One measurement: a server at a load point, at one repetition."""

    server: ServerSpec
    point: LoadPoint
    repetition: int  # 1-based: the round it belongs to

    @property
    def key(self) -> CellKey:
        """Which cell this is, as results name it."""
        return CellKey(server=self.server.name, point=self.point.key, repetition=self.repetition)


def build_plan(
    servers: Sequence[ServerSpec], points: Sequence[LoadPoint], repetitions: int
) -> list[Cell]:
    """Rounds of cells: each round visits every (load point, server) pair once, and each
    round starts one pair later than the one before.

    Interleaving spreads slow drifts of the machine (heat, background work) over all
    servers instead of loading them onto whichever server happens to run last, and keeps
    the cells one round compares close together in time.
    """
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    pairs = [(point, server) for point in points for server in servers]
    cells: list[Cell] = []
    for round_index in range(repetitions):
        shift = round_index % len(pairs) if pairs else 0
        order = pairs[shift:] + pairs[:shift]
        cells.extend(Cell(server, point, round_index + 1) for point, server in order)
    return cells
