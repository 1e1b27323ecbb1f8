"""How one cell's load is split across several load hosts.

Each load host runs a share of the load proportional to the number of CPUs the inventory
gives it. k6 gets its share as an execution segment of one shared segment sequence (k6
then splits VUs, stages and arrival rates itself, exactly, with no coordinator); wrk gets
its share of the connections (largest remainders, so the shares add up to the point's
connections) and one thread per CPU, never more threads than connections. h2load gets
its share of the connections the same way and, at an open point, the rate in proportion
to its connections (largest remainders again: the hosts' rates add up to the point's
rate, and no connection is asked for more than the whole point asks of each).
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
    return split_whole(total, [part.fraction for part in parts])


def split_whole(total: int, weights: Sequence[Fraction | int]) -> list[int]:
    """`total` divided in proportion to `weights`, as whole numbers adding up to `total`
    (largest remainders, the earlier on a tie)."""
    whole = sum(Fraction(w) for w in weights)
    exact = [total * Fraction(w) / whole for w in weights]
    counts = [math.floor(value) for value in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for index in order[: total - sum(counts)]:
        counts[index] += 1
    return counts


def host_point(point: LoadPoint, index: int, parts: Sequence[Share], kind: str) -> LoadPoint:
    """The load point host `index` holds: wrk and h2load their share of the connections
    (h2load at an open point: and of the rate, by connections); k6 the whole point (its
    execution segment takes the share)."""
    if kind not in ("wrk", "h2load") or len(parts) == 1:
        return point
    connections = split_count(point.vus, parts)
    if kind == "h2load" and point.rate is not None:
        rate = split_whole(point.rate, connections)[index]
        return point.model_copy(update={"vus": connections[index], "rate": rate})
    return point.model_copy(update={"vus": connections[index]})


def check_points(inv: Inventory, points: Sequence[LoadPoint], tool: str = "") -> None:
    """Refuse (UserError) a point whose smallest share would get no connection or VU, or
    (h2load, `tool`) no request per second."""
    members = inv.load_members
    if len(members) < 2:
        return
    parts = shares(members)
    smallest = min(parts, key=lambda part: part.fraction)
    needed = math.ceil(1 / smallest.fraction)
    h2load = (tool or inv.load.tool) == "h2load"
    for point in points:
        if point.vus * smallest.fraction < 1:
            option = "--rates (VU ceiling)" if point.is_open else "--connections"
            if point.is_open and h2load:
                option = "--rates (h2load connections)"
            raise UserError(
                f"{option}: {point.describe()} split across {len(members)} load hosts by "
                f"their CPUs leaves {smallest.host} (share {smallest.fraction}) without a "
                f"connection; use at least {needed}"
            )
        if h2load and point.rate is not None:
            rates = split_whole(point.rate, split_count(point.vus, parts))
            if min(rates) < 1:
                host = parts[rates.index(min(rates))].host
                raise UserError(
                    f"--rates: {point.describe()} split across {len(members)} load hosts "
                    f"leaves {host} no request per second; offer more, or use fewer connections"
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
    if inv.load.tool == "h2load":
        return [
            f"share {part.fraction} of every cell's connections (h2load, one thread per "
            "CPU), and of an open point's rate by its connections"
            for part in parts
        ]
    return [
        f"share {part.fraction} of every cell's connections (wrk, one thread per CPU)"
        for part in parts
    ]
