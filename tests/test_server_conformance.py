"""Conformance tests: each of the six servers against the contract in servers/README.md.

Every test talks to its own server process on loopback only and is bounded in time by
socket timeouts and explicit deadlines.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time

import pytest
from server_helpers import (
    MAX_HEAD,
    REQUEST,
    RESPONSE,
    SERVER_NAMES,
    STARTUP_RE,
    TERMINATOR,
    Deadline,
    RunningServer,
    ServerLauncher,
    ServerStartError,
    assert_responses,
    close_all,
    connect,
    connect_small_window,
    cpu_seconds,
    describe,
    describe_mismatch,
    exchange,
    expect_closed,
    expect_responses,
    expect_silence,
    fd_count,
    fd_targets,
    fetch_one,
    free_port,
    garbage,
    lowest_free_fd,
    nofile_limits,
    open_connections,
    raise_nofile_limit,
    recv_until_eof,
    run_binary,
    send_without_reading,
    set_reset_on_close,
    set_soft_nofile,
    summarise_exchanges,
    thread_names,
    wait_until,
)

pytestmark = pytest.mark.parametrize("server_name", SERVER_NAMES)

SHORT_WAIT = 0.2
BURST_REQUEST = b"GET / HTTP/1.1\r\n\r\n"


def test_keep_alive(server_launcher: ServerLauncher) -> None:
    """Two requests on one connection, one after the other, each get exactly the response."""
    srv = server_launcher.start()
    with connect(*srv.address()) as sock:
        for n in (1, 2):
            sock.sendall(REQUEST)
            expect_responses(sock, 1, f"request {n} on a keep-alive connection")
        expect_silence(sock, SHORT_WAIT, "two requests answered")


def test_pipelined_requests(server_launcher: ServerLauncher) -> None:
    """16 requests in one write get exactly 16 responses, in one stream, and nothing more."""
    srv = server_launcher.start()
    with connect(*srv.address()) as sock:
        sock.sendall(REQUEST * 16)
        expect_responses(sock, 16, "16 pipelined requests in one write")
        expect_silence(sock, SHORT_WAIT, "16 pipelined requests answered")


def test_pipelined_burst_with_slow_reader(server_launcher: ServerLauncher) -> None:
    """100,000 pipelined requests while the client is not reading: the server's output
    backs up and its sends stop part-way (at arbitrary byte offsets), and the resumed
    output must still be exactly the response repeated, no byte lost, repeated or
    misaligned."""
    count = 100_000
    payload = BURST_REQUEST * count
    srv = server_launcher.start()
    with connect_small_window(*srv.address()) as sock:
        sent = send_without_reading(sock, payload, seconds=2.0)
        time.sleep(SHORT_WAIT)  # let the server run into the full buffers
        srv.assert_alive("with its output backed up")
        what = f"{count} pipelined requests read late"
        [result] = exchange([sock], [payload[sent:]], [count * len(RESPONSE)], what, 20.0)
        assert result.error is None, (
            f"expected {count} responses on an open connection, got "
            f"{len(result.data)} bytes and then {result.error}"
        )
        assert_responses(result.data, count, what)
        expect_silence(sock, SHORT_WAIT, f"{count} pipelined requests answered")


def test_request_split_across_writes(server_launcher: ServerLauncher) -> None:
    """One request in three writes, split inside CRLFCRLF: one answer, only after the last."""
    parts = [b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r", b"\n\r", b"\n"]
    assert b"".join(parts).count(TERMINATOR) == 1
    srv = server_launcher.start()
    with connect(*srv.address()) as sock:
        for n, part in enumerate(parts[:-1], start=1):
            sock.sendall(part)
            expect_silence(sock, 0.05, f"part {n} of 3 of a request ({part!r}), an incomplete head")
        sock.sendall(parts[-1])
        expect_responses(sock, 1, "a request sent in three parts")
        expect_silence(sock, SHORT_WAIT, "the split request answered")


@pytest.mark.parametrize(
    "stream",
    [
        b"GET / HTTP/1.1\r\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n\r\r\n\r\n",
        b"\r\n\r\n\r\n\r\n",
        b"\r\n\r\n\r\n" + b"x\r\n\r\n",
        b"\n\r\n\r\n\n\r\r\n\r\n",
        b"GET / HTTP/1.1\n\n\r\n\r\r\r\n\r\n",
    ],
    ids=["cr-cr", "crlf-cr-crlfcrlf", "back-to-back", "no-overlap", "lf-noise", "mixed"],
)
def test_framing_counts_each_crlfcrlf(server_launcher: ServerLauncher, stream: bytes) -> None:
    """A request is anything ending in CRLFCRLF, counted from the end of the previous one:
    a stray CR must restart the match, and a match's bytes are not reused by the next."""
    expected = stream.count(TERMINATOR)  # bytes.count counts non-overlapping, left to right
    srv = server_launcher.start()
    with connect(*srv.address()) as sock:
        sock.sendall(stream)
        expect_responses(sock, expected, f"the stream {stream!r}")
        expect_silence(sock, SHORT_WAIT, f"the stream {stream!r} answered {expected} time(s)")


