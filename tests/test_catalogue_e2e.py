"""Catalogue entries end to end in loopback mode: nginx beside the C servers, and servers
written here in Python that answer once per read, exit at start, crash mid-cell, or listen
on a fixed port with no ready line. Every test ends by counting what orch left running."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_helpers import count_left, processes
from orch_helpers import loopback_inventory, orch, require_two_cores
from record_helpers import one_run_dir, read_cells, read_record
from server_helpers import free_port

from orchestrator.results.cell_result import CellResult

# Cells of 2 s with wrk, after the smoke profile's warm-up.
WRK_CELL = ("--profile", "smoke", "--duration", "2s", "--load-tool", "wrk")

# One script, four behaviours. `fixed` listens where its code says, prints nothing and
# stops on SIGINT; `once` answers once per read, whatever the read holds.
SERVER = """
import os, selectors, signal, socket, sys
RESPONSE = (b"HTTP/1.1 200 OK\\r\\nContent-type: text/html\\r\\nContent-length: 17\\r\\n\\r\\n"
            b"Have a nice day!\\n")
mode = sys.argv[1]
if mode == "exit":
    print("cannot start: no such thing", flush=True)
    sys.exit(3)
host, port = ("127.0.0.1", FIXED_PORT) if mode == "fixed" else (sys.argv[3], int(sys.argv[5]))
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: sys.exit(0))
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, port))
listener.listen(1024)
listener.setblocking(False)
events = selectors.DefaultSelector()
events.register(listener, selectors.EVENT_READ)
pending, served = {}, 0
if mode != "fixed":
    print("serving on %s:%d" % (host, port), flush=True)
while True:
    for key, _ in events.select():
        if key.fileobj is listener:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            conn.setblocking(False)
            events.register(conn, selectors.EVENT_READ)
            pending[conn] = b""
            continue
        conn = key.fileobj
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionError:
            data = b""
        if not data:
            events.unregister(conn)
            pending.pop(conn, None)
            conn.close()
            continue
        if mode == "once":
            answers = 1
        else:
            held = pending[conn] + data
            answers = held.count(b"\\r\\n\\r\\n")
            pending[conn] = held[held.rfind(b"\\r\\n\\r\\n") + 4:] if answers else held
        served += answers
        if mode == "crash" and served > 3000:
            os._exit(1)
        conn.setblocking(True)
        try:
            conn.sendall(RESPONSE * answers)
        except ConnectionError:
            pass
        conn.setblocking(False)
"""


@dataclass(frozen=True)
class Loopback:
    """A loopback inventory with its own workdir, port and foreign servers."""

    inventory: Path
    workdir: Path
    fixed_port: int

    def left(self, test: str) -> dict[str, int]:
        """Processes orch started from this workdir still running (nginx and the Python
        servers name it on their command line; the C servers run from it)."""
        counts = count_left(test, {"local": None}, [self.workdir])
        mine = [p for p in processes() if str(self.workdir) in p.cmdline]
        return {"local": counts["local"] + len(mine)}


def _entry(name: str, mode: str, extra: str = "") -> str:
    args = "" if mode == "fixed" else " --host {host} --port {port}"
    return (
        f"  {name}:\n    api: {'other' if mode in ('crash', 'fixed') else 'epoll'}\n"
        f"    language: python\n    sources: foreign\n"
        f"    start: python3 {{sources}}/server.py {mode}{args}\n{extra}"
    )


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loopback]:
    require_two_cores()
    tmp = tmp_path_factory.mktemp("catalogue")
    port, fixed = free_port("127.0.0.1"), free_port("127.0.0.1")
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "server.py").write_text(SERVER.replace("FIXED_PORT", str(fixed)))
    ready_line = "    ready: {line: '^serving on'}\n"
    build = "    build: python3 -m py_compile server.py\n"
    stop = "    stop_signal: INT\n"
    servers = (
        "servers:\n"
        + _entry("once-per-read", "once", ready_line + build)
        + _entry("exits-at-start", "exit", ready_line)
        + _entry("crashes-mid-cell", "crash", ready_line)
        + _entry("fixed-port", "fixed", f"    port: {fixed}\n    ready: tcp\n{stop}")
    )
    inventory = tmp / "hosts.yaml"
    inventory.write_text(loopback_inventory(tmp / "work", port, more=servers), encoding="utf-8")
    yield Loopback(inventory, tmp / "work", fixed)


def _outcomes(run_dir: Path) -> dict[str, str]:
    """Each server's verify outcome, as run.json records it."""
    return {name: found.outcome for name, found in read_record(run_dir).verification.items()}


def _cell(run_dir: Path, server: str) -> CellResult:
    (cell,) = [c for c in read_cells(run_dir) if c.server == server and c.repetition == 1]
    return cell


