"""Cells aggregated into rows: one per server and load point, every figure an `Estimate`
(the median across the successful repetitions with its 95% interval), and the
`% More Requests` ratio against a baseline from per-round pairs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from orchestrator.catalogue.spec import language_label
from orchestrator.results.cell_result import CellResult
from orchestrator.results.cost import CYCLES, INSTRUCTIONS, SYSCALLS
from orchestrator.results.record import LEGACY_ORDER
from orchestrator.results.saturation import is_load_bound
from orchestrator.results.stats import (
    METHOD_NONE,
    Estimate,
    coefficient_of_variation,
    median_ci,
    paired_ratio_ci,
)

Figure = Callable[[CellResult], float | None]


@dataclass(frozen=True)
class RowCost:
    """What a server's requests cost the target at one point, per request, as medians
    over its successful repetitions (None where no cell recorded the figure)."""

    target_cpu_us: Estimate | None  # every counted CPU above its idle baseline
    interrupt_us: Estimate | None  # irq + softirq on the counted CPUs
    interrupt_cpus: list[int]  # the CPUs that did the irq + softirq work
    context_switches: Estimate | None
    syscalls: Estimate | None  # over the warm-up pass (perf)
    cycles: Estimate | None
    instructions: Estimate | None
    ipc: Estimate | None


@dataclass(frozen=True)
class Row:
    """One server at one load point: medians over its successful repetitions."""

    server: str
    api: str
    language: str  # as the seed's table writes it: C, Rust, Zig
    point: str
    repetitions: int
    repetitions_ok: int
    latency_p50_ms: Estimate | None
    latency_p99_ms: Estimate | None
    latency_p999_ms: Estimate | None
    requests_per_second: Estimate | None
    requests_per_cpu_second: Estimate | None
    cpu_us_per_request: Estimate | None
    server_cpu: Estimate | None  # share of one core (1.0 = all of it)
    core_busy: Estimate | None  # share of the pinned core not idle
    load_cpu: Estimate | None  # share of the load tool's cores
    saturation: Estimate | None  # what the load-bound rule judges (CellResult.server_load)
    nic_packets_per_request: Estimate | None
    requests_per_second_cv: float | None
    failed_requests: int
    dropped_iterations: int
    load_bound_cells: int
    more_requests: Estimate | None = None  # Req/s over the baseline's, per-round interval
    is_baseline: bool = False
    verified: bool = True  # False: measured although its server failed verify
    cost: RowCost | None = None  # the whole cost per request (None: not recorded)
    late_requests: int | None = None  # h2load's late requests over all cells (None: not counted)

    @property
    def load_bound(self) -> bool:
        """True when the server's core typically sat idle: the load tool set Req/s."""
        return self.saturation is not None and is_load_bound(self.saturation.value)

    @property
    def limit(self) -> str:
        """Who set Req/s: `server`, `load tool`, `failed`, or a split verdict."""
        if self.repetitions_ok == 0:
            return "failed"
        verdict = "load tool" if self.load_bound else "server"
        mixed = 0 < self.load_bound_cells < self.repetitions_ok
        return (
            f"{verdict} ({self.load_bound_cells}/{self.repetitions_ok} load-bound)"
            if mixed
            else verdict
        )

    @property
    def more_requests_significant(self) -> bool | None:
        """Whether the interval of `more_requests` excludes no change (None: no interval)."""
        if self.more_requests is None or not self.more_requests.has_interval:
            return None
        return self.more_requests.excludes(1.0)

    @property
    def interval_method(self) -> str:
        """How the Req/s and latency intervals were computed (`none` without any)."""
        figures = (
            self.requests_per_second,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.latency_p999_ms,
        )
        methods = {e.method for e in figures if e is not None}
        return "/".join(sorted(methods)) if methods else METHOD_NONE


def estimate(values: Sequence[float | None]) -> Estimate | None:
    """The median of the known values with its interval (None when none is known)."""
    present = [v for v in values if v is not None]
    return median_ci(present) if present else None


def _ok(group: Sequence[CellResult]) -> list[CellResult]:
    return [c for c in group if c.status == "ok" and c.load is not None]


def _latency(field: str) -> Figure:
    def read(cell: CellResult) -> float | None:
        return None if cell.load is None else getattr(cell.load.latency, field)

    return read


def _row_cost(ok: Sequence[CellResult]) -> RowCost | None:
    measured = [c for c in ok if c.cost is not None]
    if not measured:
        return None

    def over(figure: Figure) -> Estimate | None:
        return estimate([figure(c) for c in measured])

    cpus = sorted(
        {
            cpu
            for c in measured
            if c.cost and c.cost.target
            for cpu in c.cost.target.interrupt_cpus()
        }
    )
    return RowCost(
        target_cpu_us=over(lambda c: c.target_cpu_us_per_request),
        interrupt_us=over(lambda c: c.interrupt_us_per_request),
        interrupt_cpus=cpus,
        context_switches=over(lambda c: c.context_switches_per_request),
        syscalls=over(lambda c: c.perf_per_request(SYSCALLS)),
        cycles=over(lambda c: c.perf_per_request(CYCLES)),
        instructions=over(lambda c: c.perf_per_request(INSTRUCTIONS)),
        ipc=over(lambda c: c.instructions_per_cycle),
    )


