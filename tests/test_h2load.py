"""h2load: its command line per load point and per load host's share, its real output and
per-request log parsed (captured by tests/data/h2load/capture.py from real runs against
servers/bin/c-epoll and against servers that fail on purpose), the log's reduction, and
the options it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import CommandResult
from orchestrator.hosts.local import LocalHost
from orchestrator.load import h2load_log
from orchestrator.load.choice import check_combination, check_h2load_requests, sweep_points
from orchestrator.load.h2load import (
    H2load,
    connections_for,
    find_h2load,
    h2load_command,
    parse_h2load,
    rate_per_connection,
)
from orchestrator.load.merge import merge_results
from orchestrator.load.points import LoadPoint, resolve_profile
from orchestrator.load.split import Share, host_point, split_whole
from orchestrator.load.tool import find_program

DATA = Path(__file__).parent / "data" / "h2load"
ONE_SECOND = resolve_profile("sweep-short")
QUARTER = resolve_profile("sweep-short", duration="250ms")
URL = "http://127.0.0.1:8000/"


def _output(name: str) -> str:
    return (DATA / f"{name}.txt").read_text(encoding="utf-8")


def _reduced(name: str) -> str:
    """The JSON orch's reducer writes for a captured log (the log left in place)."""
    return json.dumps(h2load_log.reduction(str(DATA / f"{name}.tsv")))


def _log_rows(name: str) -> list[tuple[int, int, int]]:
    rows = []
    for line in (DATA / f"{name}.tsv").read_text(encoding="ascii").splitlines():
        start, status, micros = line.split("\t")
        rows.append((int(start), int(status), int(micros)))
    return rows


# The command line


def test_an_open_point_opens_its_connections_a_group_per_millisecond() -> None:
    point = LoadPoint(kind="open", vus=connections_for(20_000), rate=20_000)
    assert point.vus == 200
    argv = h2load_command("h2load", URL, ONE_SECOND, point, 1, "/w/log.tsv")
    assert argv == [
        "h2load", "--h1", "--clients", "200", "--threads", "1",
        "--requests", "20000", "--rps", "100",
        "--rate", "20", "--rate-period", "1ms",  # 10 groups over one 10 ms tick
        "--log-file", "/w/log.tsv", URL,
    ]  # fmt: skip


def test_slower_connections_are_spread_over_their_longer_tick() -> None:
    # 50 req/s each: a 20 ms tick, so 20 groups of 2 (and never fewer than the threads).
    point = LoadPoint(kind="open", vus=40, rate=2000)
    argv = h2load_command("h2load", URL, ONE_SECOND, point, 2, None)
    assert argv[argv.index("--rps") + 1] == "50"
    assert argv[argv.index("--rate") + 1] == "2"
    assert argv[argv.index("--threads") + 1] == "2"
    assert "--log-file" not in argv
    odd = LoadPoint(kind="open", vus=3, rate=250)  # 83.3 req/s each, as exactly as text goes
    rps = float(h2load_command("h2load", URL, ONE_SECOND, odd, 1, None)[-6])
    assert rps * 3 == pytest.approx(250, rel=1e-11)


def test_a_closed_point_holds_its_connections_for_the_duration() -> None:
    point = LoadPoint(kind="closed", vus=8)
    argv = h2load_command("h2load", URL, QUARTER, point, 4, None)
    assert argv == [
        "h2load", "--h1", "--clients", "8", "--threads", "4", "--duration", "250ms", URL,
    ]  # fmt: skip
    one = h2load_command("h2load", URL, ONE_SECOND, LoadPoint(kind="closed", vus=1), 4, None)
    assert one[one.index("--threads") + 1] == "1"  # never more threads than connections


def test_the_measured_pass_logs_and_reduces_the_warm_up_does_not() -> None:
    tool = H2load("/usr/bin/h2load", "/w/bin/orch-h2load-log.py", python="/usr/bin/python3")
    point = LoadPoint(kind="open", vus=20, rate=2000)
    measured = tool.command(URL, ONE_SECOND, point, "/w/run/cell")
    assert "--log-file" in measured.argv and "/w/run/cell/h2load-requests.tsv" in measured.argv
    assert measured.summary_path == "/w/run/cell/h2load-histogram.json"
    assert measured.after == [
        "/usr/bin/python3",
        "/w/bin/orch-h2load-log.py",
        "/w/run/cell/h2load-requests.tsv",
        "/w/run/cell/h2load-histogram.json",
    ]
    kept = H2load("h2load", "r.py", keep_log=True).command(URL, ONE_SECOND, point, "/d")
    assert kept.after is not None and kept.after[-1] == "--keep"
    warm = tool.command(URL, ONE_SECOND.warmup_profile(), point, "/w/run/cell", "warmup-")
    assert "--log-file" not in warm.argv and warm.after is None and warm.summary_path is None
    assert warm.argv[warm.argv.index("--requests") + 1] == "500"  # 0.25 s at 2,000 req/s
    assert tool.model(ONE_SECOND, point) == (
        "open model: h2load --rps, 2,000 req/s on 20 connections on 1 thread(s) for 1 s, "
        "100 req/s per connection, one request at a time per connection (HTTP/1.1)"
    )


