"""The plan of a run: which server is measured at which load point, in which order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.load.points import LoadPoint
from orchestrator.measure.cell import Cell

T = TypeVar("T")


def _rotated(items: Sequence[T], shift: int) -> list[T]:
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def comparison_groups(servers: Sequence[ServerSpec]) -> list[list[ServerSpec]]:
    """Servers grouped by language, epoll first (the pairs the verdict compares), in the
    order their languages first appear."""
    groups: dict[str, list[ServerSpec]] = {}
    for server in servers:
        groups.setdefault(server.language, []).append(server)
    return [sorted(group, key=lambda s: (s.api != "epoll", s.api)) for group in groups.values()]


def build_plan(
    servers: Sequence[ServerSpec], points: Sequence[LoadPoint], repetitions: int
) -> list[Cell]:
    """Rounds of cells: each round visits every (load point, server) pair once.

    Within a round the cells of one language at one point run back to back (epoll and
    io_uring, the pair the verdict compares, close together in time), the pair's order
    alternating from round to round; points and languages start one later each round.
    Interleaving spreads slow drifts of the machine (heat, background work, a neighbour's
    load) over all servers instead of loading them onto whichever runs last.
    """
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    cells: list[Cell] = []
    for round_index in range(repetitions):
        cells += plan_round([(point, servers) for point in points], round_index)
    return cells


def plan_round(
    visits: Sequence[tuple[LoadPoint, Sequence[ServerSpec]]], round_index: int
) -> list[Cell]:
    """One round (`round_index` from 0; its cells are repetition `round_index + 1`): the
    servers given at each point, ordered as `build_plan` orders a round. A run to a
    precision plans each round this way, with only the servers still needing it."""
    cells: list[Cell] = []
    for point, servers in _rotated(visits, round_index):
        for group in _rotated(comparison_groups(servers), round_index):
            order = group if round_index % 2 == 0 else list(reversed(group))
            cells.extend(Cell(server, point, round_index + 1) for server in order)
    return cells
