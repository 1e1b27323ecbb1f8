"""The answer a run gives: for each load point and language, epoll against io_uring.

The CPU ratio is epoll's server CPU per request over io_uring's, one ratio per round (the
two cells of a round ran close together in time), with the 95% interval of those ratios.
The Req/s ratio (io_uring over epoll) is given only where both rows were server-bound:
elsewhere the load tool set Req/s. A winner is named only when every language's interval
lies on the same side of "no change". Only servers labelled epoll or io_uring whose verify
passed take part: a reference such as nginx has no io_uring twin, and an unverified
server's numbers cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.catalogue.spec import COMPARED_APIS
from orchestrator.load.points import LoadPoint
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.stats import Estimate, paired_ratio_ci

Side = Literal["io_uring", "epoll", "none"]
CpuFigure = Literal["target", "process"]
# The CellResult property each figure reads, and how the report names it.
FIGURE_FIELDS: dict[CpuFigure, str] = {
    "target": "target_cpu_us_per_request",
    "process": "cpu_us_per_request",
}
FIGURE_NAMES: dict[CpuFigure, str] = {
    "target": "target CPU per request",
    "process": "server process CPU per request",
}


def side_of(ratio: Estimate | None) -> Side:
    """Which API the ratio favours (>1: io_uring), or none when its interval includes 1."""
    if ratio is None or ratio.low is None or ratio.high is None:
        return "none"
    if ratio.low > 1:
        return "io_uring"
    if ratio.high < 1:
        return "epoll"
    return "none"


@dataclass(frozen=True)
class LanguageVerdict:
    """epoll against io_uring in one language at one load point."""

    language: str  # as the table writes it: C, Rust, Zig
    cpu_ratio: Estimate | None  # epoll CPU per request / io_uring's, per-round pairs
    rps_ratio: Estimate | None  # io_uring Req/s / epoll's; None unless both server-bound
    load_bound: bool  # either row was limited by the load tool
    figure: CpuFigure = "process"  # which CPU per request cpu_ratio compares
    process_ratio: Estimate | None = None  # the process figure's, when cpu_ratio is target's
    why: Why | None = None  # syscalls and context switches per request of both
    implausible_cells: int = 0  # cells whose target figure fell below the process's

    @property
    def cpu_side(self) -> Side:
        """The API that used less CPU per request, or none."""
        return side_of(self.cpu_ratio)

    @property
    def figures_disagree(self) -> bool:
        """The target-wide and the process figure put the APIs on different sides."""
        other = side_of(self.process_ratio)
        return self.figure == "target" and other != "none" and other != self.cpu_side


def _count(value: float) -> str:
    """A count per request: two decimals, three below 0.1 (0.004 context switches)."""
    return f"{value:.2f}" if value >= 0.095 else f"{value:.3f}"


@dataclass(frozen=True)
class Why:
    """What each API did per request: syscalls (over the warm-up pass) and context
    switches (over the measured pass), medians over the rounds."""

    epoll_syscalls: float | None
    io_uring_syscalls: float | None
    epoll_switches: float | None
    io_uring_switches: float | None

    def sentence(self) -> str | None:
        """`io_uring 0.11 syscalls and 0.02 context switches per request, epoll 2.03 and
        0.41` (syscalls left out where perf did not count them; None: nothing counted)."""
        pairs = [
            (what, io, ep)
            for what, io, ep in (
                ("syscalls", self.io_uring_syscalls, self.epoll_syscalls),
                ("context switches", self.io_uring_switches, self.epoll_switches),
            )
            if io is not None and ep is not None
        ]
        if not pairs:
            return None
        io_words = " and ".join(f"{_count(io)} {what}" for what, io, _ in pairs)
        ep_words = " and ".join(_count(ep) for _, _, ep in pairs)
        return f"io_uring {io_words} per request, epoll {ep_words}"


@dataclass(frozen=True)
class PointVerdict:
    """All languages at one load point."""

    point: str  # the point's key
    label: str  # the point in words, e.g. `100 connections`
    languages: list[LanguageVerdict]
    open_model: bool = False  # arrivals at a fixed rate: Req/s is the rate offered

    @property
    def winner(self) -> Side:
        """The API every language's CPU interval favours, else none."""
        sides = {verdict.cpu_side for verdict in self.languages if verdict.cpu_ratio}
        if len(sides) == 1 and self.languages:
            return sides.pop()
        return "none"


def _pairs(
    cells: Sequence[CellResult], epoll: str, io_uring: str, point: str, figure: str
) -> list[tuple[float, float]]:
    """(epoll, io_uring) values of `figure` per round where both cells succeeded."""

    def by_round(server: str) -> dict[int, float]:
        found: dict[int, float] = {}
        for cell in cells:
            if cell.server == server and cell.point == point and cell.status == "ok":
                value = getattr(cell, figure)
                if value is not None and value > 0:
                    found[cell.repetition] = value
        return found

    ep, io = by_round(epoll), by_round(io_uring)
    return [(ep[r], io[r]) for r in sorted(ep) if r in io]