def test_each_load_host_gets_its_connections_and_the_rate_by_them() -> None:
    # Hosts of 1 and 2 CPUs: a third and two thirds of the connections, the rate by them.
    from fractions import Fraction

    parts = [
        Share("load1", 1, Fraction(0), Fraction(1, 3)),
        Share("load2", 2, Fraction(1, 3), Fraction(1)),
    ]
    for rate in (1000, 1099, 20_000, 59_999, 100_000):
        point = LoadPoint(kind="open", vus=connections_for(rate), rate=rate)
        own = [host_point(point, i, parts, "h2load") for i in range(2)]
        assert sum(p.vus for p in own) == point.vus
        assert sum(p.rate or 0 for p in own) == rate  # exactly the rate, no request lost
        assert all(rate_per_connection(p) <= 100 for p in own)
        for p in own:
            argv = h2load_command("h2load", URL, ONE_SECOND, p, 1, None)
            assert argv[argv.index("--clients") + 1] == str(p.vus)
    point = LoadPoint(kind="open", vus=200, rate=20_000)
    own = [host_point(point, i, parts, "h2load") for i in range(2)]
    assert [(p.vus, p.rate) for p in own] == [(67, 6700), (133, 13300)]
    closed = LoadPoint(kind="closed", vus=10)
    assert [host_point(closed, i, parts, "h2load").vus for i in range(2)] == [3, 7]
    assert split_whole(7, [1, 1]) == [4, 3]  # the earlier on a tie


# Parsing real output


def test_a_held_rate_with_its_log() -> None:
    point = LoadPoint(kind="open", vus=20, rate=2000)
    result = parse_h2load(_output("rate-c-epoll"), _reduced("rate-c-epoll"), ONE_SECOND, point, "s")
    rows = _log_rows("rate-c-epoll")
    assert result.tool == "h2load"
    assert result.requests == 2000 == len(rows)
    assert (result.failed_requests, result.errored_requests, result.timed_out_requests) == (0, 0, 0)
    assert result.offered_rate == 2000
    assert result.requests_per_second == 2000  # the starts spanned less than the second
    assert result.histogram is not None and result.histogram.total == 2000
    latencies = sorted(micros for _, _, micros in rows)
    assert result.latency.p50 == latencies[999] / 1000  # nearest rank of the whole log
    assert result.latency.p99 == latencies[1979] / 1000
    assert result.latency.max == latencies[-1] / 1000
    assert result.latency.mean == pytest.approx(sum(latencies) / 2000 / 1000)
    assert result.late_requests == sum(1 for m in latencies if m > 10_000)
    assert result.started_at == min(start for start, _, _ in rows) / 1e6


def test_two_threads_interleave_their_rows() -> None:
    point = LoadPoint(kind="open", vus=40, rate=2000)
    summary = _reduced("rate-2t-c-epoll")
    result = parse_h2load(_output("rate-2t-c-epoll"), summary, ONE_SECOND, point, "s")
    assert result.requests == 2000 and result.histogram is not None
    assert result.histogram.total == 2000
    assert json.loads(summary)["first_start_us"] == min(
        s for s, _, _ in _log_rows("rate-2t-c-epoll")
    )


def test_a_closed_loop_counts_latency_but_no_lateness() -> None:
    point = LoadPoint(kind="closed", vus=8)
    result = parse_h2load(
        _output("closed-c-epoll"), _reduced("closed-c-epoll"), QUARTER, point, "s"
    )
    assert result.requests == 7099 and result.duration_seconds == 0.25
    assert result.requests_per_second == 7099 / 0.25
    assert result.late_requests is None and result.offered_rate is None
    assert result.histogram is not None and result.histogram.total == 7099


def test_without_its_log_the_summary_gives_what_it_can() -> None:
    point = LoadPoint(kind="open", vus=20, rate=2000)
    result = parse_h2load(_output("rate-c-epoll"), None, ONE_SECOND, point, "s")
    assert result.histogram is None and result.late_requests is None
    assert result.requests == 2000 and result.duration_seconds == 1.0
    # "time for request: min max mean": h2load's own figures
    assert result.latency.min is not None and result.latency.mean is not None
    assert result.latency.p50 is None


