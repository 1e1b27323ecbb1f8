"""Re-captures the h2load files beside this script from real runs (run it as root under
the heavy lock: `flock /work/heavy.lock .venv/bin/python tests/data/h2load/capture.py`).

Every run is short and sends traffic to loopback only: servers/bin/c-epoll for the
normal cases (pinned to CPU 0, h2load to CPU 1), and for the failures small servers
written here that answer 500, close each connection after its first answer, or never
answer (with h2load's inactivity timeout), and a port where nothing listens.
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
PORT = 18491
OK = b"HTTP/1.1 200 OK\r\nContent-type: text/html\r\nContent-length: 17\r\n\r\nHave a nice day!\n"
ERROR = b"HTTP/1.1 500 Internal Server Error\r\nContent-length: 0\r\n\r\n"


def _serve(answer: Callable[[socket.socket], None], stop: threading.Event) -> threading.Thread:
    listener = socket.create_server(("127.0.0.1", PORT), reuse_port=False)
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


def never_answer(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(3)
        try:
            while _requests(conn):
                pass
        except OSError:
            pass


def h2load(name: str, args: list[str], log: bool = False) -> None:
    argv = ["taskset", "-c", "1", shutil.which("h2load") or "h2load", "--h1", *args]
    if log:
        argv += ["--log-file", str(HERE / f"{name}.tsv")]
        (HERE / f"{name}.tsv").unlink(missing_ok=True)
    argv.append(f"http://127.0.0.1:{PORT}/")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    (HERE / f"{name}.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    (HERE / f"{name}.status").write_text(f"{done.returncode}\n", encoding="utf-8")
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
    server = subprocess.Popen(
        ["taskset", "-c", "0", str(ROOT / "servers/bin/c-epoll"), "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        # Open model: 20 connections at 100 req/s each, 1 s; with the per-request log.
        h2load("rate-c-epoll", ["-c", "20", "-t", "1", "-D", "1", "--rps", "100"], log=True)
        # Two threads, 40 connections at 50 req/s each (the log's rows interleave).
        h2load("rate-2t-c-epoll", ["-c", "40", "-t", "2", "-D", "1", "--rps", "50"], log=True)
        # Closed loop: 8 connections, no rate.
        h2load("closed-c-epoll", ["-c", "8", "-t", "1", "-D", "1"], log=True)
    finally:
        server.terminate()
        server.wait(10)
    rate = ["-c", "4", "-t", "1", "-D", "1", "--rps", "50"]
    with_server(answer_500, lambda: h2load("status-500", rate, log=True))
    with_server(close_after_first, lambda: h2load("closed-by-server", rate, log=True))
    with_server(never_answer, lambda: h2load("timeout", [*rate, "-N", "200ms"], log=True))
    h2load("refused", rate, log=True)  # nothing listens on the port


if __name__ == "__main__":
    main()
