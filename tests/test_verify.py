"""Verify's judgement of what a server answered, and what reports make of it: the Verify
section, rows marked unverified, and a verdict of verified epoll/io_uring pairs only."""

from __future__ import annotations

from pathlib import Path

from record_helpers import make_record, make_run_dir

from orchestrator.catalogue.entry import ServerEntry
from orchestrator.catalogue.read import load_catalogue
from orchestrator.load.points import LoadPoint
from orchestrator.load.result import Latency, LoadResult
from orchestrator.report.table import markdown_table
from orchestrator.report.write import write_reports
from orchestrator.results.aggregate import build_rows
from orchestrator.results.cell_result import CellResult, ProcessCpu
from orchestrator.results.verdict import point_verdicts
from orchestrator.results.verification import Verification
from orchestrator.verify.answers import REFERENCE_RESPONSE, excerpt, judge, parse_answers

NGINX = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 28 Nov 2026 05:27:05 GMT\r\n"
    b"Content-Type: text/html\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\n"
    b"Have a nice day!\n"
)
PIPELINED = "16 pipelined requests in one write"


def test_the_reference_response_is_81_bytes() -> None:
    assert len(REFERENCE_RESPONSE) == 81 and len(NGINX) == 157


def test_exact_answers_pass_and_once_per_read_fails() -> None:
    assert judge("one request", 1, REFERENCE_RESPONSE, False, None, "exact").passed
    assert judge(PIPELINED, 16, REFERENCE_RESPONSE * 16, False, None, "exact").passed
    once = judge(PIPELINED, 16, REFERENCE_RESPONSE, False, None, "exact")
    assert once.problem == "1 answer to 16 requests" and once.answers == 1
    assert once.excerpt == (
        "HTTP/1.1 200 OK\\r\\nContent-type: text/html\\r\\nContent-length: 17\\r\\n\\r\\n"
        "Have a nice day!\\n"
    )
    twice = judge("one request in two writes", 1, REFERENCE_RESPONSE * 2, False, None, "exact")
    assert twice.problem == "2 answers to 1 request"
    partial = judge(PIPELINED, 16, REFERENCE_RESPONSE * 3 + b"HTTP", False, None, "exact")
    assert partial.problem == "3 answers and part of one to 16 requests"
    other = REFERENCE_RESPONSE + REFERENCE_RESPONSE.replace(b"nice", b"good")
    assert judge("x", 2, other, False, None, "exact").problem == (
        "answer 2 differs from the reference response's 81 bytes at byte 72"
    )


def test_any_valid_http_200_passes_for_other_servers() -> None:
    assert judge(PIPELINED, 16, NGINX * 16, False, None, "http").passed
    assert judge("one", 1, REFERENCE_RESPONSE, False, None, "http").passed
    # Once per read, as the original benchmark's servers answer.
    once = judge(PIPELINED, 16, NGINX * 2, False, None, "http")
    assert once.problem == "2 answers to 16 requests"
    closing = NGINX.replace(b"keep-alive", b"close")
    assert judge("one", 1, closing, False, None, "http").problem == (
        "answer 1: Connection: close (the load tools keep connections alive)"
    )
    assert judge("one", 1, NGINX, True, None, "http").problem == (
        "the server closed the connection (the load tools keep connections alive)"
    )
    missing = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nHave a nice day!\n"
    assert judge("one", 1, missing, False, None, "http").problem == "answer 1: no Content-Length"
    not_found = NGINX.replace(b"200 OK", b"404 Not Found")
    assert judge("one", 1, not_found, False, None, "http").problem == (
        "answer 1: status 404, not 200"
    )
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    assert judge("one", 1, old, False, None, "http").problem == (
        "answer 1: 'HTTP/1.0 200 OK' is no HTTP/1.1 status line"
    )
    refused = judge("one", 1, b"", False, "cannot connect: Connection refused", "http")
    assert refused.problem == "cannot connect: Connection refused"
    assert judge("one", 1, b"", False, None, "http").problem == "0 answers to 1 request"


def test_answers_split_anywhere_are_parsed_whole() -> None:
    parsed = parse_answers(NGINX * 2 + NGINX[:50])
    assert len(parsed.answers) == 2 and parsed.rest == NGINX[:50] and parsed.problem is None
    assert parsed.answers[0].header("content-type") == "text/html"
    assert excerpt(b"\x00\tA\\", 10) == "\\x00\\tA\\\\"
    assert excerpt(b"A" * 300).endswith("… (300 bytes in all)")