def cpu_pairs(
    cells: Sequence[CellResult], epoll: str, io_uring: str, point: str
) -> tuple[CpuFigure, list[tuple[float, float]]]:
    """The CPU figure the verdict compares for one pair at one point, and its (epoll,
    io_uring) values per round where both cells succeeded (what `--precision` judges too)."""
    figure, _ = _figure(cells, (epoll, io_uring), point)
    return figure, _pairs(cells, epoll, io_uring, point, FIGURE_FIELDS[figure])


def _ratio(pairs: list[tuple[float, float]]) -> Estimate | None:
    return paired_ratio_ci(pairs) if pairs else None


def comparable_pairs(rows: Sequence[Row]) -> list[tuple[str, Row, Row]]:
    """(label, epoll row, io_uring row) for each language at one point: only rows labelled
    epoll or io_uring whose server passed verify; a language with several servers of an
    API gives every pairing, labelled with both names."""
    by_language: dict[str, tuple[list[Row], list[Row]]] = {}
    for row in rows:
        if row.verified and row.api in COMPARED_APIS:
            epolls, io_urings = by_language.setdefault(row.language, ([], []))
            (epolls if row.api == "epoll" else io_urings).append(row)
    pairs = []
    for language, (epolls, io_urings) in by_language.items():
        several = len(epolls) * len(io_urings) > 1
        for epoll in epolls:
            for io_uring in io_urings:
                label = f"{language} ({epoll.server} vs {io_uring.server})" if several else language
                pairs.append((label, epoll, io_uring))
    return pairs


def _figure(
    cells: Sequence[CellResult], servers: tuple[str, str], point: str
) -> tuple[CpuFigure, int]:
    """The target-wide figure when every successful cell of the pair has a plausible one,
    else the server process's (runs recorded before orch measured the target, or a
    machine whose background changed after its idle baseline); and how many cells had an
    implausible target figure."""
    chosen = [c for c in cells if c.server in servers and c.point == point and c.status == "ok"]
    if not chosen or any(c.target_cpu_us_per_request is None for c in chosen):
        return "process", 0
    implausible = sum(1 for c in chosen if not c.target_cpu_plausible)
    return ("process" if implausible else "target"), implausible


def _why(epoll: Row, io_uring: Row) -> Why | None:
    if epoll.cost is None or io_uring.cost is None:
        return None

    def value(estimate: Estimate | None) -> float | None:
        return None if estimate is None else estimate.value

    return Why(
        epoll_syscalls=value(epoll.cost.syscalls),
        io_uring_syscalls=value(io_uring.cost.syscalls),
        epoll_switches=value(epoll.cost.context_switches),
        io_uring_switches=value(io_uring.cost.context_switches),
    )


def point_verdicts(
    cells: Sequence[CellResult], rows: Sequence[Row], points: Sequence[LoadPoint]
) -> list[PointVerdict]:
    """A verdict per load point for every language measured with both APIs there."""
    verdicts = []
    for point in points:
        key = point.key
        languages = []
        for label, epoll_row, io_row in comparable_pairs([r for r in rows if r.point == key]):
            epoll, io_uring = epoll_row.server, io_row.server
            figure, implausible = _figure(cells, (epoll, io_uring), key)
            cpu = _ratio(_pairs(cells, epoll, io_uring, key, FIGURE_FIELDS[figure]))
            process = None
            if figure == "target":
                process = _ratio(_pairs(cells, epoll, io_uring, key, "cpu_us_per_request"))
            bound = epoll_row.load_bound or io_row.load_bound
            rps = None
            if not bound and not point.is_open:
                # io_uring over epoll: pairs reversed.
                pairs = [
                    (b, a) for a, b in _pairs(cells, epoll, io_uring, key, "requests_per_second")
                ]
                rps = _ratio(pairs)
            why = _why(epoll_row, io_row)
            languages.append(
                LanguageVerdict(label, cpu, rps, bound, figure, process, why, implausible)
            )
        if languages:
            verdicts.append(PointVerdict(key, point.describe(), languages, point.is_open))
    return verdicts


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%" if abs(value) >= 0.095 else f"{value * 100:.1f}%"


def _less_cpu(ratio: Estimate) -> str:
    """How much less CPU per request the cheaper API used: `7% (4…10%)`."""
    if ratio.low is None or ratio.high is None:
        value = 1 - 1 / ratio.value if ratio.value >= 1 else 1 - ratio.value
        return f"{_percent(value)} (one round: no interval)"
    if ratio.value >= 1:  # io_uring cheaper: its CPU is 1/ratio of epoll's
        low, high = 1 - 1 / ratio.low, 1 - 1 / ratio.high
        value = 1 - 1 / ratio.value
    else:
        low, high = 1 - ratio.high, 1 - ratio.low
        value = 1 - ratio.value
    return f"{_percent(value)} ({_percent(low)}…{_percent(high)})"


def _signed_change(ratio: Estimate) -> str:
    """io_uring's CPU per request against epoll's, signed: `io_uring's CPU per request
    -2.0%, -6.0…+2.0%`."""

    def change(r: float) -> float:
        return (1 / r - 1) * 100

    text = f"io_uring's CPU per request {change(ratio.value):+.1f}%"
    if ratio.low is None or ratio.high is None:
        return text + ", one round: no interval"
    return f"{text}, {change(ratio.high):+.1f}…{change(ratio.low):+.1f}%"