def _row(server: str, point: str, group: Sequence[CellResult]) -> Row:
    ok = _ok(group)

    def over(figure: Figure) -> Estimate | None:
        return estimate([figure(c) for c in ok])

    load_values = [u for u in (c.server_load for c in ok) if u is not None]
    rps_values = [c.load.requests_per_second for c in ok if c.load]
    return Row(
        server=server,
        api=group[0].api,
        language=language_label(group[0].language),
        point=point,
        repetitions=len(group),
        repetitions_ok=len(ok),
        latency_p50_ms=over(_latency("p50")),
        latency_p99_ms=over(_latency("p99")),
        latency_p999_ms=over(_latency("p999")),
        requests_per_second=over(lambda c: c.requests_per_second),
        requests_per_cpu_second=over(lambda c: c.requests_per_cpu_second),
        cpu_us_per_request=over(lambda c: c.cpu_us_per_request),
        server_cpu=over(lambda c: c.server_cpu.utilisation if c.server_cpu else None),
        core_busy=over(lambda c: c.core_busy),
        load_cpu=over(lambda c: c.load_cpu.share if c.load_cpu else None),
        saturation=estimate(load_values),
        nic_packets_per_request=over(lambda c: c.nic_packets_per_request),
        requests_per_second_cv=coefficient_of_variation(rps_values),
        failed_requests=sum(c.load.failed_requests for c in group if c.load),
        dropped_iterations=sum(c.load.dropped_iterations for c in group if c.load),
        load_bound_cells=sum(1 for u in load_values if is_load_bound(u)),
        cost=_row_cost(ok),
        late_requests=_late(group),
    )


def _late(group: Sequence[CellResult]) -> int | None:
    """Late requests over the cells that count them (None when none does)."""
    counted = [c.load.late_requests for c in group if c.load and c.load.late_requests is not None]
    return sum(counted) if counted else None


def rps_by_round(group: Sequence[CellResult]) -> dict[int, float]:
    """Req/s of each successful repetition, by repetition (= round) number."""
    return {c.repetition: c.load.requests_per_second for c in _ok(group) if c.load is not None}


def _with_baseline(
    row: Row, base: Row | None, rounds: dict[int, float], base_rounds: dict[int, float]
) -> Row:
    if base is None:
        return row
    if row.server == base.server:
        return replace(row, is_baseline=True)
    if row.requests_per_second is None or base.requests_per_second is None:
        return row
    ratio = row.requests_per_second.value / base.requests_per_second.value
    pairs = [(rounds[r], base_rounds[r]) for r in sorted(rounds) if r in base_rounds]
    more = Estimate(ratio, None, None, 1, METHOD_NONE, None)
    if any(a > 0 and b > 0 for a, b in pairs):
        more = paired_ratio_ci(pairs, point=ratio)
    return replace(row, more_requests=more)


def server_order(names: Sequence[str], order: Sequence[str] = ()) -> list[str]:
    """`names` in the run's catalogue `order`, others after it, sorted."""
    known = [name for name in order if name in names]
    return known + sorted(name for name in set(names) if name not in known)


def build_rows(
    cells: Sequence[CellResult],
    baseline: str | None,
    points: Sequence[str] = (),
    order: Sequence[str] = LEGACY_ORDER,
    unverified: Collection[str] = (),
) -> list[Row]:
    """Rows per load point (in `points` order, then any other) and server (in `order`,
    the catalogue's), with `% More Requests` against `baseline` at the same point (the
    first server with a Req/s when the baseline has none). Cells not measured (their
    server failed verify) make no row; servers in `unverified` were measured anyway and
    their rows say so."""
    groups: dict[tuple[str, str], list[CellResult]] = {}
    for cell in cells:
        if cell.status != "skipped":
            groups.setdefault((cell.point, cell.server), []).append(cell)
    point_order = list(dict.fromkeys([*points, *sorted({p for p, _ in groups})]))
    rows: list[Row] = []
    for point in point_order:
        names = server_order([s for p, s in groups if p == point], order)
        partial = [
            replace(_row(name, point, groups[(point, name)]), verified=name not in unverified)
            for name in names
        ]
        measured = [
            r.server
            for r in partial
            if r.requests_per_second is not None and r.requests_per_second.value
        ]
        chosen = baseline if baseline in measured else (measured[0] if measured else None)
        base = next((r for r in partial if r.server == chosen), None)
        base_rounds = rps_by_round(groups[(point, chosen)]) if chosen else {}
        rows += [
            _with_baseline(r, base, rps_by_round(groups[(point, r.server)]), base_rounds)
            for r in partial
        ]
    return rows
