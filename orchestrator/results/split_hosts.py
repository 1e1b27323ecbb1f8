"""What each load host did, per server and load point, when a run split its load: its
requests and CPU share (medians over the successful cells), how often it was at its
limit, and per row the measured start skew and the cost of its latency histograms.

Load hosts that are one machine (the lab's namespaces: one boot id) with overlapping
CPUs compete for those CPUs: their CPU share is the machine's, all of them together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

from orchestrator.results.cell_result import CellResult
from orchestrator.results.saturation import load_host_at_limit


@dataclass(frozen=True)
class HostRow:
    """One load host's part of one server at one point."""

    host: str
    cells: int
    requests: float | None
    requests_per_second: float | None
    cpu_share: float | None
    at_limit_cells: int
    shares_cpus_with: tuple[str, ...] = ()  # load hosts on the same machine and CPUs

    @property
    def at_limit(self) -> bool:
        """True when the host was at its limit in most of the cells."""
        return self.at_limit_cells * 2 > self.cells


@dataclass(frozen=True)
class SplitRow:
    """One server at one point, measured with its load split across hosts."""

    server: str
    point: str
    hosts: list[HostRow]
    skew_median: float | None
    skew_max: float | None
    clock_error: float | None  # the largest bound on the skew's clock error
    reduce_median: float | None  # seconds to turn the samples into histograms per cell
    reduce_max: float | None
    method: str


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if known else None


def _neighbours(
    host: str, machines: Mapping[str, str], cpus: Mapping[str, Sequence[int]]
) -> tuple[str, ...]:
    """The other load hosts on `host`'s machine whose CPUs overlap its own."""
    machine, own = machines.get(host), set(cpus.get(host, ()))
    return tuple(
        other
        for other, at in machines.items()
        if other != host and machine and at == machine and own & set(cpus.get(other, ()))
    )


def _share(
    cell: CellResult, group: Sequence[str], cpus: Mapping[str, Sequence[int]]
) -> float | None:
    """The CPU share of a group of load hosts on one machine's CPUs in one cell."""
    results = [r for r in cell.load_by_host if r.host in group]
    if len(group) == 1:
        return results[0].cpu_share if results else None
    used = [r.cpu_seconds for r in results]
    walls = [r.wall_seconds or 0.0 for r in results]
    cores = set().union(*(set(cpus.get(h, ())) for h in group))
    if any(u is None for u in used) or not cores or max(walls, default=0.0) <= 0:
        return None
    return sum(u or 0.0 for u in used) / (max(walls) * len(cores))


def _host_row(
    host: str,
    cells: Sequence[CellResult],
    machines: Mapping[str, str],
    cpus: Mapping[str, Sequence[int]],
) -> HostRow:
    results = [r for c in cells for r in c.load_by_host if r.host == host]
    neighbours = _neighbours(host, machines, cpus)
    shares = [_share(c, (host, *neighbours), cpus) for c in cells]
    return HostRow(
        host=host,
        cells=len(results),
        requests=_median([float(r.requests) for r in results]),
        requests_per_second=_median([r.requests_per_second for r in results]),
        cpu_share=_median(shares),
        at_limit_cells=sum(1 for s in shares if s is not None and load_host_at_limit(s)),
        shares_cpus_with=neighbours,
    )


def split_rows(
    cells: Sequence[CellResult],
    points: Sequence[str] = (),
    machines: Mapping[str, str] | None = None,
    cpus: Mapping[str, Sequence[int]] | None = None,
) -> list[SplitRow]:
    """Rows of the successful cells measured on several load hosts, by point (in `points`
    order, then any other) and server; load hosts in the order the cells list them.
    `machines`: each load host's machine (its boot id), `cpus`: its CPUs, to tell hosts
    that share CPUs."""
    machines, cpus = machines or {}, cpus or {}
    groups: dict[tuple[str, str], list[CellResult]] = {}
    for cell in cells:
        if cell.status == "ok" and cell.load is not None and cell.load_by_host:
            groups.setdefault((cell.point, cell.server), []).append(cell)
    order = list(dict.fromkeys([*points, *sorted({p for p, _ in groups})]))
    rows = []
    for point in order:
        for (at, server), group in sorted(groups.items()):
            if at != point:
                continue
            hosts = list(dict.fromkeys(r.host or "" for c in group for r in c.load_by_host))
            merged = [c.load for c in group if c.load is not None]
            histograms = [m.histogram for m in merged if m.histogram is not None]
            skews = [m.start_skew_seconds for m in merged]
            costs = [h.reduce_seconds for h in histograms]
            methods = sorted({h.method for h in histograms})
            rows.append(
                SplitRow(
                    server=server,
                    point=point,
                    hosts=[_host_row(host, group, machines, cpus) for host in hosts],
                    skew_median=_median(skews),
                    skew_max=max((s for s in skews if s is not None), default=None),
                    clock_error=max(
                        (m.clock_error_seconds for m in merged if m.clock_error_seconds),
                        default=None,
                    ),
                    reduce_median=_median(costs),
                    reduce_max=max((c for c in costs if c is not None), default=None),
                    method="; ".join(methods),
                )
            )
    return rows