def _cell(server: str, api: str, language: str, rep: int, cpu: float) -> CellResult:
    return CellResult(
        server=server,
        api=api,
        language=language,
        point="c20",
        repetition=rep,
        status="ok",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:05+00:00",
        load=LoadResult(
            tool="wrk",
            requests=100_000,
            failed_requests=0,
            duration_seconds=5.0,
            requests_per_second=20_000,
            latency=Latency(p50=1.0),
        ),
        server_cpu=ProcessCpu(user_seconds=cpu, system_seconds=cpu, wall_seconds=5.0),
        server_exit_status=0,
    )


SERVERS = [("c-epoll", "epoll", "c", 2.0), ("c-io_uring", "io_uring", "c", 1.8)]
SERVERS += [("rust-epoll", "epoll", "rust", 2.0), ("rust-io_uring", "io_uring", "rust", 1.0)]
SERVERS += [("nginx", "epoll", "nginx", 2.5), ("uring-proto", "io_uring", "rust", 0.5)]
POINT = LoadPoint(kind="closed", vus=20)


def _verified(server: str, passed: bool) -> Verification:
    if passed:
        return Verification(
            server=server, at="t", response="http", outcome="passed", answer_bytes=157
        )
    found = judge(PIPELINED, 16, REFERENCE_RESPONSE, False, None, "http")
    return Verification(server=server, at="t", response="http", outcome="failed", steps=[found])


def test_verdict_pairs_verified_epoll_and_io_uring_rows_of_a_language() -> None:
    cells = [_cell(s, a, lang, rep, cpu) for s, a, lang, cpu in SERVERS for rep in (1, 2, 3)]
    rows = build_rows(cells, None, [POINT.key], [s[0] for s in SERVERS], ["rust-io_uring"])
    (verdict,) = point_verdicts(cells, rows, [POINT])
    # nginx has no io_uring twin; rust-io_uring failed verify; the prototype pairs with
    # rust-epoll under its own name only when Rust has several pairs.
    assert [v.language for v in verdict.languages] == ["C", "Rust"]
    rows = build_rows(cells, None, [POINT.key], [s[0] for s in SERVERS])
    (verdict,) = point_verdicts(cells, rows, [POINT])
    assert [v.language for v in verdict.languages] == [
        "C",
        "Rust (rust-epoll vs rust-io_uring)",
        "Rust (rust-epoll vs uring-proto)",
    ]


def test_table_names_servers_and_marks_unverified_rows() -> None:
    cells = [_cell(s, a, lang, 1, cpu) for s, a, lang, cpu in SERVERS[:2]]
    plain = markdown_table(build_rows(cells, None))
    assert plain.startswith("| Api | Language |")
    cells.append(_cell("nginx", "epoll", "nginx", 1, 2.5))
    rows = build_rows(cells, None, order=["c-epoll", "c-io_uring", "nginx"], unverified=["nginx"])
    table = markdown_table(rows).splitlines()
    assert table[0].startswith("| Server | Api | Language |")
    assert table[4].startswith("| nginx (unverified) | epoll | nginx |")


def test_report_says_what_a_failing_server_answered(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    entries = {name: catalogue.by_name(name).entry for name in ("c-epoll", "c-io_uring", "nginx")}
    entries["once"] = ServerEntry(api="epoll", language="python", start="once {host} {port}")
    record = make_record(
        plan=["c-epoll/1", "c-io_uring/1", "nginx/1", "once/1"],
        points=[POINT],
        status="complete",
        servers=entries,
        tools={"nginx": "nginx version: nginx/1.22.1"},
        verification={
            "c-epoll": _verified("c-epoll", True),
            "c-io_uring": _verified("c-io_uring", True),
            "nginx": _verified("nginx", True),
            "once": _verified("once", False),
        },
    )
    run_dir = make_run_dir(tmp_path, record)
    for s, a, lang, cpu in SERVERS[:2] + SERVERS[4:5]:
        run_dir.write_cell(_cell(s, a, lang, 1, cpu))
    skipped = _cell("once", "epoll", "python", 1, 1.0).model_copy(
        update={"status": "skipped", "load": None, "error": "not measured: verify FAILED"}
    )
    run_dir.write_cell(skipped)
    markdown = write_reports(run_dir, ("md",))["md"]
    assert "- nginx: passed (157 bytes per answer, valid HTTP/1.1 200 answers with a body)" in (
        markdown
    )
    assert (
        "- once: **failed verify**, not measured (1 cell skipped; `--allow-unverified` "
        "measures it):\n  - 16 pipelined requests in one write: 1 answer to 16 requests; it "
        "answered: `HTTP/1.1 200 OK\\r\\nContent-type: text/html\\r\\n"
    ) in markdown
    assert "Not in the verdict: nginx (no io_uring server of language nginx in this run)." in (
        markdown
    )
    assert "- nginx (epoll, nginx version: nginx/1.22.1): Debian's nginx" in markdown
    assert "| once" not in markdown  # no row for a server that was not measured
