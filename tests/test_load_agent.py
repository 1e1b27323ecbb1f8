"""orch's load agent (load/agent.py), as the program a load host runs: the exact
reduction of k6's CSV samples, its speed, one whole pass with a stand-in tool, and its
`after` step running h2load's log reducer (load/h2load_log.py) there."""

from __future__ import annotations

import ast
import csv
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

from orchestrator.load import agent, h2load_log
from orchestrator.load.agent import duration_to_us, reduce_k6_csv
from orchestrator.load.h2load import parse_reduced

HEADER = "metric_name,timestamp,metric_value,extra_tags,metadata\n"


def _k6_csv(path: Path, durations_ms: list[str]) -> None:
    """A CSV as k6 writes it with no system tags: a dozen rows per request."""
    with path.open("w", encoding="ascii") as file:
        file.write(HEADER)
        for value in durations_ms:
            file.write("http_reqs,1795843546,1.000000,,\n")
            file.write(f"http_req_duration,1795843546,{value},,\n")
            file.write("http_req_blocked,1795843546,0.003000,,\n")
            file.write("http_req_waiting,1795843546,0.800000,,\n")
            file.write("iteration_duration,1795843546,0.900000,,\n")
        file.write("vus,1795843547,20.000000,,\n")


@pytest.mark.parametrize(
    ("text", "micros"),
    [(b"0.877597", 878), (b"0.877499", 877), (b"0.000500", 1), (b"12.000000", 12000), (b"3", 3000)],
)
def test_milliseconds_to_whole_microseconds(text: bytes, micros: int) -> None:
    assert duration_to_us(text) == micros


def test_reduction_counts_every_duration_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = [f"{(i * 7919) % 5000 / 1000 + 0.01:.6f}" for i in range(3000)]
    path = tmp_path / "samples.csv"
    _k6_csv(path, values)
    monkeypatch.setattr(agent, "CHUNK_BYTES", 1000)  # hundreds of chunks
    expected: dict[int, int] = {}
    with path.open(encoding="ascii") as file:
        for row in csv.DictReader(file):
            if row["metric_name"] == "http_req_duration":
                micros = duration_to_us(row["metric_value"].encode())
                expected[micros] = expected.get(micros, 0) + 1
    assert reduce_k6_csv(str(path)) == expected
    assert sum(expected.values()) == 3000
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert reduce_k6_csv(str(empty)) == {}


def test_reduction_of_a_cell_at_100k_requests_a_second(tmp_path: Path) -> None:
    """A 5 s cell at 100k req/s: half a million durations among six million rows, each
    counted. (What it costs is a figure each split run reports per cell, not a test.)"""
    path = tmp_path / "samples.csv"
    block = "".join(
        f"http_reqs,1795843546,1.000000,,\nhttp_req_duration,1795843546,{i % 3000 / 1000:.6f},,\n"
        + "http_req_blocked,1795843546,0.003000,,\n" * 10
        for i in range(1000)
    )
    with path.open("w", encoding="ascii") as file:
        file.write(HEADER)
        for _ in range(500):
            file.write(block)
    histogram = reduce_k6_csv(str(path))
    assert sum(histogram.values()) == 500_000
    assert len(histogram) == 1000 and set(histogram.values()) == {500}  # 0 to 999 µs


