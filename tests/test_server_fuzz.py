"""Fuzzing the six servers with random and mutated HTTP bytes from many connections.

Each server gets a bounded burst (FUZZ_SECONDS, FUZZ_CONNECTIONS at a time) of: valid
requests mutated by bit flips, insertions, deletions and truncation; pure random bytes;
long runs of CR/LF; requests split at random points; and connections that end by
half-close, plain close or reset at random moments. Afterwards the server must answer a
fresh client correctly (single and pipelined) and hold the descriptors it held before.
The random generator is seeded per server, so a failure can be replayed.
"""

from __future__ import annotations

import random
import selectors
import socket
import struct
import time
import zlib

import pytest
from server_helpers import (
    REQUEST,
    RESPONSE,
    SERVER_NAMES,
    ServerLauncher,
    connect,
    fd_count,
    fd_targets,
    fetch_one,
    raise_nofile_limit,
    recv_exactly,
    wait_until,
)

FUZZ_SECONDS = 4.0
FUZZ_CONNECTIONS = 64
TEMPLATES = (
    REQUEST,
    b"GET /plaintext HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"GET / HTTP/1.0\r\n\r\n",
)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One mutated version of `data`: a handful of flips, insertions, deletions or a cut."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.randrange(5)
        pos = rng.randrange(len(buf) + 1)
        if kind == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buf[pos:pos] = rng.choice([b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b"\xff"])
        elif kind == 2 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        elif kind == 3:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 64))
        else:
            del buf[pos:]
    return bytes(buf)


def payload(rng: random.Random) -> bytes:
    """What one fuzz connection sends in total."""
    choice = rng.randrange(5)
    if choice == 0:
        return rng.randbytes(rng.randint(1, 20000))
    if choice == 1:
        return bytes(rng.choice(b"\r\n") for _ in range(rng.randint(1, 5000)))
    if choice == 2:
        return b"".join(rng.choice(TEMPLATES) for _ in range(rng.randint(1, 40)))
    parts = [mutate(rng, rng.choice(TEMPLATES)) for _ in range(rng.randint(1, 40))]
    return b"".join(parts)


def open_fuzz_connection(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.connect_ex(address)
    return sock


def end_connection(rng: random.Random, sock: socket.socket) -> None:
    """Half-close, reset or just close: the endings a server meets in the wild."""
    ending = rng.randrange(3)
    try:
        if ending == 0:
            sock.shutdown(socket.SHUT_WR)
            time.sleep(0)  # leave the server a chance to answer into a half-closed socket
        elif ending == 1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def fuzz(address: tuple[str, int], seed: int, seconds: float) -> tuple[int, int]:
    """Run the fuzz burst; return (connections used, bytes sent)."""
    rng = random.Random(seed)
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, memoryview] = {}
    used = sent_bytes = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            while len(pending) < FUZZ_CONNECTIONS:
                sock = open_fuzz_connection(address)
                pending[sock] = memoryview(payload(rng))
                selector.register(sock, selectors.EVENT_WRITE | selectors.EVENT_READ)
                used += 1
            for key, events in selector.select(timeout=0.05):
                fileobj = key.fileobj
                assert isinstance(fileobj, socket.socket)
                sock = fileobj
                data = pending[sock]
                try:
                    if events & selectors.EVENT_READ:
                        sock.recv(65536)  # drain answers; their content is not checked here
                    if data and events & selectors.EVENT_WRITE:
                        # Random split points: the server must cope with any fragmentation.
                        sent = sock.send(data[: rng.randint(1, 4096)])
                        pending[sock] = data[sent:]
                        sent_bytes += sent
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    pending[sock] = memoryview(b"")
                if not pending[sock] or rng.random() < 0.02:
                    selector.unregister(sock)
                    del pending[sock]
                    end_connection(rng, sock)
    finally:
        for sock in pending:
            selector.unregister(sock)
            sock.close()
        selector.close()
    return used, sent_bytes


@pytest.mark.parametrize("server_name", SERVER_NAMES)
def test_fuzzed_bytes_leave_server_correct(server_launcher: ServerLauncher) -> None:
    raise_nofile_limit(FUZZ_CONNECTIONS * 4 + 100)
    srv = server_launcher.start()
    baseline = fd_count(srv.pid)
    seed = zlib.crc32(server_launcher.name.encode())
    used, sent_bytes = fuzz(srv.address(), seed, FUZZ_SECONDS)
    # A burst that sent next to nothing would prove nothing.
    assert used > FUZZ_CONNECTIONS and sent_bytes > 1_000_000, (
        f"the fuzz burst only used {used} connections and sent {sent_bytes} bytes"
    )
    srv.assert_alive(f"after {used} fuzz connections (seed {seed})")
    fetch_one(*srv.address(), f"after {used} fuzz connections (seed {seed})")
    with connect(*srv.address()) as sock:
        sock.sendall(REQUEST * 16)
        got = recv_exactly(sock, 16 * len(RESPONSE), "16 pipelined requests after fuzzing")
        assert got == RESPONSE * 16, f"16 pipelined requests after fuzzing (seed {seed})"
    assert wait_until(lambda: fd_count(srv.pid) == baseline, timeout=5.0), (
        f"expected the descriptor count back to {baseline} after fuzzing (seed {seed}), "
        f"got {fd_count(srv.pid)}: {fd_targets(srv.pid)}"
    )
