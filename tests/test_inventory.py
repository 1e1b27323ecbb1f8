"""Inventory validation: the shipped file, and each kind of bad file with its one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_helpers import orch
from server_helpers import REPO

from orchestrator.errors import UserError
from orchestrator.inventory import load_inventory, parse_cpu_list

GOOD_TWO_HOSTS = """
hosts:
  target1: {address: 10.203.0.2, user: root, key_file: ~/.ssh/id_ed25519}
  load1:   {address: 10.203.0.3, user: root}
target:
  host: target1
  listen: {address: 0.0.0.0, port: 8000}
  cpus: "2-3"
  interface: eth0
load:
  host: load1
  tool: k6
  cpus: [0, 1]
workdir: ~/.cache/orch
"""

LOOPBACK = """
hosts:
  local: {connection: local}
target: {host: local, cpus: [0]}
load: {host: local, cpus: [1]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_inventory_is_loopback_with_disjoint_cores() -> None:
    inv = load_inventory(REPO / "hosts.yaml")
    assert inv.is_loopback
    assert inv.target_host.connection == "local"
    assert not set(inv.target.cpus) & set(inv.first_load.cpus)
    assert inv.dial_address == "127.0.0.1"


def test_two_host_inventory_is_understood(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD_TWO_HOSTS))
    assert not inv.is_loopback
    assert inv.target.cpus == [2, 3]
    assert inv.first_load.cpus == [0, 1]
    # The server listens on all addresses, so the load tool dials the target host's address.
    assert inv.dial_address == "10.203.0.2"
    assert inv.target_host.key_file == "~/.ssh/id_ed25519"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            LOOPBACK.replace("cpus: [0]", "cpus: [0], cpu: 1"),
            "target.cpu: unknown key 'cpu'",
            id="unknown-key",
        ),
        pytest.param(
            LOOPBACK.replace("{connection: local}", "{connection: local, prot: 22}"),
            "hosts.local.prot: unknown key 'prot'",
            id="unknown-host-key",
        ),
        pytest.param(
            LOOPBACK.replace("cpus: [1]", "cpus: [1, 1]"),
            "load.cpus: a CPU is listed twice",
            id="duplicate-cpu",
        ),
        pytest.param(
            LOOPBACK.replace("cpus: [1]", 'cpus: "3-1"'),
            "load.cpus: bad CPU range '3-1'",
            id="reversed-range",
        ),
        pytest.param(
            LOOPBACK.replace("cpus: [1]", "cpus: [-1]"),
            "load.cpus: CPU numbers cannot be negative",
            id="negative-cpu",
        ),
        pytest.param(
            LOOPBACK.replace("cpus: [1]", "cpus: []"),
            "load.cpus: the CPU list is empty",
            id="empty-cpus",
        ),
        pytest.param(
            LOOPBACK.replace("cpus: [1]", "cpus: [one]"), "load.cpus: bad CPU 'one'", id="word-cpu"
        ),
        pytest.param(
            LOOPBACK.replace("cpus: [1]", "cpus: [0]"),
            "load.cpus: CPU [0] is given to both the server and the load tool",
            id="shared-cpu-loopback",
        ),
        pytest.param(
            LOOPBACK.replace(
                "{host: local, cpus: [0]}", "{host: local, cpus: [0], listen: {port: 70000}}"
            ),
            "target.listen.port: Input should be less than or equal to 65535",
            id="port-too-high",
        ),
        pytest.param(
            LOOPBACK.replace(
                "{host: local, cpus: [0]}", "{host: local, cpus: [0], listen: {port: 0}}"
            ),
            "target.listen.port: Input should be greater than or equal to 1",
            id="port-zero",
        ),
        pytest.param(
            LOOPBACK.replace("load: {host: local", "load: {host: loader"),
            "load.host: host 'loader' is not defined under hosts (defined: local)",
            id="undefined-host",
        ),
        pytest.param(
            LOOPBACK.replace("{connection: local}", "{connection: local, password: x}"),
            "hosts.local.password: 'password' is not accepted",
            id="password",
        ),
        pytest.param(
            LOOPBACK.replace("{connection: local}", "{connection: local, passphrase: x}"),
            "hosts.local.passphrase: 'passphrase' is not accepted",
            id="passphrase",
        ),
        pytest.param(
            LOOPBACK.replace("load: {host: local, cpus: [1]}\n", ""),
            "load: required key is missing",
            id="missing-section",
        ),
        pytest.param(
            LOOPBACK.replace("{connection: local}", "{connection: telnet}"),
            "hosts.local.connection: Input should be 'local' or 'ssh'",
            id="bad-type",
        ),
        pytest.param(
            LOOPBACK.replace("cpus: [1]}", "cpus: [1], tool: h3load}"),
            "load.tool: Input should be 'k6', 'wrk' or 'h2load'",
            id="unknown-tool",
        ),
        pytest.param("hosts: [\n", "YAML syntax error at line 2", id="yaml-syntax"),
        pytest.param("- just\n- a list\n", "the inventory must be a mapping", id="not-mapping"),
    ],
)
def test_bad_inventory_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_h2load_from_the_inventory(tmp_path: Path) -> None:
    inv = load_inventory(
        write(tmp_path, LOOPBACK.replace("cpus: [1]}", "cpus: [1], tool: h2load, h2load_path: /x}"))
    )
    assert (inv.load.tool, inv.load.h2load_path) == ("h2load", "/x")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="inventory file not found"):
        load_inventory(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("value", "cpus"), [("0-2,5", [0, 1, 2, 5]), (3, [3]), ([2, 0], [0, 2])])
def test_cpu_list_forms(value: object, cpus: list[int]) -> None:
    assert parse_cpu_list(value) == cpus


def test_orch_check_prints_what_it_understood() -> None:
    done = orch("check", "--inventory", "hosts.yaml")
    assert done.returncode == 0, done.stderr
    assert "hosts.yaml: valid" in done.stdout
    assert "mode: loopback" in done.stdout
    assert "pinned to CPUs [0]" in done.stdout


def test_orch_check_bad_file_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, LOOPBACK.replace("cpus: [0]", "cpus: [0], cpu: 1"))
    done = orch("check", "-i", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [f"orch: error: {path}: target.cpu: unknown key 'cpu'"], done.stderr
    assert "Traceback" not in done.stderr
