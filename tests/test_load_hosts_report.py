"""The report of a split run: each load host's share, requests, CPU and limit, the start
skew and histogram cost, which hosts were at their limit where a row was load-bound, and
load hosts that are one machine on the same CPUs judged together."""

from __future__ import annotations

from typing import Any

from record_helpers import FACTS, make_cell, make_record

from orchestrator.inventory import Inventory
from orchestrator.load.result import LatencyHistogram, LoadResult
from orchestrator.report.split_hosts_section import load_host_lines
from orchestrator.results.aggregate import build_rows
from orchestrator.results.cell_result import CellResult, CoreCpu, ProcessCpu
from orchestrator.results.record import RunFacts, RunRecord
from orchestrator.results.split_hosts import split_rows

INVENTORY = {
    "hosts": {"t": {"address": "10.0.0.1"}, "a": {}, "b": {}},
    "target": {"host": "t", "cpus": [0]},
    "load": {"hosts": [{"host": "a", "cpus": [0, 1]}, {"host": "b", "cpus": [0, 1]}]},
}


def _record(boot_ids: tuple[str, str]) -> RunRecord:
    facts = {
        h: FACTS.model_copy(update={"boot_id": b}) for h, b in zip("ab", boot_ids, strict=True)
    }
    return make_record(plan=["c-epoll/1", "c-epoll/2"]).model_copy(
        update={
            "inventory": Inventory.model_validate(INVENTORY),
            "facts": RunFacts(target=FACTS, load=FACTS, load_hosts=facts),
        }
    )


def _host(name: str, requests: int, cpu: float, started: float) -> LoadResult:
    return LoadResult(
        tool="k6",
        host=name,
        requests=requests,
        failed_requests=0,
        duration_seconds=5.0,
        requests_per_second=requests / 5.0,
        histogram=LatencyHistogram(
            buckets=[(100.0, requests)], method="k6 csv", reduce_seconds=0.2
        ),
        cpu_seconds=cpu,
        started_at=started,
        wall_seconds=5.0,
        cpus=2,
    )


def _cell(repetition: int, cpu_a: float, cpu_b: float) -> CellResult:
    hosts = [_host("a", 30_000, cpu_a, 100.0), _host("b", 20_000, cpu_b, 100.0005)]
    merged = LoadResult(
        tool="k6",
        requests=50_000,
        failed_requests=0,
        duration_seconds=5.0005,
        requests_per_second=50_000 / 5.0005,
        histogram=LatencyHistogram(buckets=[(100.0, 50_000)], method="merged", reduce_seconds=0.25),
        start_skew_seconds=0.0005,
        clock_error_seconds=0.001,
    )
    fields: dict[str, Any] = {
        "load_by_host": hosts,
        "server_cpu": ProcessCpu(user_seconds=1.5, system_seconds=1.0, wall_seconds=5.0),
        "server_cores": CoreCpu(
            cpus=[0], busy_seconds=2.5, softirq_seconds=0.1, idle_seconds=2.5, steal_seconds=0
        ),
    }
    cell = make_cell(f"c-epoll/{repetition}", rps=10_000, requests=50_000, point="ramp20", **fields)
    return cell.model_copy(update={"load": merged})


def test_each_host_its_share_and_the_hosts_at_their_limit() -> None:
    record = _record(("boot-1", "boot-2"))  # two machines
    cells = [_cell(1, 9.5, 6.0), _cell(2, 9.7, 6.4)]
    text = "\n".join(load_host_lines(record, cells, build_rows(cells, None)))
    assert "| c-epoll | ramp to 20 VUs | a | 1/2 | 30,000 | 6,000 | 96% | yes |" in text
    assert "| c-epoll | ramp to 20 VUs | b | 1/2 | 20,000 | 4,000 | 62% | no |" in text
    assert "| c-epoll | ramp to 20 VUs | 0.50 ms, 0.50 ms | ±1.00 ms | 0.250 s, 0.250 s |" in text
    # The server's core was half idle: load-bound, and host a was at its limit.
    assert (
        "- c-epoll at ramp to 20 VUs: load-bound; load hosts at their limit: a (96% CPU)." in text
    )
    assert "one machine" not in text


def test_hosts_on_one_machines_cpus_are_judged_together() -> None:
    record = _record(("boot-1", "boot-1"))  # the lab: namespaces of one machine
    cells = [_cell(1, 5.0, 4.5)]
    (row,) = split_rows(
        cells, machines={"a": "boot-1", "b": "boot-1"}, cpus={"a": [0, 1], "b": [0, 1]}
    )
    assert [h.shares_cpus_with for h in row.hosts] == [("b",), ("a",)]
    assert [h.cpu_share for h in row.hosts] == [0.95, 0.95]  # 9.5 CPU-s over 5 s of 2 CPUs
    text = "\n".join(load_host_lines(record, cells, build_rows(cells, None)))
    assert "- a, b are one machine (one boot id) on the same CPUs" in text
    assert "load hosts at their limit: a (95% CPU), b (95% CPU)." in text


def test_no_section_without_a_split_cell() -> None:
    record = _record(("boot-1", "boot-2"))
    assert load_host_lines(record, [make_cell("c-epoll/1")], []) == []
