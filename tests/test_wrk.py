"""wrk: parsing real output (captured from runs against servers/bin/c-epoll), the command
line for a profile, and which tool/option combinations are accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import HostError, UserError
from orchestrator.load.choice import check_combination
from orchestrator.load.k6 import K6
from orchestrator.load.points import PROFILES, LoadPoint, resolve_profile
from orchestrator.load.wrk import Wrk, parse_wrk_output, threads_for, wrk_command, wrk_seconds

DATA = Path(__file__).parent / "data"
# `wrk --threads 1 --connections 20 --duration 2s --script wrk/orch.lua URL`
PLAIN = DATA / "wrk-c-epoll.txt"
# the same with `-- 16`: 16 requests pipelined per connection
PIPELINED = DATA / "wrk-c-epoll-pipelined.txt"


def test_real_output_is_parsed() -> None:
    result = parse_wrk_output(PLAIN.read_text(encoding="utf-8"))
    assert result.tool == "wrk"
    assert result.requests == 86446
    assert result.failed_requests == 0
    assert result.duration_seconds == pytest.approx(2.006512)
    # wrk's own "Requests/sec: 43082.72" line is requests over the same duration
    assert result.requests_per_second == pytest.approx(43082.72, rel=1e-6)
    assert result.latency.p50 == pytest.approx(0.204)
    assert result.latency.p99 == pytest.approx(4.934)
    assert result.latency.p999 == pytest.approx(6.654)
    assert result.latency.p9999 == pytest.approx(7.893)
    assert result.latency.mean == pytest.approx(0.64207, rel=1e-4)
    assert result.latency.max == pytest.approx(8.046)
    assert result.dropped_iterations == 0


def test_pipelined_output_counts_every_response_and_drops_latency() -> None:
    result = parse_wrk_output(PIPELINED.read_text(encoding="utf-8"), pipeline=16)
    assert result.tool == "wrk-pipelined-16"
    assert result.requests == 1133680
    assert result.requests_per_second == pytest.approx(564783.06, rel=1e-6)
    assert not result.latency.measured  # per batch and distorted by wrk's correction


def test_errors_are_failed_requests() -> None:
    text = PLAIN.read_text(encoding="utf-8").replace(
        '"status": 0, "timeout": 0', '"status": 7, "timeout": 3'
    )
    assert parse_wrk_output(text).failed_requests == 10


def test_output_without_the_hook_is_a_clear_error() -> None:
    text = "\n".join(
        line
        for line in PLAIN.read_text(encoding="utf-8").splitlines()
        if not line.startswith("ORCH_WRK_JSON")
    )
    with pytest.raises(HostError, match="c-epoll wrk: no ORCH_WRK_JSON line"):
        parse_wrk_output(text, source="c-epoll wrk")
    with pytest.raises(HostError, match="unreadable wrk summary"):
        parse_wrk_output("ORCH_WRK_JSON {broken")


def test_command_maps_the_profile() -> None:
    smoke = PROFILES["smoke"]  # 4 s, 20 VUs at the peak
    c20 = LoadPoint(kind="closed", vus=20)
    argv = wrk_command("/usr/bin/wrk", "/w/wrk/orch.lua", "http://127.0.0.1:18000/", smoke, c20, 2)
    assert argv == [
        "/usr/bin/wrk",
        "--threads",
        "2",
        "--connections",
        "20",
        "--duration",
        "4s",
        "--script",
        "/w/wrk/orch.lua",
        "http://127.0.0.1:18000/",
    ]
    piped_point = LoadPoint(kind="closed", vus=20, pipeline=16)
    piped = wrk_command("wrk", "s.lua", "http://h/", smoke, piped_point, 1)
    assert piped[-2:] == ["--", "16"]


def test_durations_round_up_and_connections_cover_threads() -> None:
    assert wrk_seconds(resolve_profile("smoke", duration="2500ms")) == 3
    assert wrk_seconds(resolve_profile("quick")) == 18
    one = LoadPoint(kind="closed", vus=1)
    argv = wrk_command("wrk", "s.lua", "http://h/", PROFILES["smoke"], one, 4)
    assert argv[1:5] == ["--threads", "1", "--connections", "1"]  # never more threads
    assert threads_for([1, 2, 3]) == 3
    assert threads_for([1, 2, 3], connections=2) == 2


def test_a_fractional_duration_is_cut_short_by_sigint() -> None:
    """wrk takes whole seconds: a quarter-second warm-up runs `-d 1s` under coreutils
    timeout, which interrupts it at 0.25 s (wrk then reports what it measured, exit 0)."""
    c100 = LoadPoint(kind="closed", vus=100)
    warmup = PROFILES["sweep-short"].warmup_profile()
    argv = wrk_command("wrk", "s.lua", "http://h/", warmup, c100, 1)
    assert argv[:4] == ["timeout", "--preserve-status", "--signal=INT", "0.25s"]
    assert argv[4:] == [
        "wrk",
        "--threads",
        "1",
        "--connections",
        "100",
        "--duration",
        "1s",
        "--script",
        "s.lua",
        "http://h/",
    ]
    whole = wrk_command("wrk", "s.lua", "http://h/", PROFILES["sweep-short"], c100, 1)
    assert whole[0] == "wrk" and "1s" in whole
    assert "for 0.25 s" in Wrk("wrk", "s.lua").model(warmup, c100)
    assert "for 1 s" in Wrk("wrk", "s.lua").model(PROFILES["sweep-short"], c100)


def test_open_model_needs_k6() -> None:
    rate = LoadPoint(kind="open", vus=20, rate=100)
    with pytest.raises(UserError, match="--rate: wrk has no open model"):
        wrk_command("wrk", "s.lua", "http://h/", resolve_profile("smoke", rate=100), rate, 1)
    with pytest.raises(UserError, match="--rate"):
        check_combination("wrk", None, 100)


def test_tool_and_pipeline_combinations() -> None:
    assert check_combination("k6", None, None) == 1
    assert check_combination("wrk", None, None) == 1
    assert check_combination("wrk", 8, None) == 8
    assert check_combination("wrk-pipelined", None, None) == 16
    with pytest.raises(UserError, match="k6 does not pipeline"):
        check_combination("k6", 16, None)
    with pytest.raises(UserError, match="unknown tool 'ab'"):
        check_combination("ab", None, None)


def test_load_tool_dispatch() -> None:
    smoke = PROFILES["smoke"]
    piped = LoadPoint(kind="closed", vus=20, pipeline=16)
    wrk = Wrk("/usr/bin/wrk", "/w/wrk/orch.lua", threads=1, name="wrk-pipelined", pipeline=16)
    command = wrk.command("http://h:1/", smoke, piped, "/unused")
    assert command.summary_path is None and command.argv[-1] == "16"
    assert wrk.label == "wrk-pipelined-16"
    assert "16 requests pipelined" in wrk.model(smoke, piped)
    parsed = wrk.parse(PIPELINED.read_text(encoding="utf-8"), None, smoke, piped, "x")
    assert parsed.requests == 1133680
    k6 = K6("/k6", "/w/k6/simple.js")
    ramp = LoadPoint(kind="ramp", vus=20)
    assert k6.command("http://h:1/", smoke, ramp, "/w").summary_path == "/w/k6-summary.json"
    assert k6.model(smoke, ramp).startswith("closed loop: k6")
    rate = LoadPoint(kind="open", vus=20, rate=300)
    assert k6.model(smoke, rate).startswith("open model: k6")


# `wrk --threads 1 --connections 50 --duration 2s --script wrk/orch.lua URL`, with the
# hook printing wrk's whole latency histogram
HISTOGRAM = DATA / "wrk-c-epoll-histogram.txt"


def test_percentiles_come_from_wrks_whole_histogram() -> None:
    text = HISTOGRAM.read_text(encoding="utf-8")
    result = parse_wrk_output(text)
    histogram = result.histogram
    assert histogram is not None and histogram.method == "wrk ffi"
    assert len(histogram.buckets) == 3870 and result.requests == 225812
    # wrk's coordinated-omission correction adds samples beyond the requests it counted
    assert histogram.total == 234514
    line = next(x for x in text.splitlines() if x.startswith("ORCH_WRK_JSON "))
    own = json.loads(line.removeprefix("ORCH_WRK_JSON "))["latency_us"]["percentiles"]
    assert result.latency.p50 == own["50"] / 1000 and result.latency.p99 == own["99"] / 1000
    assert result.latency.p999 == own["99.9"] / 1000
    assert result.latency.p9999 == own["99.99"] / 1000
    piped = parse_wrk_output(text, pipeline=16)
    assert piped.histogram is None and not piped.latency.measured
