"""Re-captures the h2load files beside this script from real runs, with the command lines
orch builds (orchestrator.load.h2load.h2load_command). Run it as root under the heavy lock:
`flock /work/heavy.lock .venv/bin/python tests/data/h2load/capture.py`.

Every run is short and sends traffic to loopback only: servers/bin/c-epoll for the normal
cases (pinned to CPU 0, h2load to CPU 1), and for the failures small servers written here
that answer 500, close each connection after its first answer, answer what is not HTTP,
or never answer; and a port where nothing listens. Each case leaves NAME.txt (h2load's
stdout and stderr), NAME.status (its exit status) and, when it wrote one, NAME.tsv (its
per-request log).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from orchestrator.load.h2load import h2load_command  # noqa: E402
from orchestrator.load.points import LoadPoint, resolve_profile  # noqa: E402

PORT = 18491
URL = f"http://127.0.0.1:{PORT}/"
OK = b"HTTP/1.1 200 OK\r\nContent-type: text/html\r\nContent-length: 17\r\n\r\nHave a nice day!\n"
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-length: 0\r\n\r\n"
ONE_SECOND = resolve_profile("sweep-short")  # 1 s
QUARTER = resolve_profile("sweep-short", duration="250ms")
SMALL = LoadPoint(kind="open", vus=4, rate=200)  # 4 connections at 50 req/s each


def _serve(answer: Callable[[socket.socket], None], stop: threading.Event) -> threading.Thread:
    listener = socket.create_server(("127.0.0.1", PORT))
    listener.settimeout(0.1)

    def loop() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _requests(conn: socket.socket) -> int:
    """Reads until a request head ends; how many heads arrived (0: the peer closed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return 0
        data += chunk
    return data.count(b"\r\n\r\n")


def answer_500(conn: socket.socket) -> None:
    with conn:
        while (count := _requests(conn)) > 0:
            conn.sendall(ERROR * count)


def close_after_first(conn: socket.socket) -> None:
    with conn:
        if _requests(conn):
            conn.sendall(OK)
        _requests(conn)  # the second request arrives; the connection closes unanswered


def not_http(conn: socket.socket) -> None:
    with conn:
        while _requests(conn):
            conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")


def never_answer(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(3)
        try:
            while _requests(conn):
                pass
        except OSError:
            pass


def h2load(name: str, argv: list[str]) -> None:
    """Run h2load pinned to CPU 1 (argv from h2load_command, its log at NAME.tsv)."""
    log = HERE / f"{name}.tsv"
    log.unlink(missing_ok=True)
    argv = [str(log) if arg == "LOG" else arg for arg in argv]
    done = subprocess.run(["taskset", "-c", "1", *argv], capture_output=True, text=True, timeout=60)
    (HERE / f"{name}.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    (HERE / f"{name}.status").write_text(f"{done.returncode}\n", encoding="utf-8")
    if log.exists() and log.stat().st_size == 0:
        log.unlink()
    print(name, "exit", done.returncode, file=sys.stderr)


def with_server(answer: Callable[[socket.socket], None], run: Callable[[], None]) -> None:
    stop = threading.Event()
    thread = _serve(answer, stop)
    try:
        run()
    finally:
        stop.set()
        thread.join()


def main() -> None:
    tool = shutil.which("h2load") or "h2load"

    def orch_argv(point: LoadPoint, threads: int = 1, quarter: bool = False) -> list[str]:
        profile = QUARTER if quarter else ONE_SECOND
        return h2load_command(tool, URL, profile, point, threads, "LOG")

    server = subprocess.Popen(
        ["taskset", "-c", "0", str(ROOT / "servers/bin/c-epoll"), "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        # Open model: 2,000 req/s on 20 connections (orch's choice), 1 s, with the log.
        h2load("rate-c-epoll", orch_argv(LoadPoint(kind="open", vus=20, rate=2000)))
        # Two threads, 40 connections at 50 req/s each (the log's rows interleave).
        h2load("rate-2t-c-epoll", orch_argv(LoadPoint(kind="open", vus=40, rate=2000), 2))
        # Closed loop: 8 connections for 0.25 s.
        h2load("closed-c-epoll", orch_argv(LoadPoint(kind="closed", vus=8), quarter=True))
    finally:
        server.terminate()
        server.wait(10)
    with_server(answer_500, lambda: h2load("status-500", orch_argv(SMALL)))
    with_server(close_after_first, lambda: h2load("closed-by-server", orch_argv(SMALL)))
    with_server(not_http, lambda: h2load("not-http", orch_argv(SMALL)))
    # Timed out: never answered, with h2load's inactivity timeout (orch sets none).
    timeout = [*orch_argv(SMALL)[:-1], "-N", "200ms", URL]
    with_server(never_answer, lambda: h2load("timeout", timeout))
    h2load("refused", orch_argv(SMALL))  # nothing listens on the port
    # h2load 1.52 aborts on an inactivity timeout in a timed (-D) run: a tool that failed.
    closed = LoadPoint(kind="closed", vus=4)
    aborted = [*orch_argv(closed, quarter=True)[:-1], "-N", "200ms", URL]
    with_server(never_answer, lambda: h2load("aborted", aborted))


if __name__ == "__main__":
    main()
