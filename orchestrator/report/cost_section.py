"""report.md's Cost per request section: what each request cost the whole target (every
counted CPU above its idle baseline), the server process, interrupts and softirqs, and why
(context switches, syscalls, cycles); where the network work ran; what the figures leave
out; and warnings (threads outside the pinned CPUs, a busy baseline)."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.report.table import with_interval
from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.cost import MeasurementRecord
from orchestrator.results.record import RunRecord
from orchestrator.results.stats import Estimate
from orchestrator.system.change_set import PLACEMENT_SET

BUSY_BASELINE = 0.05  # a counted CPU busier than this when idle makes the baseline matter
SHARE_SHOWN = 0.05  # CPUs with less of the network work are not named

COLUMNS = (
    "Server",
    "Target µs/req",
    "Process µs/req",
    "irq+softirq µs/req",
    "Ctx switches/req",
    "Syscalls/req",
    "Cycles/req",
    "Instr/req",
    "IPC",
)


def _figure(est: Estimate | None, digits: int = 2) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    return with_interval(est, fmt)


def _cpus(cpus: Sequence[int]) -> str:
    return ", ".join(str(c) for c in cpus)


def _row_cells(row: Row) -> list[str]:
    cost = row.cost
    assert cost is not None
    irq = _figure(cost.interrupt_us)
    if cost.interrupt_cpus:
        word = "CPU" if len(cost.interrupt_cpus) == 1 else "CPUs"
        irq += f" on {word} {_cpus(cost.interrupt_cpus)}"
    return [
        row.server,
        _figure(cost.target_cpu_us),
        _figure(row.cpu_us_per_request),
        irq,
        _figure(cost.context_switches, 3),
        _figure(cost.syscalls),
        _figure(cost.cycles, 0),
        _figure(cost.instructions, 0),
        _figure(cost.ipc),
    ]


def _table(rows: Sequence[Row], labels: dict[str, str] | None) -> list[str]:
    columns = (["Point"] if labels else []) + list(COLUMNS)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        if row.cost is None:
            continue
        cells = ([labels.get(row.point, row.point)] if labels else []) + _row_cells(row)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _role(cpu: int, pins: Sequence[int], measurement: MeasurementRecord) -> str:
    if cpu in pins:
        return "the server's"
    if cpu in measurement.left_out_cpus:
        return "a load tool's, left out"
    return "another"


def _shares(
    counts: dict[int, int], what: str, pins: Sequence[int], measurement: MeasurementRecord
) -> str:
    """`97% of NET_RX on CPU 3 (another), not the server's CPU 0` (CPUs with less than
    5% are not named)."""
    total = sum(counts.values())
    shown = [
        (cpu, f"{n / total:.0%}")
        for cpu, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if total and n / total >= SHARE_SHOWN
    ]
    parts = [
        f"{share}{f' of {what}' if i == 0 else ''} on CPU {cpu} ({_role(cpu, pins, measurement)})"
        for i, (cpu, share) in enumerate(shown)
    ]
    text = ", ".join(parts)
    if not any(cpu in pins for cpu, _ in shown):
        text += f", not the server's CPU {_cpus(pins)}"
    return text


def _add(total: dict[int, int], counts: dict[int, int]) -> None:
    for cpu, n in counts.items():
        total[cpu] = total.get(cpu, 0) + n


def network_lines(
    record: RunRecord, cells: Sequence[CellResult], measurement: MeasurementRecord
) -> list[str]:
    """Per server, in one line: where its receive work ran (NET_RX softirqs and the packets
    received, by CPU), and its interface's interrupts where the interface has lines."""
    pins = record.inventory.target.cpus
    out = []
    for server in dict.fromkeys(c.server for c in cells if c.cost and c.cost.network):
        net_rx: dict[int, int] = {}
        received: dict[int, int] = {}
        interrupts: dict[int, int] = {}
        for cell in cells:
            if cell.server != server or cell.cost is None or cell.cost.network is None:
                continue
            _add(net_rx, cell.cost.network.net_rx)
            _add(received, cell.cost.network.received or {})
            _add(interrupts, cell.cost.network.interrupts)
        if not sum(net_rx.values()):
            continue
        line = f"- {server}: network receive: {_shares(net_rx, 'NET_RX', pins, measurement)}"
        if sum(received.values()):
            line += f"; {_shares(received, 'packets received', pins, measurement)}"
        if sum(interrupts.values()):
            shares = _shares(interrupts, "its interrupts", pins, measurement)
            line += f"; the interface: {shares}"
        out.append(line)
    return out


