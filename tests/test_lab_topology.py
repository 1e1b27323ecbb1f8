"""The lab's names and addresses, derived from roles (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.lab.topology import BRIDGE, ROLES, LabFiles, Role, lab_roles


def test_todays_lab_keeps_its_names_and_addresses() -> None:
    assert BRIDGE == "orch-br0"
    today = (
        Role("target", "orch-target", "10.203.0.2", "orch-target0", "orch-target1"),
        Role("load", "orch-load", "10.203.0.3", "orch-load0", "orch-load1"),
    )
    assert today == ROLES == lab_roles(1)


def test_several_load_machines_are_numbered_after_the_target() -> None:
    roles = lab_roles(3)
    assert [(r.namespace, r.address) for r in roles] == [
        ("orch-target", "10.203.0.2"),
        ("orch-load1", "10.203.0.3"),
        ("orch-load2", "10.203.0.4"),
        ("orch-load3", "10.203.0.5"),
    ]
    links = [name for r in roles for name in (r.veth, r.peer)]
    assert len(set(links)) == len(links)
    assert all(len(name) <= 15 for name in links)  # the kernel's limit for link names


def test_lab_sizes_outside_the_subnet_are_refused() -> None:
    with pytest.raises(ValueError):
        lab_roles(0)
    with pytest.raises(ValueError):
        lab_roles(300)


def test_generated_files_cover_every_role() -> None:
    files = LabFiles(Path("/tmp/some-lab"))
    names = {path.name for path in files.generated(lab_roles(2))}
    assert {"sshd_load1_config", "sshd_load2.pid", "ssh_host_target_ed25519_key"} <= names
