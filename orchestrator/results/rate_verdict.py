"""The verdict at open-model rate points whose load tool counts late requests (h2load):
epoll against io_uring at equal offered rate, only where both servers held the rate.

A server held a rate when every one of its cells there ran, failed no request and
achieved at least 99% of the rate, and at most 0.01% of their requests were late (an
answer slower than the interval between a connection's requests, which kept the next
request from starting on time; the tolerance is a tenth of p99.9's tail). Where both
servers of a language held it: CPU per request (the figure the closed-loop verdict and
`--precision` use: the target's, else the server process's; epoll's over io_uring's, one
ratio per round) and p50, p99 and p99.9 (io_uring's over epoll's, per round), each with its
95% interval. A rate a server did not hold is said as such and nothing is compared there. A
winner is named only when every language compared at the rate favours one API.

This module stands apart from verdict.py (the closed-loop and k6 verdict) on purpose: it
decides what may be compared at a rate; the CPU figure and its pairs are verdict.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.load.points import LoadPoint
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.knees import LATE_SHARE_TOLERATED, SUSTAIN_SHARE, held, late_share
from orchestrator.results.stats import Estimate, paired_ratio_ci
from orchestrator.results.verdict import CpuFigure, Side, comparable_pairs, cpu_pairs, side_of

# (label, the latency field) of the percentiles compared
PERCENTILES = (("p50", "p50"), ("p99", "p99"), ("p99.9", "p999"))
CellFigure = Callable[[CellResult], float | None]


def counts_late(cells: Sequence[CellResult]) -> bool:
    """Whether the run's open-model cells count late requests (h2load's do)."""
    return any(c.load is not None and c.load.late_requests is not None for c in cells)


@dataclass(frozen=True)
class Holding:
    """How one server fared at one rate over its rounds."""

    server: str
    rate: int
    cells: list[CellResult]

    @property
    def held(self) -> bool:
        """Held in every round measured (and measured at all)."""
        return held(self.cells, self.rate)

    def _short(self) -> list[str]:
        """The ways its rounds fell short, each with how many rounds."""
        failed = [c for c in self.cells if c.status != "ok" or c.load is None]
        ran = [c.load for c in self.cells if c.status == "ok" and c.load is not None]
        erring = [load for load in ran if load.failed_requests]
        slow = [
            load.requests_per_second
            for load in ran
            if load.requests_per_second < SUSTAIN_SHARE * self.rate
        ]
        rounds = len(self.cells)
        said = []
        if failed:
            said.append(f"the cell failed in {len(failed)} of {rounds} rounds")
        if erring:
            count = sum(load.failed_requests for load in erring)
            said.append(f"{count:,} failed requests in {len(erring)} of {rounds} rounds")
        if slow:
            span = (
                f"{min(slow):,.0f}" if len(slow) == 1 else f"{min(slow):,.0f} to {max(slow):,.0f}"
            )
            said.append(f"short of it in {len(slow)} of {rounds} rounds: {span} req/s achieved")
        share = late_share(self.cells)
        if share > LATE_SHARE_TOLERATED:
            late = sum(c.load.late_requests or 0 for c in self.cells if c.load is not None)
            said.append(f"{late:,} requests late, {share:.2%} of its requests")
        return said

    def describe(self) -> str:
        """`c-epoll did not hold 100,000 req/s (short of it in 3 of 20 rounds ...)`."""
        if not self.cells:
            return f"{self.server} was not measured at {self.rate:,} req/s"
        return f"{self.server} did not hold {self.rate:,} req/s ({'; '.join(self._short())})"


def holding(cells: Sequence[CellResult], server: str, point: LoadPoint) -> Holding:
    """`server`'s cells at `point`, judged together."""
    mine = [c for c in cells if c.server == server and c.point == point.key]
    return Holding(server, point.rate or 0, sorted(mine, key=lambda c: c.repetition))


@dataclass(frozen=True)
class RateLanguage:
    """epoll against io_uring in one language at one rate."""

    language: str
    epoll: Holding
    io_uring: Holding
    cpu_ratio: Estimate | None  # epoll CPU per request / io_uring's; None unless both held
    latency: dict[str, Estimate]  # io_uring / epoll per percentile; empty unless both held
    figure: CpuFigure = "process"  # which CPU per request cpu_ratio compares

    @property
    def compared(self) -> bool:
        """Both servers held the rate, so they were compared."""
        return self.epoll.held and self.io_uring.held

    @property
    def cpu_side(self) -> Side:
        """The API that used less CPU per request, or none."""
        return side_of(self.cpu_ratio)


@dataclass(frozen=True)
class RatePointVerdict:
    """All languages at one rate."""

    point: str
    rate: int
    languages: list[RateLanguage]

    @property
    def winner(self) -> Side:
        """The API every compared language's CPU interval favours, else none."""
        sides = {v.cpu_side for v in self.languages if v.compared and v.cpu_ratio}
        compared = [v for v in self.languages if v.compared]
        if len(sides) == 1 and len(compared) == len(self.languages):
            return sides.pop()
        return "none"


def _by_round(
    cells: Sequence[CellResult], server: str, key: str, figure: CellFigure
) -> dict[int, float]:
    found: dict[int, float] = {}
    for cell in cells:
        if cell.server == server and cell.point == key and cell.status == "ok":
            value = figure(cell)
            if value is not None and value > 0:
                found[cell.repetition] = value
    return found