def test_nginx_beside_the_c_servers(loopback: Loopback, tmp_path: Path) -> None:
    """nginx is verified, measured as one pinned process and stopped by PID; nothing stays."""
    out = tmp_path / "results"
    servers = ("--server", "nginx", "--server", "c-epoll", "--server", "c-io_uring")
    done = orch("run", "-i", str(loopback.inventory), *servers, *WRK_CELL, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify nginx: passed (157 bytes per answer" in done.stdout
    run_dir = one_run_dir(out)
    assert _outcomes(run_dir) == {
        "c-epoll": "passed",
        "c-io_uring": "passed",
        "nginx": "passed",
    }
    cell = _cell(run_dir, "nginx")
    assert cell.status == "ok" and cell.server_exit_status == 0  # stopped by its PID
    load = cell.load
    assert load is not None and load.requests > 0 and load.failed_requests == 0
    (config,) = loopback.workdir.glob("runs/*/nginx/*/1/nginx.conf")
    assert "access_log off;" in config.read_text(encoding="utf-8")
    assert not (config.parent / "nginx.pid").exists()  # nginx removed it as it exited
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert re.search(r"^\| nginx \| epoll \| nginx \| ", report, re.MULTILINE), report
    assert "Not in the verdict: nginx (no io_uring server of language nginx" in report
    assert "nginx uses epoll on Linux" in report
    assert loopback.left("nginx beside the C servers") == {"local": 0}


def test_foreign_servers_are_verified_and_their_faults_stay_theirs(
    loopback: Loopback, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    names = ("once-per-read", "exits-at-start", "crashes-mid-cell", "fixed-port")
    servers = [arg for name in names for arg in ("--server", name)]
    args = ["run", "-i", str(loopback.inventory), *servers, *WRK_CELL, "--warmup", "0"]
    done = orch(*args, "--out", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    skipped, failed = done.stderr.splitlines()[-2:]
    assert skipped == (
        "orch: 1 of 4 cells not measured: once-per-read failed verify (see Verify in the "
        "report; --allow-unverified measures them anyway)"
    )
    assert failed.startswith("orch: 2 of 4 cells failed: ") and "exits-at-start/1" in failed
    assert "crashes-mid-cell/1" in failed
    run_dir = one_run_dir(out)
    assert _outcomes(run_dir) == {
        "once-per-read": "failed",
        "exits-at-start": "not started",
        "crashes-mid-cell": "passed",
        "fixed-port": "passed",
    }

    assert _cell(run_dir, "once-per-read").status == "skipped"
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    answered = "`HTTP/1.1 200 OK\\r\\nContent-type: text/html\\r\\nContent-length: 17\\r\\n\\r\\n"
    assert "- once-per-read: **failed verify**, not measured (1 cell skipped" in report
    assert re.search(
        r"  - 16 pipelined requests in one write: [12] answers? to 16 requests; it answered: "
        + re.escape(answered),
        report,
    ), report
    assert "  - one request in two writes: 2 answers to 1 request; it answered: " in report
    print(report[report.index("## Verify") : report.index("## Results")])

    exited = _cell(run_dir, "exits-at-start")
    assert exited.status == "failed" and exited.server_exit_status == 3
    error = str(exited.error)
    assert error.startswith("server exited with status 3 before it was ready: "), error
    assert "cannot start: no such thing" in error
    assert (run_dir / "cells/exits-at-start").glob("*/1/server.log")

    crashed = _cell(run_dir, "crashes-mid-cell")
    assert crashed.status == "failed"
    assert str(crashed.error).startswith("server exited with status 1 during the load"), crashed

    fixed = _cell(run_dir, "fixed-port")
    assert fixed.status == "ok" and fixed.server_exit_status == 0, fixed  # on SIGINT
    assert re.search(r"^\| fixed-port \| other \| python \| ", report, re.MULTILINE), report
    assert loopback.left("foreign servers") == {"local": 0}


def test_allow_unverified_measures_and_marks(loopback: Loopback, tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = orch(
        "run", "-i", str(loopback.inventory), "--server", "once-per-read", *WRK_CELL,
        "--allow-unverified", "--out", str(out),
    )  # fmt: skip
    # wrk sends one request at a time per connection: once per read keeps up with that.
    assert done.returncode == 0, done.stdout + done.stderr
    report = (one_run_dir(out) / "report.md").read_text(encoding="utf-8")
    assert "| once-per-read (unverified) | epoll | python |" in report
    assert "measured anyway (`--allow-unverified`): its rows are marked unverified" in report
    assert loopback.left("allow unverified") == {"local": 0}


def test_a_built_entry_is_rebuilt_only_when_its_sources_change(loopback: Loopback) -> None:
    first = orch("deploy", "-i", str(loopback.inventory), "--server", "once-per-read")
    assert first.returncode == 0, first.stdout + first.stderr
    again = orch("deploy", "-i", str(loopback.inventory), "--server", "once-per-read")
    assert "built nothing; up to date once-per-read" in again.stdout, again.stdout
    source = loopback.inventory.parent / "foreign" / "server.py"
    source.write_text(source.read_text() + "\n# changed\n")
    changed = orch("deploy", "-i", str(loopback.inventory), "--server", "once-per-read")
    assert "built once-per-read" in changed.stdout, changed.stdout