def test_thousand_concurrent_connections(server_launcher: ServerLauncher) -> None:
    """1,000 connections are all opened first, then each sends one request and gets it answered."""
    count = 1000
    raise_nofile_limit(count + 100)
    srv = server_launcher.start()
    socks = open_connections(*srv.address(), count, timeout=10.0)
    try:
        what = f"{count} concurrent connections, one request each"
        results = exchange(socks, [REQUEST] * count, [len(RESPONSE)] * count, what, 20.0)
        assert all(r.data == RESPONSE for r in results), summarise_exchanges(
            results, RESPONSE, what
        )
    finally:
        close_all(socks)
    srv.assert_alive("after 1,000 concurrent connections")


def test_garbage_does_not_hurt(server_launcher: ServerLauncher) -> None:
    """Random and binary bytes close at most their own connection; content never matters,
    so garbage that ends in CRLFCRLF is a request like any other."""
    rng = random.Random(20240601)
    srv = server_launcher.start()
    host, port = srv.address()
    socks: list[socket.socket] = []
    try:
        # Garbage without CRLFCRLF, then the client just closes.
        for size in (1, 100, 4000, 8000):
            with connect(host, port) as sock:
                sock.sendall(garbage(rng, size))
        # Binary garbage kept open, some of it completed later by a CRLFCRLF.
        held: list[tuple[socket.socket, bytes]] = []
        for size in (3, 500, 2048, 6000):
            sock = connect(host, port)
            socks.append(sock)
            blob = garbage(rng, size)
            sock.sendall(blob)
            held.append((sock, blob))
        binary = bytes(range(256)) * 8
        assert TERMINATOR not in binary
        sock = connect(host, port)
        socks.append(sock)
        sock.sendall(binary)
        held.append((sock, binary))
        time.sleep(0.05)
        srv.assert_alive("after garbage on several connections")
        fetch_one(host, port, "after garbage on other connections")
        for sock, blob in held:
            sock.sendall(TERMINATOR)
            context = f"a connection that sent garbage ({describe(blob, 40)}) then CRLFCRLF"
            expect_responses(sock, 1, context)
            expect_silence(sock, 0.05, context)
    finally:
        close_all(socks)
    fetch_one(host, port, "after all the garbage")