def _more(ratio: Estimate) -> str:
    """io_uring's Req/s against epoll's: `+3.1% (+0.5…+5.8%)`."""
    text = f"{(ratio.value - 1) * 100:+.1f}%"
    if ratio.low is not None and ratio.high is not None:
        text += f" ({(ratio.low - 1) * 100:+.1f}…{(ratio.high - 1) * 100:+.1f}%)"
    return text


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _rps_clause(verdict: PointVerdict) -> str:
    if verdict.open_model:
        return "Req/s was the offered rate (see the knees for who kept up)"
    measured = [v for v in verdict.languages if v.rps_ratio is not None]
    bound = [v.language for v in verdict.languages if v.load_bound]
    parts = []
    for v in measured:
        assert v.rps_ratio is not None
        side = side_of(v.rps_ratio)
        what = "no clear difference" if side == "none" else f"{side} ahead"
        parts.append(f"{v.language} {what} (io_uring {_more(v.rps_ratio)})")
    if parts:
        clause = "Req/s (both rows server-bound): " + "; ".join(parts)
        if bound:
            clause += f"; in {_join(bound)} Req/s was set by the load tool"
        return clause
    return "Req/s was set by the load tool" if bound else "Req/s not measured"


def _cpu_words(verdict: PointVerdict) -> str:
    """`CPU per request`, named `target CPU per request` where the verdict used the
    target-wide figure for every language (runs before it read only the process)."""
    figures = {v.figure for v in verdict.languages if v.cpu_ratio is not None}
    return "target CPU per request" if figures == {"target"} else "CPU per request"


def sentence(verdict: PointVerdict) -> str:
    """The verdict at one point in plain words."""
    with_cpu = [v for v in verdict.languages if v.cpu_ratio is not None]
    start = f"At {verdict.label}"
    if not with_cpu:
        return f"{start} no language had CPU per request for both APIs: no winner."
    cpu = _cpu_words(verdict)
    winner = verdict.winner
    if winner != "none":
        other = "epoll" if winner == "io_uring" else "io_uring"
        detail = [f"{v.language} {_less_cpu(v.cpu_ratio)}" for v in with_cpu if v.cpu_ratio]
        head = (
            f"{start} {winner} used less {cpu} than {other} in "
            f"{_join([v.language for v in with_cpu])}: {_join(detail)} less"
        )
    else:
        groups: dict[Side, list[str]] = {"io_uring": [], "epoll": [], "none": []}
        for v in with_cpu:
            assert v.cpu_ratio is not None
            if v.cpu_side == "none":
                change = _signed_change(v.cpu_ratio).replace("CPU per request", cpu, 1)
                groups["none"].append(f"{v.language} ({change})")
            else:
                groups[v.cpu_side].append(f"{v.language} ({_less_cpu(v.cpu_ratio)} less)")
        said = []
        if groups["io_uring"]:
            said.append(f"io_uring used less {cpu} in {_join(groups['io_uring'])}")
        if groups["epoll"]:
            said.append(f"epoll used less {cpu} in {_join(groups['epoll'])}")
        if groups["none"]:
            said.append(f"no clear difference in {_join(groups['none'])}")
        if groups["io_uring"] and groups["epoll"]:
            why = "the languages disagree"
        elif any(v.cpu_ratio is not None and not v.cpu_ratio.has_interval for v in with_cpu):
            why = "one round gives no interval"
        else:
            why = "an interval includes no change"
        head = f"{start} {'; '.join(said)}: no winner ({why})"
    return f"{head}. {_rps_clause(verdict)}."


def explanation_lines(verdict: PointVerdict) -> list[str]:
    """Below a point's sentence: where the server process's own CPU per request puts the
    APIs on the other side from the target's, and, where a difference is named, why in one
    line (syscalls and context switches per request)."""
    lines = []
    for v in verdict.languages:
        if v.figures_disagree and v.process_ratio is not None:
            side = side_of(v.process_ratio)
            head = (
                f"In {v.language} the server process's own CPU per request puts {side} "
                f"ahead ({_less_cpu(v.process_ratio)} less)"
            )
            if v.cpu_side == "none" and v.cpu_ratio is not None:
                # Undecided, not reversed: the target figure also counts whatever else ran
                # on the counted CPUs, so it scatters more.
                change = _signed_change(v.cpu_ratio).replace("CPU", "target CPU", 1)
                lines.append(
                    f"{head}; the target's, which also counts interrupts, softirqs and "
                    f"whatever else ran on the counted CPUs, cannot tell them apart ({change})."
                )
            else:
                lines.append(
                    f"{head}, the target's the other way: the difference lies in work outside "
                    "the process (interrupts, softirqs, wake-ups on other CPUs)."
                )
        if v.cpu_side != "none" and v.why is not None and (said := v.why.sentence()):
            lines.append(f"Why, in {v.language}: {said}.")
    return lines