def test_answers_other_than_2xx_are_failed_and_still_timed() -> None:
    point = LoadPoint(kind="open", vus=4, rate=200)
    result = parse_h2load(_output("status-500"), _reduced("status-500"), ONE_SECOND, point, "s")
    assert (result.requests, result.failed_requests, result.errored_requests) == (200, 200, 0)
    assert result.histogram is not None and result.histogram.total == 200


def test_connections_the_server_closed_are_errored_and_short() -> None:
    point = LoadPoint(kind="open", vus=4, rate=200)
    result = parse_h2load(
        _output("closed-by-server"), _reduced("closed-by-server"), ONE_SECOND, point, "s"
    )
    # 4 first answers, then every connection closed: h2load counts the rest as errored.
    assert (result.requests, result.failed_requests, result.errored_requests) == (4, 196, 196)
    assert result.requests_per_second == 4  # over the whole second, not the 4 starts' span


def test_answers_that_are_not_http_are_errored() -> None:
    point = LoadPoint(kind="open", vus=4, rate=200)
    result = parse_h2load(_output("not-http"), None, ONE_SECOND, point, "s")
    assert (result.requests, result.failed_requests, result.errored_requests) == (0, 200, 200)


def test_timed_out_requests_are_counted() -> None:
    point = LoadPoint(kind="open", vus=4, rate=200)
    result = parse_h2load(_output("timeout"), None, ONE_SECOND, point, "s")
    assert (result.timed_out_requests, result.errored_requests, result.failed_requests) == (
        4,
        200,
        200,
    )


def test_a_pass_that_could_not_connect_fails() -> None:
    point = LoadPoint(kind="open", vus=4, rate=200)
    with pytest.raises(HostError, match=r"c-epoll h2load: h2load started no request"):
        parse_h2load(_output("refused"), None, ONE_SECOND, point, "c-epoll h2load")


def test_an_aborted_h2load_failed_and_has_no_summary() -> None:
    status = int((DATA / "aborted.status").read_text())
    tool = H2load("h2load", "r.py")
    ran = CommandResult(("h2load",), status, _output("aborted"), "", 0.3)
    assert not tool.succeeded(ran)
    with pytest.raises(HostError, match="no 'requests:' line"):
        parse_h2load(_output("aborted"), None, QUARTER, LoadPoint(kind="closed", vus=4), "s")


def test_a_log_that_disagrees_with_the_summary_is_an_error() -> None:
    point = LoadPoint(kind="open", vus=20, rate=2000)
    other = _reduced("status-500")  # 200 rows, where the summary says 2,000 done
    with pytest.raises(HostError, match="log holds 200 requests but its summary counts 2,000"):
        parse_h2load(_output("rate-c-epoll"), other, ONE_SECOND, point, "s")
    with pytest.raises(HostError, match="unreadable reduced h2load log"):
        parse_h2load(_output("rate-c-epoll"), "{}", ONE_SECOND, point, "s")


# The log's reduction (the program each load host runs)


def test_reduction_counts_every_row_and_failed_streams_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(1_796_602_569_000_000 + i * 37, 200, (i * 7919) % 5000 + 10) for i in range(3000)]
    rows[5] = (rows[5][0], -1, 123)  # h2load: -1 for a failed stream
    log = tmp_path / "requests.tsv"
    log.write_text("".join(f"{s}\t{c}\t{m}\n" for s, c, m in rows), encoding="ascii")
    monkeypatch.setattr(h2load_log, "CHUNK_BYTES", 1000)  # dozens of chunks
    reduced = h2load_log.reduce_log(str(log))
    expected: dict[int, int] = {}
    for _, status, micros in rows:
        if status != -1:
            expected[micros] = expected.get(micros, 0) + 1
    assert reduced.histogram() == expected and reduced.failed == 1
    assert (reduced.first, reduced.last) == (rows[0][0], rows[-1][0])
    (tmp_path / "empty.tsv").write_text("")
    empty = h2load_log.reduce_log(str(tmp_path / "empty.tsv"))
    assert empty.histogram() == {} and empty.first is None


def test_a_row_that_is_not_h2load_s_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "requests.tsv"
    log.write_text("1796602569326054\t200\t253\nnot a row\n", encoding="ascii")
    with pytest.raises(h2load_log.LogError, match="1 of 2 rows are not h2load log rows"):
        h2load_log.reduce_log(str(log))