def test_oversized_head_closes_only_that_connection(server_launcher: ServerLauncher) -> None:
    """A head over 8192 bytes closes its connection (unanswered); others carry on."""
    srv = server_launcher.start()
    host, port = srv.address()
    bystander = connect(host, port)
    try:
        bystander.sendall(REQUEST[:10])
        with connect(host, port) as sock:
            # The server may close (or stop reading) before taking it all.
            with contextlib.suppress(OSError):
                sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (64 * 1024))
            expect_closed(sock, 5.0, "a 64 KiB head without CRLFCRLF")
        with connect(host, port) as sock:
            head = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + TERMINATOR
            with contextlib.suppress(OSError):
                sock.sendall(head)
            expect_closed(sock, 5.0, f"a {len(head)}-byte head (CRLFCRLF only after 8192 bytes)")
        srv.assert_alive("after oversized heads")
        fetch_one(host, port, "after oversized heads")
        bystander.sendall(REQUEST[10:])
        expect_responses(bystander, 1, "a connection idle while others were closed")
    finally:
        bystander.close()


def test_head_below_limit_is_answered(server_launcher: ServerLauncher) -> None:
    """Two ~8,000-byte heads back to back: each is under the limit (which counts from the
    end of the previous request), so both are answered."""
    head = b"GET / HTTP/1.1\r\nX-Pad: "
    head += b"a" * (8000 - len(head) - len(TERMINATOR)) + TERMINATOR
    assert len(head) == 8000 and len(head) <= MAX_HEAD
    srv = server_launcher.start()
    with connect(*srv.address()) as sock:
        sock.sendall(head)
        expect_responses(sock, 1, "an 8,000-byte head")
        sock.sendall(head)
        expect_responses(sock, 1, "a second 8,000-byte head on the same connection")
        sock.sendall(head * 2)
        expect_responses(sock, 2, "two 8,000-byte heads in one write")
        expect_silence(sock, SHORT_WAIT, "4 large heads answered")


def test_client_resets(server_launcher: ServerLauncher) -> None:
    """200 clients send part of a request and reset (RST); 50 more reset right after
    pipelining 16 requests, so answers are owed to a reset connection. The server stays
    up, answers, and closes every one of those connections."""
    raise_nofile_limit(400)
    srv = server_launcher.start()
    host, port = srv.address()
    baseline = fd_count(srv.pid)
    partial = open_connections(host, port, 200)
    owed = open_connections(host, port, 50)
    try:
        for sock in partial:
            sock.send(REQUEST[:20])
        for sock in owed:
            sock.send(REQUEST * 16)
        time.sleep(0.1)  # let the server read what was sent before the resets arrive
    finally:
        for sock in partial + owed:
            set_reset_on_close(sock)
        close_all(partial + owed)
    time.sleep(0.1)
    srv.assert_alive("after 250 client resets")
    fetch_one(host, port, "after 250 client resets")
    assert wait_until(lambda: fd_count(srv.pid) <= baseline, timeout=5.0), (
        f"expected the server's descriptor count back to {baseline} within 5 s after the "
        f"clients reset, got {fd_count(srv.pid)}: {fd_targets(srv.pid)}"
    )


def test_half_close_gets_response(server_launcher: ServerLauncher) -> None:
    """A request then shutdown(SHUT_WR): the response arrives, then a clean EOF."""
    srv = server_launcher.start()
    with connect(*srv.address()) as sock:
        sock.sendall(REQUEST)
        sock.shutdown(socket.SHUT_WR)
        what = "a request then a half-close"
        assert_responses(recv_until_eof(sock, what, timeout=5.0), 1, what)


def test_half_close_with_output_backed_up(server_launcher: ServerLauncher) -> None:
    """100,000 pipelined requests and a half-close while not reading: the EOF reaches the
    server while it still owes most answers, and it must send them all before closing."""
    count = 100_000
    payload = BURST_REQUEST * count
    srv = server_launcher.start()
    with connect_small_window(*srv.address()) as sock:
        sent = send_without_reading(sock, payload, seconds=2.0)
        early = b""
        if sent < len(payload):
            # The server stopped reading while blocked on output (allowed): send the rest
            # while reading, which leaves less owed at the EOF but keeps the test valid.
            [result] = exchange(
                [sock], [payload[sent:]], [count * len(RESPONSE)], "the rest of a burst", 20.0
            )
            early = result.data
        sock.shutdown(socket.SHUT_WR)
        time.sleep(SHORT_WAIT)  # let the server see the EOF with its output backed up
        sock.setblocking(True)
        what = f"{count} requests then a half-close, read late"
        got = early + recv_until_eof(sock, what, timeout=20.0)
        assert_responses(got, count, what)


