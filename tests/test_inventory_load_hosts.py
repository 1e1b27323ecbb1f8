"""Inventories with several load hosts: the list form, its one-line errors, `orch check`
naming every host and its share, and run records of either form read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_helpers import orch
from record_helpers import make_record

from orchestrator.errors import UserError
from orchestrator.inventory import Inventory, load_inventory
from orchestrator.results.record import RunRecord

SEVERAL = """
hosts:
  target1: {address: 10.203.0.2}
  load1: {address: 10.203.0.3}
  load2: {address: 10.203.0.4}
target: {host: target1, cpus: [2], listen: {address: 0.0.0.0, port: 8000}}
load:
  tool: k6
  hosts:
    - {host: load1, cpus: [0-15]}
    - {host: load2, cpus: "0-7", target_address: 10.9.0.2}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_several_load_hosts_are_understood(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, SEVERAL))
    assert inv.several_load_hosts and not inv.is_loopback
    first, second = inv.load_members
    assert (first.host, first.cpus) == ("load1", list(range(16)))  # YAML [0-15]: a range
    assert (second.host, second.cpus) == ("load2", list(range(8)))
    assert inv.dial_address_of(first) == "10.203.0.2"  # listening on 0.0.0.0: the host's
    assert inv.dial_address_of(second) == "10.9.0.2"  # its own
    assert inv.load.host is None and inv.first_load == first


def test_a_load_level_target_address_is_the_default_of_each_host(tmp_path: Path) -> None:
    text = SEVERAL.replace("  tool: k6\n", "  tool: k6\n  target_address: 10.8.0.2\n")
    inv = load_inventory(write(tmp_path, text))
    assert [inv.dial_address_of(m) for m in inv.load_members] == ["10.8.0.2", "10.9.0.2"]


def test_the_target_may_also_be_a_load_host_on_other_cores(tmp_path: Path) -> None:
    text = SEVERAL.replace("{host: load1, cpus: [0-15]}", "{host: target1, cpus: [0, 1]}")
    inv = load_inventory(write(tmp_path, text))
    assert [m.host for m in inv.load_members] == ["target1", "load2"]
    assert not inv.is_loopback


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            ("{host: load1, cpus: [0-15]}", "{host: load1, cpus: [0-15], cpu: 1}"),
            "load.hosts.0.cpu: unknown key 'cpu'",
            id="unknown-key",
        ),
        pytest.param(
            ("{host: load2, cpus", "{host: load1, cpus"),
            "load.hosts.1.host: host 'load1' is listed twice",
            id="listed-twice",
        ),
        pytest.param(
            ("{host: load2, cpus", "{host: load3, cpus"),
            "load.hosts.1.host: host 'load3' is not defined under hosts "
            "(defined: load1, load2, target1)",
            id="undefined-host",
        ),
        pytest.param(
            ("{host: load1, cpus: [0-15]}", "{host: target1, cpus: [1-2]}"),
            "load.hosts.0.cpus: CPU [2] is given to both the server and the load tool on the "
            "same host; give them disjoint cores",
            id="target-cores-shared",
        ),
        pytest.param(
            ("  tool: k6\n", "  tool: k6\n  host: load1\n"),
            "load.host: give either host and cpus (one load host) or a hosts list, not both",
            id="both-forms",
        ),
        pytest.param(
            ("  hosts:\n", "  hosts: []\n  old:\n"),
            "load.old: unknown key 'old'",
            id="empty-list-and-junk",
        ),
        pytest.param(
            ("{host: load1, cpus: [0-15]}", "{host: load1}"),
            "load.hosts.0.cpus: required key is missing",
            id="no-cpus",
        ),
        pytest.param(
            ('{host: load2, cpus: "0-7"', '{host: load2, cpus: "7-0"'),
            "load.hosts.1.cpus: bad CPU range '7-0'",
            id="bad-range",
        ),
    ],
)
def test_bad_load_hosts_are_one_line(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = SEVERAL.replace(*change)
    assert text != SEVERAL
    path = write(tmp_path, text)
    with pytest.raises(UserError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message


def test_an_empty_list_of_load_hosts_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, SEVERAL.split("  hosts:\n")[0] + "  hosts: []\n")
    with pytest.raises(UserError, match=r"load\.hosts: the list of load hosts is empty"):
        load_inventory(path)


def test_orch_check_lists_every_load_host_and_its_share(tmp_path: Path) -> None:
    done = orch("check", "-i", str(write(tmp_path, SEVERAL)))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  mode: 2 load machines and a target" in lines
    sequence = "--execution-segment-sequence 0,2/3,1"
    assert (
        "  load: load1, k6 pinned to CPUs [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, "
        f"15], share 2/3 of every cell (k6 --execution-segment 0:2/3 {sequence}), dials "
        "10.203.0.2:8000"
    ) in lines
    assert (
        "  load: load2, k6 pinned to CPUs [0, 1, 2, 3, 4, 5, 6, 7], share 1/3 of every cell "
        f"(k6 --execution-segment 2/3:1 {sequence}), dials 10.9.0.2:8000"
    ) in lines


def test_orch_check_bad_load_host_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, SEVERAL.replace("{host: load2, cpus", "{host: load1, cpus"))
    done = orch("check", "-i", str(path))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"orch: error: {path}: load.hosts.1.host: host 'load1' is listed twice"
    ]


def test_run_records_of_either_form_read_back(tmp_path: Path) -> None:
    old = make_record().model_dump(mode="json")
    old["format_version"] = 2
    assert old["inventory"]["load"]["host"] == "local"  # the single-host form
    read = RunRecord.model_validate(old)
    assert [m.host for m in read.inventory.load_members] == ["local"]
    several = Inventory.model_validate(
        {
            "hosts": {"t": {"address": "10.0.0.1"}, "a": {}, "b": {}},
            "target": {"host": "t", "cpus": [0]},
            "load": {"hosts": [{"host": "a", "cpus": [0]}, {"host": "b", "cpus": [0, 1]}]},
        }
    )
    record = make_record().model_copy(update={"inventory": several})
    again = RunRecord.model_validate_json(record.model_dump_json())
    assert again.inventory == several
    assert [m.cpus for m in again.inventory.load_members] == [[0], [0, 1]]
