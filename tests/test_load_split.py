"""Splitting a cell's load across load hosts: shares by CPUs, k6 execution segments that
add up to the whole, wrk connections by largest remainders, and points too small to split."""

from __future__ import annotations

from fractions import Fraction

import pytest

from orchestrator.errors import UserError
from orchestrator.inventory import Inventory, LoadHostSpec, parse_inventory
from orchestrator.load.k6 import split_argv
from orchestrator.load.points import LoadPoint
from orchestrator.load.split import (
    check_points,
    describe_shares,
    host_point,
    segment_sequence,
    shares,
    split_count,
)


def _members(*cpus: int) -> list[LoadHostSpec]:
    return [LoadHostSpec(host=f"load{i}", cpus=list(range(n))) for i, n in enumerate(cpus, 1)]


def _inventory(tool: str, *cpus: int) -> Inventory:
    hosts = {f"load{i}": {"address": f"10.0.0.{i + 1}"} for i in range(1, len(cpus) + 1)}
    return parse_inventory(
        {
            "hosts": {"target": {"address": "10.0.0.1"}, **hosts},
            "target": {"host": "target", "cpus": [0]},
            "load": {
                "tool": tool,
                "hosts": [
                    {"host": f"load{i}", "cpus": list(range(n))} for i, n in enumerate(cpus, 1)
                ],
            },
        },
        "test",
    )


def test_equal_hosts_get_equal_segments() -> None:
    parts = shares(_members(16, 16))
    assert [p.segment for p in parts] == ["0:1/2", "1/2:1"]
    assert segment_sequence(parts) == "0,1/2,1"
    assert sum(p.fraction for p in parts) == 1


def test_shares_follow_the_cpu_counts() -> None:
    parts = shares(_members(16, 8, 8))
    assert [p.fraction for p in parts] == [Fraction(1, 2), Fraction(1, 4), Fraction(1, 4)]
    assert [p.segment for p in parts] == ["0:1/2", "1/2:3/4", "3/4:1"]
    assert segment_sequence(parts) == "0,1/2,3/4,1"


@pytest.mark.parametrize(
    ("total", "cpus", "expected"),
    [
        (100, (1, 1), [50, 50]),
        (101, (1, 1), [51, 50]),  # the earlier host takes a tie
        (10, (2, 1), [7, 3]),  # 6.67 and 3.33: the larger remainder gets the one left
        (7, (1, 1, 1), [3, 2, 2]),
        (1000, (3, 5, 7), [200, 333, 467]),
    ],
)
def test_connections_add_up_to_the_point(
    total: int, cpus: tuple[int, ...], expected: list[int]
) -> None:
    counts = split_count(total, shares(_members(*cpus)))
    assert counts == expected
    assert sum(counts) == total


def test_wrk_hosts_hold_their_share_k6_hosts_the_whole_point() -> None:
    parts = shares(_members(1, 1))
    point = LoadPoint(kind="closed", vus=101, pipeline=4)
    assert [host_point(point, i, parts, "wrk").vus for i in range(2)] == [51, 50]
    assert host_point(point, 1, parts, "wrk").pipeline == 4
    assert host_point(point, 1, parts, "k6") == point  # its segment takes the share


def test_a_point_too_small_for_the_smallest_share_is_refused() -> None:
    inv = _inventory("wrk", 3, 1)
    check_points(inv, [LoadPoint(kind="closed", vus=4)])
    with pytest.raises(UserError) as caught:
        check_points(inv, [LoadPoint(kind="closed", vus=3)])
    assert str(caught.value) == (
        "--connections: 3 connections split across 2 load hosts by their CPUs leaves load2 "
        "(share 1/4) without a connection; use at least 4"
    )


def test_one_load_host_needs_no_split() -> None:
    inv = parse_inventory(
        {
            "hosts": {"local": {"connection": "local"}},
            "target": {"host": "local", "cpus": [0]},
            "load": {"host": "local", "cpus": [1]},
        },
        "test",
    )
    check_points(inv, [LoadPoint(kind="closed", vus=1)])
    assert describe_shares(inv) == []


def test_orch_check_says_what_each_host_runs() -> None:
    sequence = "--execution-segment-sequence 0,1/2,1"
    assert describe_shares(_inventory("k6", 2, 2)) == [
        f"share 1/2 of every cell (k6 --execution-segment 0:1/2 {sequence})",
        f"share 1/2 of every cell (k6 --execution-segment 1/2:1 {sequence})",
    ]


def test_k6_split_command_is_paused_segmented_and_samples_durations() -> None:
    argv = ["k6", "run", "--quiet", "--address", "", "--summary-export", "s.json", "simple.js"]
    split = split_argv(argv, "@API@", "0:1/2", "0,1/2,1", "samples.csv")
    assert split == [
        "k6", "run", "--quiet", "--address", "@API@", "--paused", "--summary-export", "s.json",
        "--execution-segment", "0:1/2", "--execution-segment-sequence", "0,1/2,1",
        "--system-tags", "", "--out", "csv=samples.csv", "simple.js",
    ]  # fmt: skip
    warmup = split_argv(argv, "@API@", "1/2:1", "0,1/2,1", None)
    assert "--out" not in warmup and warmup[-1] == "simple.js"