def test_half_close_with_partial_request(server_launcher: ServerLauncher) -> None:
    """A request, an incomplete head, then EOF: the complete request is answered, the
    incomplete one is not, and the server closes."""
    srv = server_launcher.start()
    with connect(*srv.address()) as sock:
        sock.sendall(REQUEST + REQUEST[:-1])
        sock.shutdown(socket.SHUT_WR)
        what = "a request plus an incomplete head, then a half-close"
        assert_responses(recv_until_eof(sock, what, timeout=5.0), 1, what)


@pytest.mark.parametrize("idle_connections", [0, 6], ids=["no-connections", "idle-connections"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero(
    server_launcher: ServerLauncher, sig: signal.Signals, idle_connections: int
) -> None:
    """SIGTERM/SIGINT: exit status 0 within one second, idle connections or not."""
    srv = server_launcher.start()
    host, port = srv.address()
    socks = open_connections(host, port, idle_connections)
    try:
        for i, sock in enumerate(socks):
            sock.setblocking(True)
            sock.settimeout(5.0)
            if i % 2:
                sock.sendall(REQUEST[:5])  # idle mid-head
            else:
                sock.sendall(REQUEST)  # idle after an answer
                expect_responses(sock, 1, "an idle connection's request before the signal")
        status, seconds = srv.signal_and_wait(sig, timeout=1.0)
        assert status is not None, (
            f"expected exit within 1 s of {sig.name} ({idle_connections} idle connections), "
            f"still running after {seconds:.2f} s"
        )
        assert status == 0, (
            f"expected exit status 0 on {sig.name}, got {status} after {seconds:.2f} s; "
            f"stderr: {srv.stderr()!r}"
        )
    finally:
        close_all(socks)


def test_descriptors_released(server_launcher: ServerLauncher) -> None:
    """100 connections opened, used and closed: the descriptor count returns to its start."""
    count = 100
    raise_nofile_limit(count + 100)
    srv = server_launcher.start()
    baseline = fd_count(srv.pid)
    socks = open_connections(*srv.address(), count)
    try:
        what = f"{count} connections, 3 requests each"
        results = exchange(socks, [REQUEST * 3] * count, [3 * len(RESPONSE)] * count, what, 10.0)
        assert all(r.data == RESPONSE * 3 for r in results), summarise_exchanges(
            results, RESPONSE * 3, what
        )
        during = fd_count(srv.pid)
        assert during >= baseline + count, (
            f"expected at least {baseline + count} descriptors with {count} connections open "
            f"(baseline {baseline}), got {during}"
        )
    finally:
        close_all(socks)
    assert wait_until(lambda: fd_count(srv.pid) == baseline, timeout=5.0), (
        f"expected the descriptor count back to {baseline} within 5 s of closing {count} "
        f"connections, got {fd_count(srv.pid)}: {fd_targets(srv.pid)}"
    )


def test_descriptor_exhaustion_pauses_accepting(server_launcher: ServerLauncher) -> None:
    """With RLIMIT_NOFILE capped at 64, 100 clients: the server serves what it can, does
    not crash or spin (CPU use stays near zero) while out of descriptors, and serves the
    waiting clients once the first ones close."""
    limit, count = 64, 100
    srv = server_launcher.start(nofile_limit=limit)
    socks = open_connections(*srv.address(), count)
    served: list[socket.socket] = []
    waiting: list[socket.socket] = []
    try:
        for sock in socks:
            sock.send(REQUEST)
        time.sleep(0.2)
        cpu_before = cpu_seconds(srv.pid)
        time.sleep(0.5)
        cpu_used = cpu_seconds(srv.pid) - cpu_before
        srv.assert_alive(f"with {count} clients and {limit} descriptors")
        assert cpu_used < 0.15, (
            f"expected the server idle while out of descriptors, it used {cpu_used:.2f} s of "
            f"CPU in 0.5 s (spinning on the listener?)"
        )
        for sock in socks:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                waiting.append(sock)
                continue
            assert data == RESPONSE, (
                f"a client served while descriptors ran out: {describe_mismatch(RESPONSE, data)}"
            )
            served.append(sock)
        assert served and waiting, (
            f"expected some of {count} clients served and some waiting with a descriptor limit "
            f"of {limit}, got {len(served)} served and {len(waiting)} waiting"
        )
        close_all(served)
        what = f"{len(waiting)} clients waiting until {len(served)} others closed"
        n = len(waiting)
        results = exchange(waiting, [b""] * n, [len(RESPONSE)] * n, what, 10.0)
        assert all(r.data == RESPONSE for r in results), summarise_exchanges(
            results, RESPONSE, what
        )
    finally:
        close_all(socks)
    fetch_one(*srv.address(), "after running out of descriptors")


#: IORING_SETUP_SINGLE_ISSUER and IORING_SETUP_DEFER_TASKRUN, which every ring must have.
REQUIRED_SETUP_FLAGS = (1 << 12) | (1 << 13)


def test_startup_line(server_launcher: ServerLauncher, server_name: str) -> None:
    """One line before the listening line names the API and kernel, and for io_uring the
    setup flags the ring was created with and the features the kernel reported."""
    srv = server_launcher.start()
    line = srv.startup_line
    assert line is not None, (
        f"expected a 'server: api=... kernel=...' line before {srv.listening_line!r}, got "
        f"none (stdout {srv.stdout()!r})"
    )
    match = STARTUP_RE.fullmatch(line)
    assert match is not None, (
        f"expected the start-up line to read 'server: api=API kernel=RELEASE' (io_uring: then "
        f"' setup_flags=0xHEX features=0xHEX'), got {line!r}"
    )
    api = server_name.split("-", 1)[1]
    assert match["api"] == api, f"expected api={api} in {line!r}"
    kernel = os.uname().release
    assert match["kernel"] == kernel, f"expected kernel={kernel} in {line!r}"
    if api == "epoll":
        assert match["setup_flags"] is None, f"expected no ring details from epoll: {line!r}"
        return
    assert match["setup_flags"] is not None, f"expected setup_flags and features in {line!r}"
    setup_flags, features = int(match["setup_flags"], 16), int(match["features"], 16)
    assert setup_flags & REQUIRED_SETUP_FLAGS == REQUIRED_SETUP_FLAGS, (
        f"expected setup_flags to include SINGLE_ISSUER and DEFER_TASKRUN "
        f"({REQUIRED_SETUP_FLAGS:#x}), got {setup_flags:#x} in {line!r}"
    )
    assert features != 0, f"expected the kernel's io_uring features (nonzero) in {line!r}"


def test_restart_on_same_port_after_sigterm(server_launcher: ServerLauncher) -> None:
    """Started again on its port right after it exited on SIGTERM, with connections open,
    the server binds at the first try: the port is free the moment the process is gone."""
    host = "127.0.0.1"
    port = free_port(host)
    for round_ in range(1, 4):
        try:
            srv = server_launcher.start(port=port)
        except ServerStartError as exc:
            raise AssertionError(
                f"round {round_}: expected the server to bind port {port} at once after the "
                f"previous one exited on SIGTERM, it did not start: {exc}"
            ) from None
        served = connect(host, port)
        idle = connect(host, port)
        try:
            served.sendall(REQUEST)
            expect_responses(served, 1, f"round {round_}: a request before SIGTERM")
            idle.sendall(REQUEST[:5])
            status, seconds = srv.signal_and_wait(signal.SIGTERM, timeout=1.0)
            assert status == 0, (
                f"round {round_}: expected exit status 0 within 1 s of SIGTERM, got {status} "
                f"after {seconds:.2f} s; stderr: {srv.stderr()!r}"
            )
        finally:
            close_all([served, idle])


def _expect_unanswered(srv: RunningServer, sock: socket.socket, wait: float, why: str) -> None:
    """Fail if `sock` gets anything within `wait` s, or the server spins meanwhile."""
    cpu_before = cpu_seconds(srv.pid)
    expect_silence(sock, wait, why)
    cpu_used = cpu_seconds(srv.pid) - cpu_before
    assert cpu_used < 0.3 * wait, (
        f"expected the server idle while it cannot accept ({why}), it used {cpu_used:.2f} s "
        f"of CPU in {wait} s"
    )


@pytest.mark.parametrize("drive", ["lowered-limit", "closed-connections"])
def test_accept_resumes_with_no_connection(
    server_launcher: ServerLauncher, server_name: str, drive: str
) -> None:
    """An accept fails with EMFILE while the server holds no connection of its own, so no
    close can resume accepting: restoring the descriptor limit must get the waiting client
    answered within 1 s anyway (the servers retry on a timer), nothing else happening.

    lowered-limit: the soft limit is lowered to the server's lowest free descriptor, then
    a client connects. closed-connections: the server fills its (low) limit with
    connections of its own, the limit is lowered under them, a client's accept fails, and
    the server's connections all close while the limit stays low (each close retries the
    accept, which fails again). An io_uring multishot accept takes the limit when it is
    armed, so only the second drive reaches the io_uring servers.
    """
    if drive == "lowered-limit" and server_name.endswith("io_uring"):
        pytest.skip(
            "an io_uring multishot accept takes the descriptor limit when armed: lowering it "
            "later cannot make that accept fail (the closed-connections drive covers it)"
        )
    own: list[socket.socket] = []
    if drive == "lowered-limit":
        srv = server_launcher.start()
        baseline = fd_count(srv.pid)
        restored = nofile_limits(srv.pid)[0]
        set_soft_nofile(srv.pid, lowest_free_fd(srv.pid))
    else:
        restored = 32
        srv = server_launcher.start(nofile_limit=restored)
        baseline = fd_count(srv.pid)
        lowest = lowest_free_fd(srv.pid)
        own = open_connections(*srv.address(), restored - baseline)
        n = len(own)
        what = f"{n} connections filling a descriptor limit of {restored}"
        results = exchange(own, [REQUEST] * n, [len(RESPONSE)] * n, what, 10.0)
        assert all(r.data == RESPONSE for r in results), summarise_exchanges(
            results, RESPONSE, what
        )
        set_soft_nofile(srv.pid, lowest)
    client = connect(*srv.address())
    try:
        client.sendall(REQUEST)
        _expect_unanswered(srv, client, 0.3, "a client connected with no descriptor to spare")
        if own:
            close_all(own)
            assert wait_until(lambda: fd_count(srv.pid) == baseline, timeout=5.0), (
                f"expected the server back to its {baseline} descriptors once its "
                f"connections closed, got {fd_count(srv.pid)}: {fd_targets(srv.pid)}"
            )
            _expect_unanswered(
                srv, client, 0.3, "the server's connections closed, the limit still lowered"
            )
        srv.assert_alive("while it could not accept")
        set_soft_nofile(srv.pid, restored)
        expect_responses(
            client,
            1,
            "a client waiting since its accept failed, after the limit was restored",
            timeout=1.0,
        )
        assert fd_count(srv.pid) == baseline + 1, (
            f"expected the server to hold its {baseline} descriptors and the client's, got "
            f"{fd_count(srv.pid)}: {fd_targets(srv.pid)}"
        )
    finally:
        client.close()
        close_all(own)
    fetch_one(*srv.address(), "after accepting resumed")


def test_host_and_port_honoured(server_launcher: ServerLauncher) -> None:
    """--host 127.0.0.2 --port P: listens there and only there."""
    host = "127.0.0.2"
    # Also free on 127.0.0.1, so that nothing else can answer the refusal check below.
    port = free_port(host, also_free_on=["127.0.0.1"])
    srv = server_launcher.start(host=host, port=port)
    expected_line = f"listening on {host}:{port}\n"
    assert srv.listening_line == expected_line, (
        f"expected the line {expected_line!r}, got {srv.listening_line!r}"
    )
    fetch_one(host, port, f"a client of {host}:{port}")
    try:
        with connect("127.0.0.1", port, timeout=2.0) as sock:
            peer = sock.getpeername()
    except ConnectionRefusedError:
        return
    raise AssertionError(
        f"expected 127.0.0.1:{port} to refuse connections (server bound to {host}), "
        f"but a connection to {peer} succeeded"
    )


def test_single_thread(server_launcher: ServerLauncher) -> None:
    """One task in /proc/PID/task before, during and after 50 connections pipelining
    requests (io_uring io-wq workers or an SQPOLL thread would show up there)."""
    connections, batch = 50, 32
    srv = server_launcher.start()
    task_dir = f"/proc/{srv.pid}/task"
    samples = 0
    last_sample = 0.0

    def check(when: str) -> None:
        nonlocal samples
        names = thread_names(srv.pid)
        samples += 1
        assert len(names) == 1, f"expected exactly 1 entry in {task_dir} {when}, got {names}"

    def sample_during_load() -> None:
        nonlocal last_sample
        now = time.monotonic()
        if now - last_sample >= 0.01:
            last_sample = now
            check("during load")

    check("after startup")
    socks = open_connections(*srv.address(), connections)
    try:
        load = Deadline(1.0)
        rounds = 0
        while not load.expired():
            what = f"round {rounds + 1} of {batch} pipelined requests on {connections} connections"
            results = exchange(
                socks,
                [REQUEST * batch] * connections,
                [batch * len(RESPONSE)] * connections,
                what,
                10.0,
                on_tick=sample_during_load,
            )
            assert all(r.data == RESPONSE * batch for r in results), summarise_exchanges(
                results, RESPONSE * batch, what
            )
            rounds += 1
        check("right after the load")
    finally:
        close_all(socks)
    time.sleep(0.1)
    check("after the connections closed")
    assert samples >= 5, f"expected at least 5 samples of {task_dir}, took {samples}"


_BAD_ARGS = [
    ["--port", "notanumber"],
    ["--bogus"],
    ["--port"],
    ["--port", "65536"],
    ["--port", "-1"],
    ["--port", "80x"],
    ["--host", "256.1.2.3"],
]


@pytest.mark.parametrize("args", _BAD_ARGS, ids=["_".join(a) for a in _BAD_ARGS])
def test_bad_arguments(server_launcher: ServerLauncher, args: list[str]) -> None:
    """Bad arguments: one line on stderr and exit status 2, without starting to listen."""
    run = run_binary(server_launcher.binary(), args, timeout=2.0)
    assert run.returncode is not None, (
        f"expected `{' '.join(args)}` to be rejected with exit status 2, the server was still "
        f"running after 2 s (stdout {run.stdout!r}, stderr {run.stderr!r})"
    )
    assert run.returncode == 2, (
        f"expected exit status 2 for `{' '.join(args)}`, got {run.returncode} "
        f"(stdout {run.stdout!r}, stderr {run.stderr!r})"
    )
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), (
        f"expected exactly one line on stderr for `{' '.join(args)}`, got {run.stderr!r}"
    )
    assert "listening" not in run.stdout, (
        f"expected no listening line for `{' '.join(args)}`, got stdout {run.stdout!r}"
    )