def placement_line(record: RunRecord) -> str | None:
    """Where the run put the target's receive work, and how (None: left as it was)."""
    system = record.system
    if system is None or system.receive_work == "as-is":
        return None
    where = "on the server's CPUs" if system.receive_work == "server" else "off them"
    placed = [c for c in system.changes if c.name == PLACEMENT_SET]
    how = "; ".join(change.describe() for c in placed for change in c.changes)
    return (
        f"- Receive work placed {where} for the run (--receive-work {system.receive_work}, "
        f"put back after it): {how or 'already so, nothing changed'}"
    )


def _warnings(cells: Sequence[CellResult], measurement: MeasurementRecord) -> list[str]:
    out = []
    outside: dict[str, set[str]] = {}
    for cell in cells:
        if cell.cost is None:
            continue
        for thread in cell.cost.process.outside_pins:
            where = (
                f"{thread.name} (allowed on CPUs {thread.allowed}, seen on {_cpus(thread.ran_on)})"
            )
            outside.setdefault(cell.server, set()).add(where)
    for server, threads in outside.items():
        out.append(
            f"- **Warning:** {server} had threads outside its pinned CPUs: "
            f"{', '.join(sorted(threads))}; their CPU is in the process figure, and the "
            "work they did on other CPUs in the target figure only where those CPUs count."
        )
    baseline = measurement.baseline
    if baseline is not None:
        busy = [
            f"CPU {cpu} {rate:.0%}"
            for cpu, rate in sorted(baseline.busy_per_second.items())
            if cpu in measurement.counted_cpus and rate > BUSY_BASELINE
        ]
        if busy:
            out.append(
                f"- **Warning:** the target was not idle when its baseline was measured "
                f"({', '.join(busy)} busy): the target figure subtracts that, and is only as "
                "good as that background is steady."
            )
    return out


def cost_lines(record: RunRecord, cells: Sequence[CellResult], rows: Sequence[Row]) -> list[str]:
    """The whole section (nothing for runs recorded before orch measured the target)."""
    measurement = record.measurement
    if measurement is None or not any(row.cost is not None for row in rows):
        return []
    labels = None
    if not record.single_point:
        labels = {point.key: point.describe() for point in record.ordered_points}
    counted = _cpus(measurement.counted_cpus)
    out = ["## Cost per request", ""]
    intro = (
        f"Target µs/req: CPU time on every counted CPU of the target (CPU {counted}) above "
        "what each did when idle (its baseline, measured for "
        f"{measurement.baseline.seconds:g} s as the run started), per request: the server, "
        "its interrupts and softirqs, whatever woke for it."
        if measurement.baseline is not None
        else f"Target µs/req: CPU time on the counted CPUs ({counted}) per request."
    )
    if measurement.left_out_cpus:
        left = _cpus(measurement.left_out_cpus)
        intro += (
            f" Left out: CPU {left}, where a load tool ran on this machine; work done there "
            "for the target (such as receiving the load tool's requests over lo or a veth) "
            "is not counted, and the network lines below say how much of it ran there."
        )
    out.append(intro)
    out.append(
        "Process µs/req: the server's threads (schedstat nanoseconds). irq+softirq: the "
        "counted CPUs' interrupt and softirq time (/proc/stat ticks; without "
        "CONFIG_IRQ_TIME_ACCOUNTING the ticks that land in the server's own context are "
        "charged to it as well). Context switches: the server's, over the measured pass. "
        + (
            "Syscalls, cycles and instructions: perf stat over each cell's warm-up pass "
            "(the same load point; counting syscalls during the measured pass would slow "
            "every syscall), `-` where the machine cannot count them (no PMU)."
            if measurement.perf == "on"
            else f"perf: {measurement.perf}."
        )
    )
    out += ["", *_table(rows, labels), ""]
    network = network_lines(record, cells, measurement)
    placed = placement_line(record)
    if network or placed:
        out += ["Where the network work ran (all the server's cells):", ""]
        out += [*([placed] if placed else []), *network, ""]
    warnings = _warnings(cells, measurement)
    if warnings:
        out += [*warnings, ""]
    return out
