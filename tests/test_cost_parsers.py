"""The parsers of the kernel files a cell samples, against files captured on real machines
(tests/data/proc/README.md): /proc/interrupts of a multi-queue MSI-X NIC and of virtio,
/proc/softirqs, /proc/stat, /proc/net/softnet_stat, a task's stat, schedstat and status, and
perf stat's CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import HostError
from orchestrator.measure.interface import InterfaceDevice, interface_lines, parse_device
from orchestrator.measure.proc_files import (
    IrqLine,
    parse_cpu_list,
    parse_cpu_ticks,
    parse_interrupts,
    parse_perf_csv,
    parse_schedstat,
    parse_softirqs,
    parse_softnet,
    parse_task_stat,
    parse_task_status,
)
from orchestrator.measure.snapshot import SnapshotPlan, parse_snapshot, snapshot_script

PROC = Path(__file__).parent / "data" / "proc"


def _read(name: str) -> str:
    return (PROC / name).read_text(encoding="utf-8")


def test_interrupts_of_a_multi_queue_mlx5_nic() -> None:
    lines = parse_interrupts(_read("interrupts-mlx5-azure"))
    by_irq = {line.irq: line for line in lines}
    assert by_irq["29"].counts == {0: 152455, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0}
    assert by_irq["29"].name == "mlx5_comp1@pci:8b76:00:02.0"
    assert by_irq["14"].counts[7] == 8917
    assert by_irq["RES"].counts[2] == 150579
    assert by_irq["RES"].description == "Rescheduling interrupts"
    # The one function's eight completion queues and its control lines, found by address.
    device = InterfaceDevice(device="8b76:00:02.0", pci="8b76:00:02.0", msi_irqs=frozenset())
    assert interface_lines("eth1", device, lines) == [str(n) for n in (24, 25, 26, *range(28, 36))]
    # Every one of them fired on CPU 0 only, as the mail said.
    mine = [by_irq[irq] for irq in interface_lines("eth1", device, lines)]
    assert sum(line.counts[0] for line in mine) == 19694 + 839229
    assert all(count == 0 for line in mine for cpu, count in line.counts.items() if cpu)


def test_interrupts_of_virtio_net_found_through_its_device() -> None:
    text = _read("interrupts-virtio-vm")
    lines = parse_interrupts(text)
    assert [line.name for line in lines][:3] == ["ACPI:Ged", "ACPI:Ged", "ttyS0"]
    by_irq = {line.irq: line for line in lines}
    assert by_irq["38"].name == "virtio2-input.0" and set(by_irq["38"].counts) == {0, 1}
    # eth0 -> virtio2: its config, input and output lines, not virtio1's or virtio3's.
    output = "@orch:device /sys/devices/pci0000:00/0000:00:03.0/virtio2\n@orch:interrupts\n" + text
    device, parsed = parse_device(output)
    assert device == InterfaceDevice("virtio2", "0000:00:03.0", frozenset())
    assert interface_lines("eth0", device, parsed) == ["37", "38", "39"]
    # With the PCI parent's MSI vectors listed, those alone identify the lines.
    listed = output.replace("@orch:interrupts", "37\n38\n39\n@orch:interrupts")
    device, parsed = parse_device(listed)
    assert device.msi_irqs == {"37", "38", "39"}
    assert interface_lines("eth0", device, parsed) == ["37", "38", "39"]


def test_interface_lines_by_name_for_intel_style_queues() -> None:
    lines = [  # constructed in ixgbe's naming: IF-TxRx-N, and a second port that must not match
        IrqLine("60", {0: 5, 1: 0}, "IR-PCI-MSI 1048577-edge eth0-TxRx-0"),
        IrqLine("61", {0: 0, 1: 7}, "IR-PCI-MSI 1048578-edge eth0-TxRx-1"),
        IrqLine("62", {0: 1, 1: 0}, "IR-PCI-MSI 1048579-edge eth0"),
        IrqLine("63", {0: 9, 1: 9}, "IR-PCI-MSI 1050625-edge eth10-TxRx-0"),
        IrqLine("LOC", {0: 1, 1: 1}, "Local timer interrupts"),
    ]
    device = InterfaceDevice(device="0000:3b:00.0", pci="0000:3b:00.0", msi_irqs=frozenset())
    assert interface_lines("eth0", device, lines) == ["60", "61", "62"]


def test_softirqs_per_cpu() -> None:
    table = parse_softirqs(_read("softirqs-vm"))
    assert set(table) >= {"HI", "TIMER", "NET_TX", "NET_RX", "SCHED", "RCU"}
    assert set(table["NET_RX"]) == {0, 1} and table["NET_RX"][0] > 0


def test_packets_received_per_cpu() -> None:
    captured = _read("softnet_stat-vm")
    first, second = (line.split() for line in captured.splitlines())
    packets = parse_softnet(captured)
    assert packets == {0: int(first[0], 16), 1: int(second[0], 16)}
    assert min(packets.values()) > 1_000_000  # the VM's loopback benchmarks, hex read
    # Kernels before 5.10 print no CPU column: rows are the online CPUs in order.
    old = "\n".join(" ".join(line.split()[:11]) for line in captured.splitlines())
    assert parse_softnet(old) == packets
    assert parse_softnet("") == {}
    with pytest.raises(HostError, match="softnet_stat"):
        parse_softnet("0000zz12 00000000")


def test_cpu_ticks_per_cpu() -> None:
    ticks = parse_cpu_ticks(_read("stat-vm"))
    assert set(ticks) == {0, 1}  # the `cpu` total line is not a CPU
    first = ticks[0]
    assert first.busy == first.user + first.nice + first.system + first.irq + first.softirq
    assert parse_cpu_ticks("cpu0 1 2 3 4\n\n")[0].steal == 0  # old kernels: fewer columns


def test_task_files() -> None:
    stat = parse_task_stat(_read("task-stat-sleep"))
    assert stat.comm == "sleep" and stat.processor in (0, 1)
    odd = parse_task_stat("42 (a) b (c)) S 1 1 1 0 -1 0 0 0 0 0 7 3 " + "0 " * 23 + "5 0 0")
    assert (odd.comm, odd.utime, odd.stime, odd.processor) == ("a) b (c)", 7, 3, 5)
    assert parse_schedstat(_read("schedstat")) > 0
    status = parse_task_status(_read("task-status-sleep"))
    assert status.voluntary_switches >= 0 and status.cpus_allowed == "0-1"
    with pytest.raises(HostError, match="context switch"):
        parse_task_status("Name:\tx\n")
    assert parse_cpu_list("0-2,5,8-9") == [0, 1, 2, 5, 8, 9]


def test_perf_csv_unsupported_is_none_and_not_counted_is_zero() -> None:
    busy = parse_perf_csv(_read("perf-stat-vm.csv"))
    assert busy["cycles"] is None and busy["instructions"] is None
    assert isinstance(busy["raw_syscalls:sys_enter"], float)
    idle = parse_perf_csv(_read("perf-stat-not-counted.csv"))
    assert idle == {"raw_syscalls:sys_enter": 0.0, "cycles": None, "instructions": None}
    with_pmu = parse_perf_csv(
        "12345678,,cycles,1000,100.00,,\n23456789,,instructions,1000,100.00,1.90,insn per cycle\n"
    )
    assert with_pmu == {"cycles": 12345678.0, "instructions": 23456789.0}


def test_a_snapshot_from_its_script_output() -> None:
    plan = SnapshotPlan(pid=7, interface="eth0", irq_numbers=("38", "39"))
    script = snapshot_script(plan)
    assert "/proc/7/task/*" in script and "$1 ~ /^(38|39):$/" in script
    task = _read("task-stat-sleep").replace("(sleep)", "(server)")
    text = "\n".join(
        [
            "@orch:process",
            task.strip(),
            "@orch:task 7",
            task.strip(),
            _read("schedstat").strip(),
            _read("task-status-sleep").strip(),
            "@orch:cpus",
            "5132.48 9870.11",  # /proc/uptime
            _read("stat-vm").strip(),
            "@orch:softirqs",
            _read("softirqs-vm").strip(),
            "@orch:softnet",
            _read("softnet_stat-vm").strip(),
            "@orch:interrupts",
            *[
                line
                for line in _read("interrupts-virtio-vm").splitlines()
                if "CPU0" in line or line.strip().startswith(("38:", "39:"))
            ],
            "@orch:nic",
            "10",
            "20",
            "3000",
            "4000",
        ]
    )
    snap = parse_snapshot(text, monotonic=12.5)
    assert snap.process.comm == "server" and list(snap.tasks) == [7]
    assert snap.uptime == 5132.48 and set(snap.cpus) == {0, 1}
    assert snap.tasks[7].ran_ns == parse_schedstat(_read("schedstat"))
    assert [line.irq for line in snap.irqs] == ["38", "39"]
    assert snap.received == parse_softnet(_read("softnet_stat-vm"))
    assert snap.nic == {"rx_packets": 10, "tx_packets": 20, "rx_bytes": 3000, "tx_bytes": 4000}
    with pytest.raises(HostError, match="no cpus section"):
        parse_snapshot("@orch:process\n" + task, 0.0)
