"""Parsing a real k6 --summary-export file (from a c-epoll smoke run on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import HostError
from orchestrator.load.k6 import k6_command, k6_environment, parse_k6_summary
from orchestrator.load.points import PROFILES, LoadPoint, resolve_profile

DATA = Path(__file__).parent / "data" / "k6-summary.json"
RAMP = LoadPoint(kind="ramp", vus=20)


def test_real_summary_is_parsed() -> None:
    result = parse_k6_summary(DATA.read_text(encoding="utf-8"), duration_seconds=4.0)
    assert result.tool == "k6"
    assert result.requests == 68968
    assert result.failed_requests == 0
    assert result.requests_per_second == pytest.approx(17230.83, rel=1e-4)
    assert result.latency.p50 == pytest.approx(0.8042, rel=1e-3)
    assert result.latency.p99 == pytest.approx(5.6469, rel=1e-3)
    assert result.latency.p999 == pytest.approx(9.2909, rel=1e-3)


def test_failed_requests_come_from_rate_passes() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    data["metrics"]["http_req_failed"] = {"passes": 12, "fails": 100, "value": 0.107}
    assert parse_k6_summary(json.dumps(data), 4.0).failed_requests == 12


def test_not_a_summary_is_a_clear_error() -> None:
    with pytest.raises(HostError, match="not a k6 summary"):
        parse_k6_summary('{"metrics": {}}', 4.0, source="c-epoll k6 summary")


def test_command_and_environment() -> None:
    argv = k6_command("/usr/bin/k6", "/w/k6/simple.js", "/w/s.json")
    assert argv[:2] == ["/usr/bin/k6", "run"]
    assert argv[argv.index("--summary-export") :][:2] == ["--summary-export", "/w/s.json"]
    env = k6_environment("http://10.0.0.2:8000/", PROFILES["smoke"], RAMP)
    assert env["TARGET_URL"] == "http://10.0.0.2:8000/"
    assert json.loads(env["ORCH_STAGES"]) == PROFILES["smoke"].k6_stages()
    assert not any(key.startswith("K6_") for key in env)  # k6 would read those itself


def test_duration_is_k6s_own_run_time() -> None:
    result = parse_k6_summary(DATA.read_text(encoding="utf-8"), duration_seconds=4.0)
    # count / rate = 68968 / 17230.83 s: the run took a little longer than the profile's 4 s
    assert result.duration_seconds == pytest.approx(68968 / 17230.83151347645)
    empty = json.loads(DATA.read_text(encoding="utf-8"))
    empty["metrics"]["http_reqs"] = {"count": 0, "rate": 0}
    assert parse_k6_summary(json.dumps(empty), 4.0).duration_seconds == 4.0


def test_dropped_iterations_of_an_open_model_run() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    data["metrics"]["dropped_iterations"] = {"count": 321, "rate": 80.25}
    assert parse_k6_summary(json.dumps(data), 4.0).dropped_iterations == 321


def test_open_model_environment() -> None:
    rate = LoadPoint(kind="open", vus=20, rate=2000)
    env = k6_environment("http://h/", resolve_profile("smoke", duration="90s", rate=2000), rate)
    assert env["ORCH_RATE"] == "2000"
    assert env["ORCH_DURATION"] == "90s"
    assert env["ORCH_MAX_VUS"] == "20"
    assert "ORCH_RATE" not in k6_environment("http://h/", PROFILES["smoke"], RAMP)


def test_closed_point_holds_constant_vus() -> None:
    env = k6_environment("http://h/", PROFILES["smoke"], LoadPoint(kind="closed", vus=100))
    assert (env["ORCH_VUS"], env["ORCH_DURATION"]) == ("100", "4s")
    assert "ORCH_RATE" not in env


def test_warmup_pass_holds_the_peak() -> None:
    quick = PROFILES["quick"]  # 18 s: a tenth, 1.8 s, rounds to 2 s
    assert quick.warmup_seconds == 2.0
    assert PROFILES["smoke"].warmup_seconds == 1.0  # never below 1 s
    assert PROFILES["seed"].warmup_seconds == 5.0  # never above 5 s
    warm = quick.warmup_profile()
    assert warm.duration == pytest.approx(2.0)
    assert {stage.target for stage in warm.stages} == {500}
    assert resolve_profile("smoke", warmup="0").warmup_seconds == 0.0
    assert resolve_profile("smoke", warmup="3s").warmup_seconds == 3.0
    open_warm = resolve_profile("smoke", rate=100).warmup_profile()
    rate = LoadPoint(kind="open", vus=20, rate=100)
    assert k6_environment("http://h/", open_warm, rate)["ORCH_RATE"] == "100"
    assert open_warm.duration == pytest.approx(1.0)