def test_the_program_writes_its_json_and_deletes_the_log(tmp_path: Path) -> None:
    log, out = tmp_path / "requests.tsv", tmp_path / "histogram.json"
    log.write_bytes((DATA / "status-500.tsv").read_bytes())
    assert h2load_log.main(["h2load_log.py", str(log), str(out), "--keep"]) == 0
    assert log.exists() and json.loads(out.read_text())["samples"] == 200
    assert h2load_log.main(["h2load_log.py", str(log), str(out)]) == 0
    assert not log.exists()
    assert h2load_log.main(["h2load_log.py", str(log), str(out)]) == 1  # gone: cannot read
    assert h2load_log.main(["h2load_log.py", str(log)]) == 2


# Several load hosts


def test_hosts_merge_their_rates_late_requests_and_histograms_exactly() -> None:
    point = LoadPoint(kind="open", vus=20, rate=2000)
    first = parse_h2load(_output("rate-c-epoll"), _reduced("rate-c-epoll"), ONE_SECOND, point, "a")
    second = parse_h2load(
        _output("rate-2t-c-epoll"),
        _reduced("rate-2t-c-epoll"),
        ONE_SECOND,
        LoadPoint(kind="open", vus=40, rate=2000),
        "b",
    )
    first = first.model_copy(update={"late_requests": 3, "started_at": 100.0})
    second = second.model_copy(update={"late_requests": 4, "started_at": 100.002})
    merged = merge_results([first, second])
    assert merged.offered_rate == 4000 and merged.late_requests == 7
    assert merged.errored_requests == 0 and merged.timed_out_requests == 0
    union = sorted(
        [m for _, _, m in _log_rows("rate-c-epoll")]
        + [m for _, _, m in _log_rows("rate-2t-c-epoll")]
    )
    assert merged.histogram is not None and merged.histogram.total == len(union) == 4000
    assert merged.latency.p99 == union[3959] / 1000
    window = max(first.duration_seconds, 0.002 + second.duration_seconds)
    assert merged.requests_per_second == pytest.approx(4000 / window)


# Finding it, and what it refuses


def test_h2load_is_found_on_path_or_where_the_inventory_says(tmp_path: Path) -> None:
    host = LocalHost()
    assert find_h2load(None, host).endswith("/h2load")
    missing = tmp_path / "h2load"
    with pytest.raises(UserError, match=f"inventory load.h2load_path: {missing} is not executable"):
        find_h2load(str(missing), host)
    # Not on PATH either (the lookup wrk and h2load share): what to install or set.
    with pytest.raises(UserError) as absent:
        find_program(host, "h2load-absent", None, "load.h2load_path", "nghttp2-client")
    assert str(absent.value) == (
        f"load host {host.name}: h2load-absent not found (apt-get install nghttp2-client, or "
        "set load.h2load_path)"
    )


def test_pipelining_and_too_few_connections_are_refused() -> None:
    with pytest.raises(UserError, match="--pipeline: orch runs h2load one request at a time"):
        check_combination("h2load", 16, None)
    assert check_combination("h2load", None, 5000) == 1
    with pytest.raises(UserError, match="--pipeline: orch runs h2load one request at a time"):
        sweep_points("h2load", ONE_SECOND, [10], None, [1, 4])
    with pytest.raises(UserError) as few:
        sweep_points("h2load", ONE_SECOND, [100], [5000, 60_000], None)
    assert str(few.value) == (
        "--connections: h2load sends at most 100 req/s per connection (its rate timer ticks "
        "every 10 ms at most), so 60,000 req/s needs at least 600 connections, not 100 (or "
        "leave --connections out: orch then opens one per 100 req/s)"
    )
    with pytest.raises(UserError, match="h2load takes one number of connections for every rate"):
        sweep_points("h2load", ONE_SECOND, [100, 200], [5000], None)
    points = sweep_points("h2load", ONE_SECOND, None, [20_000, 150], None)
    assert [(p.vus, p.rate) for p in points] == [(200, 20_000), (2, 150)]
    assert [p.kind for p in sweep_points("h2load", ONE_SECOND, [8, 64], None, None)] == [
        "closed",
        "closed",
    ]


def test_a_pass_with_fewer_requests_than_connections_is_refused() -> None:
    short = resolve_profile("sweep-short", warmup="10ms")
    point = LoadPoint(kind="open", vus=1000, rate=20_000)  # 200 requests in 10 ms
    with pytest.raises(
        UserError, match=r"--warmup: 20,000 req/s on 1000 connections sends 200 requests in 0\.01 s"
    ):
        check_h2load_requests("h2load", short, [point])
    check_h2load_requests("h2load", ONE_SECOND, [point])
    check_h2load_requests("k6", short, [point])  # not h2load's limit