def _ratio(
    cells: Sequence[CellResult], top: str, bottom: str, key: str, figure: CellFigure
) -> Estimate | None:
    """`top`'s figure over `bottom`'s, one ratio per round where both have it."""
    above, below = _by_round(cells, top, key, figure), _by_round(cells, bottom, key, figure)
    pairs = [(above[r], below[r]) for r in sorted(above) if r in below]
    return paired_ratio_ci(pairs) if pairs else None


def _latency(field: str) -> CellFigure:
    def read(cell: CellResult) -> float | None:
        return None if cell.load is None else getattr(cell.load.latency, field)

    return read


def rate_point_verdicts(
    cells: Sequence[CellResult], rows: Sequence[Row], points: Sequence[LoadPoint]
) -> list[RatePointVerdict]:
    """A verdict per open-model point for every language measured with both APIs there."""
    verdicts = []
    for point in points:
        if not point.is_open or point.rate is None:
            continue
        key = point.key
        languages = []
        for label, epoll_row, io_row in comparable_pairs([r for r in rows if r.point == key]):
            epoll = holding(cells, epoll_row.server, point)
            io_uring = holding(cells, io_row.server, point)
            cpu, latency = None, {}
            figure: CpuFigure = "process"
            if epoll.held and io_uring.held:
                ep, io = epoll.server, io_uring.server
                figure, values = cpu_pairs(cells, ep, io, key)
                cpu = paired_ratio_ci(values) if values else None
                for name, field in PERCENTILES:
                    ratio = _ratio(cells, io, ep, key, _latency(field))
                    if ratio is not None:
                        latency[name] = ratio
            languages.append(RateLanguage(label, epoll, io_uring, cpu, latency, figure))
        if languages:
            verdicts.append(RatePointVerdict(key, point.rate, languages))
    return verdicts


def _change(ratio: Estimate) -> str:
    """A ratio as a signed change with its interval: `-4.1% (-7.0…-1.2%)`, `n.s.` when
    the interval includes no change."""
    text = f"{(ratio.value - 1) * 100:+.1f}%"
    if ratio.low is None or ratio.high is None:
        return text + " (one round: no interval)"
    text += f" ({(ratio.low - 1) * 100:+.1f}…{(ratio.high - 1) * 100:+.1f}%)"
    return text if ratio.excludes(1.0) else text + " n.s."


def _language_clause(v: RateLanguage) -> str:
    if not v.compared:
        missed = [h.describe() for h in (v.epoll, v.io_uring) if not h.held]
        return f"{v.language} not compared: {'; '.join(missed)}"
    parts = []
    if v.cpu_ratio is not None:
        # epoll over io_uring: io_uring's CPU per request against epoll's is 1/ratio.
        inverse = Estimate(
            1 / v.cpu_ratio.value,
            None if v.cpu_ratio.high is None else 1 / v.cpu_ratio.high,
            None if v.cpu_ratio.low is None else 1 / v.cpu_ratio.low,
            v.cpu_ratio.n,
            v.cpu_ratio.method,
            v.cpu_ratio.confidence,
        )
        parts.append(f"io_uring's {_cpu_words([v])} {_change(inverse)}")
    if v.latency:
        latency = ", ".join(f"{name} {_change(ratio)}" for name, ratio in v.latency.items())
        parts.append(f"io_uring's latency {latency}")
    return f"{v.language}: {'; '.join(parts) or 'no figures'}"


def _cpu_words(languages: Sequence[RateLanguage]) -> str:
    """`target CPU per request` where every compared language used the target-wide
    figure, else `CPU per request` (as the closed-loop verdict says it)."""
    figures = {v.figure for v in languages if v.cpu_ratio is not None}
    return "target CPU per request" if figures == {"target"} else "CPU per request"


def rate_sentence(verdict: RatePointVerdict) -> str:
    """The verdict at one rate in plain words."""
    start = f"At {verdict.rate:,} req/s (offered to each server alike)"
    clauses = "; ".join(_language_clause(v) for v in verdict.languages)
    end = "" if clauses.endswith(".") else "."  # `n.s.` ends it already
    winner = verdict.winner
    if winner != "none":
        other = "epoll" if winner == "io_uring" else "io_uring"
        cpu = _cpu_words(verdict.languages)
        return f"{start} {winner} used less {cpu} than {other}: {clauses}{end}"
    if not any(v.compared for v in verdict.languages):
        return f"{start} nothing was compared: {clauses}{end}"
    return f"{start} no winner: {clauses}{end}"


RATE_VERDICT_NOTE = (
    "At a rate, servers are compared only where both held it: in every round no failed "
    "request and at least 99% of the offered rate achieved, and at most 0.01% of the "
    "requests late (an answer slower than the interval between a connection's requests: "
    "h2load sends one request at a time per connection, so the next request waited, and "
    "its latency, counted from when it was sent, leaves that wait out: coordinated "
    "omission; 0.01% is a tenth of p99.9's tail). CPU per request (the target's, see Cost "
    "per request, where every cell of the pair has a plausible one, else the server "
    "process's) is compared as epoll's over io_uring's in each round and latency as "
    "io_uring's over epoll's, each with the 95% interval of the per-round ratios (`n.s.`: "
    "it includes no change). A winner is named only when every language's CPU interval "
    "lies on the same side of no change."
)