@pytest.mark.parametrize("program", [agent, h2load_log], ids=["agent", "h2load_log"])
def test_the_programs_import_only_the_standard_library(program: ModuleType) -> None:
    assert program.__file__ is not None
    tree = ast.parse(Path(program.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def _spec(tmp_path: Path, argv: list[str], after: list[str] | None = None) -> Path:
    spec = agent.AgentSpec(
        argv=argv,
        env={"ORCH_TEST": "yes"},
        output=str(tmp_path / "output.txt"),
        ready=str(tmp_path / "ready.json"),
        go=str(tmp_path / "go"),
        result=str(tmp_path / "pass.json"),
        after=after,
    )
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    return path


def _record(tmp_path: Path) -> agent.PassRecord:
    return agent.PassRecord.from_json((tmp_path / "pass.json").read_text())


def _go_when_ready(tmp_path: Path, delay: float) -> float:
    deadline = time.monotonic() + 10
    while not (tmp_path / "ready.json").exists():
        assert time.monotonic() < deadline, "the agent never got ready"
        time.sleep(0.01)
    start = time.time() + delay
    (tmp_path / "go").write_text(f"{start:.6f}\n")
    return start


def test_a_pass_starts_at_the_go_time_and_reports_the_tool(tmp_path: Path) -> None:
    busy = "import os, time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass\n"
    tool = [sys.executable, "-c", busy + "print(os.environ['ORCH_TEST'])"]
    spec = _spec(tmp_path, tool)
    proc = subprocess.Popen([sys.executable, agent.__file__, str(spec)])
    start = _go_when_ready(tmp_path, 0.3)
    assert proc.wait(timeout=30) == 0
    result = _record(tmp_path)
    assert result.exit_status == 0 and result.stopped_by is None
    assert abs(result.started_at - start) < 0.05
    assert result.cpu_seconds >= 0.2  # the tool's own, from wait4
    assert (tmp_path / "output.txt").read_text() == "yes\n"


def test_sigterm_reaches_the_tool_and_is_recorded(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["sleep", "30"])
    proc = subprocess.Popen([sys.executable, agent.__file__, str(spec)])
    _go_when_ready(tmp_path, 0.0)
    threading.Event().wait(0.5)
    proc.terminate()
    assert proc.wait(timeout=10) == 2  # the tool did not end well
    result = _record(tmp_path)
    assert result.exit_status == -15 and result.stopped_by == "SIGTERM"


def test_a_tool_that_cannot_start_is_an_error_in_the_result(tmp_path: Path) -> None:
    spec = _spec(tmp_path, [str(tmp_path / "no-such-tool")])
    proc = subprocess.Popen([sys.executable, agent.__file__, str(spec)], stderr=subprocess.PIPE)
    _go_when_ready(tmp_path, 0.0)
    assert proc.wait(timeout=10) == 1
    error = _record(tmp_path).error or ""
    assert error.startswith("cannot start ") and "No such file" in error


def test_a_failing_tool_makes_the_agent_exit_2(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["sh", "-c", "echo broken; exit 3"])
    proc = subprocess.Popen([sys.executable, agent.__file__, str(spec)])
    _go_when_ready(tmp_path, 0.0)
    assert proc.wait(timeout=10) == 2
    result = _record(tmp_path)
    assert result.exit_status == 3 and result.histogram is None


def test_the_after_step_reduces_h2load_s_log_where_it_was_written(tmp_path: Path) -> None:
    """The tool (here a stand-in copying a real h2load log) writes its log; the agent then
    runs orch's reducer, which leaves the histogram and deletes the log."""
    log, out = tmp_path / "h2load-requests.tsv", tmp_path / "h2load-histogram.json"
    real = Path(__file__).parent / "data" / "h2load" / "status-500.tsv"
    tool = [sys.executable, "-c", f"import shutil; shutil.copy({str(real)!r}, {str(log)!r})"]
    reduce = [sys.executable, h2load_log.__file__, str(log), str(out)]
    proc = subprocess.Popen([sys.executable, agent.__file__, str(_spec(tmp_path, tool, reduce))])
    _go_when_ready(tmp_path, 0.0)
    assert proc.wait(timeout=30) == 0
    reduced = parse_reduced(out.read_text(), str(out))
    assert reduced.histogram.total == 200 and not log.exists()
    assert _record(tmp_path).error is None


def test_an_after_step_that_fails_fails_the_pass(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-log.tsv")
    reduce = [sys.executable, h2load_log.__file__, missing, str(tmp_path / "out.json")]
    spec = _spec(tmp_path, ["true"], reduce)
    proc = subprocess.Popen([sys.executable, agent.__file__, str(spec)], stderr=subprocess.PIPE)
    _go_when_ready(tmp_path, 0.0)
    assert proc.wait(timeout=30) == 1
    error = _record(tmp_path).error or ""
    assert error.startswith(f"{h2load_log.__file__} exited with status 1: orch h2load log: ")
    assert "cannot read h2load's log" in error
