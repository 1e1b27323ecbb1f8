"""How one cell's load is split across several load hosts.

Each load host runs a share of the load proportional to the number of CPUs the inventory
gives it. k6 gets its share as an execution segment of one shared segment sequence (k6
then splits VUs, stages and arrival rates itself, exactly, with no coordinator); wrk gets
its share of the connections (largest remainders, so the shares add up to the point's
connections) and one thread per CPU, never more threads than connections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from orchestrator.errors import UserError
from orchestrator.inventory import Inventory, LoadHostSpec
from orchestrator.load.points import LoadPoint


@dataclass(frozen=True)
class Share:
    """One load host's part of every cell: [start, end) of the whole, by its CPUs."""

    host: str
    cpus: int
    start: Fraction
    end: Fraction

    @property
    def fraction(self) -> Fraction:
        """The share of the load this host runs."""
        return self.end - self.start

    @property
    def segment(self) -> str:
        """k6's `--execution-segment` for this host, e.g. `1/3:2/3`."""
        return f"{_fraction(self.start)}:{_fraction(self.end)}"


def _fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value}"


def shares(members: Sequence[LoadHostSpec]) -> list[Share]:
    """Each load host's share, in the inventory's order, proportional to its CPU count."""
    total = sum(len(member.cpus) for member in members)
    result = []
    start = Fraction(0)
    for member in members:
        end = start + Fraction(len(member.cpus), total)
        result.append(Share(member.host, len(member.cpus), start, end))
        start = end
    return result


def segment_sequence(parts: Sequence[Share]) -> str:
    """k6's `--execution-segment-sequence`: every boundary, `0,1/2,1`; each instance is
    given the same one so that together they run the whole load exactly once."""
    return ",".join(_fraction(value) for value in [parts[0].start, *(p.end for p in parts)])


def split_count(total: int, parts: Sequence[Share]) -> list[int]:
    """`total` (connections) divided in proportion to the shares, as whole numbers adding
    up to `total`: each gets its floor, the rest go to the largest remainders (the
    earlier host on a tie)."""
    exact = [total * part.fraction for part in parts]
    counts = [math.floor(value) for value in exact]
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - counts[i]), i))
    for index in order[: total - sum(counts)]:
        counts[index] += 1
    return counts


def host_point(point: LoadPoint, index: int, parts: Sequence[Share], kind: str) -> LoadPoint:
    """The load point host `index` holds: wrk its share of the connections; k6 the whole
    point (its execution segment takes the share)."""
    if kind != "wrk" or len(parts) == 1:
        return point
    return point.model_copy(update={"vus": split_count(point.vus, parts)[index]})


def check_points(inv: Inventory, points: Sequence[LoadPoint]) -> None:
    """Refuse (UserError) a point whose smallest share would get no connection or VU."""
    members = inv.load_members
    if len(members) < 2:
        return
    parts = shares(members)
    smallest = min(parts, key=lambda part: part.fraction)
    needed = math.ceil(1 / smallest.fraction)
    for point in points:
        if point.vus * smallest.fraction < 1:
            option = "--rates (VU ceiling)" if point.is_open else "--connections"
            raise UserError(
                f"{option}: {point.describe()} split across {len(members)} load hosts by "
                f"their CPUs leaves {smallest.host} (share {smallest.fraction}) without a "
                f"connection; use at least {needed}"
            )


def describe_shares(inv: Inventory) -> list[str]:
    """Per load host, what it runs of each cell (for `orch check`); nothing for one host."""
    members = inv.load_members
    if len(members) < 2:
        return []
    parts = shares(members)
    sequence = segment_sequence(parts)
    if inv.load.tool == "k6":
        return [
            f"share {part.fraction} of every cell (k6 --execution-segment {part.segment} "
            f"--execution-segment-sequence {sequence})"
            for part in parts
        ]
    return [
        f"share {part.fraction} of every cell's connections (wrk, one thread per CPU)"
        for part in parts
    ]
