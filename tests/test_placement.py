"""Placing the target's receive work on a captured bare-metal tree: a NIC's interrupt lines
get the CPUs (and irqbalance is stopped), a virtual interface's RPS masks do; saved
before written, put back byte for byte; what cannot be placed is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from system_helpers import INTEL, RecordingServices, copy_tree, snapshot, tree_host

from orchestrator.errors import UserError
from orchestrator.run.placement import (
    PLACEMENT,
    check_receive_work,
    cpu_mask,
    place_receive_work,
    placement_cpus,
)
from orchestrator.system.changes import reset_from_saved, saved_change_sets
from orchestrator.system.session import SystemHost

NIC = "sys/devices/pci0000:00/0000:00:1c.4/0000:03:00.0"


def _intel(tmp_path: Path, services: RecordingServices | None = None) -> tuple[Path, SystemHost]:
    root = copy_tree(INTEL, tmp_path)
    assert (root / NIC / "net" / "eno1" / "device").is_symlink()  # the igb port's device
    host = tree_host(root, {"server": [2], "load": [4]}, "eno1", services=services)
    return root, host


def _veth(root: Path, name: str = "veth0", queues: int = 2) -> None:
    """A virtual interface in the tree: receive queues with RPS masks, no device."""
    for queue in range(queues):
        folder = root / "sys/devices/virtual/net" / name / "queues" / f"rx-{queue}"
        folder.mkdir(parents=True)
        (folder / "rps_cpus").write_text("00\n")
    (root / "sys/class/net" / name).symlink_to(f"../../devices/virtual/net/{name}")


def test_masks_cpus_and_names() -> None:
    assert cpu_mask([0]) == "1" and cpu_mask([1, 3]) == "a" and cpu_mask([]) == "0"
    assert cpu_mask([0, 33]) == "2,00000001"  # the kernel's 32-bit groups
    assert placement_cpus("server", [2], range(8)) == [2]
    assert placement_cpus("other", [2], range(4)) == [0, 1, 3]
    with pytest.raises(UserError, match="no online CPU besides the server's"):
        placement_cpus("other", [0], [0])
    assert check_receive_work("other", "--receive-work") == "other"
    with pytest.raises(UserError) as refused:
        check_receive_work("nowhere", "--receive-work")
    assert str(refused.value) == (
        "--receive-work: unknown placement 'nowhere' (known: server, other, as-is)"
    )


def test_a_nic_s_interrupts_go_to_the_server_and_come_back(tmp_path: Path) -> None:
    services = RecordingServices()
    root, host = _intel(tmp_path, services)
    before = snapshot(root)
    said: list[str] = []
    change_set = place_receive_work(host, "server", "eno1", [2], True, said.append)
    assert change_set is not None and change_set.scope == "run"
    assert [c.describe() for c in change_set.changes] == [
        # 133 is on CPU 2 already: nothing to change or put back there.
        *(
            f"IRQ {irq} of eno1: {old} -> 2"
            for irq, old in ((130, 5), (131, 0), (132, 1), (134, 3))
        ),
        "irqbalance (it moves IRQs): stopped",
    ]
    assert (root / "proc/irq/131/smp_affinity_list").read_text() == "2\n"
    assert services.actions == [("irqbalance", "stop")]
    assert [s.name for s in saved_change_sets(host.access)] == [PLACEMENT]
    assert said == ["receive work of eno1 on CPU 2 (server): set"]
    reset_from_saved(host.access, [PLACEMENT])
    assert services.actions[-1] == ("irqbalance", "start")
    after = snapshot(root)
    assert {k: v for k, v in after.items() if not k.startswith("var")} == before


def test_a_virtual_interface_gets_rps_on_the_other_cpus(tmp_path: Path) -> None:
    root, host = _intel(tmp_path)
    _veth(root)
    before = snapshot(root)
    change_set = place_receive_work(host, "other", "veth0", [2], False, lambda _: None)
    assert change_set is not None
    assert [c.describe() for c in change_set.changes] == [
        "RPS of veth0 rx-0: 00 -> fb",
        "RPS of veth0 rx-1: 00 -> fb",
    ]
    assert (root / "sys/class/net/veth0/queues/rx-1/rps_cpus").read_text() == "fb\n"
    reset_from_saved(host.access, [PLACEMENT])
    assert {k: v for k, v in snapshot(root).items() if not k.startswith("var")} == before


def test_as_is_changes_nothing(tmp_path: Path) -> None:
    root, host = _intel(tmp_path)
    before = snapshot(root)
    assert place_receive_work(host, "as-is", "eno1", [2], True, lambda _: None) is None
    assert snapshot(root) == before


def test_where_it_cannot_be_set_is_one_line_and_nothing_changes(tmp_path: Path) -> None:
    root, host = _intel(tmp_path)
    before = snapshot(root)
    with pytest.raises(UserError) as nothing:
        place_receive_work(host, "server", "dummy0", [2], False, lambda _: None)
    assert str(nothing.value) == (
        "--receive-work: cannot place receive work on target box: interface dummy0 has no "
        "interrupt lines and no RPS queues (/sys/class/net/dummy0/queues/rx-*/rps_cpus)"
    )
    with pytest.raises(UserError, match="no interface found on target box"):
        place_receive_work(host, "server", None, [2], False, lambda _: None)
    (root / "proc/irq/132/smp_affinity_list").chmod(0o444)
    with pytest.raises(UserError) as read_only:
        place_receive_work(host, "server", "eno1", [2], False, lambda _: None)
    assert "IRQ 132 of eno1: /proc/irq/132/smp_affinity_list is read-only" in str(read_only.value)
    assert "\n" not in str(read_only.value)
    assert snapshot(root) == before
