"""Requests sent to a server from the load host, where the load tool connects from: a small
Python client run there by the host's Python, which reports the bytes each connection got.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError
from orchestrator.hosts.base import Host

# argv: address, port, then the steps as JSON: each opens its own connection, makes its
# writes (pausing between them), then reads until the connection stays quiet, closes or a
# time limit passes. Prints one JSON list: per step the bytes received (base64), whether
# the server closed the connection, and an error if the connection failed.
CLIENT = r"""
import base64, json, socket, sys, time
address, port, steps = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
out = []
for step in steps:
    got, closed, error = b"", False, None
    try:
        s = socket.create_connection((address, port), timeout=step["first"])
    except OSError as e:
        out.append({"data": "", "closed": False, "error": "cannot connect: %s" % (e.strerror or e)})
        continue
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, chunk in enumerate(step["writes"]):
            if i:
                time.sleep(step["pause"])
            s.sendall(base64.b64decode(chunk))
        s.settimeout(step["first"])
        deadline = time.monotonic() + step["limit"]
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
            got += chunk
            s.settimeout(step["quiet"])
    except OSError as e:
        error = "connection failed: %s" % (e.strerror or e)
    finally:
        s.close()
    out.append({"data": base64.b64encode(got).decode(), "closed": closed, "error": error})
print(json.dumps(out))
"""
FIRST_ANSWER_SECONDS = 2.0  # the wait for a first byte
QUIET_SECONDS = 0.3  # no more bytes for this long: the server has said all it will
STEP_LIMIT_SECONDS = 3.0
SPLIT_PAUSE_SECONDS = 0.1  # between the two writes of a split request


def request(address: str, port: int) -> bytes:
    """The request wrk sends: `GET /` with a Host header."""
    host = f"[{address}]" if ":" in address else address
    return f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


@dataclass(frozen=True)
class Step:
    """What one connection sends: its writes, in order."""

    writes: tuple[bytes, ...]
    first: float = FIRST_ANSWER_SECONDS
    quiet: float = QUIET_SECONDS
    limit: float = STEP_LIMIT_SECONDS


@dataclass(frozen=True)
class Reply:
    """What one connection received."""

    data: bytes
    closed: bool
    error: str | None


def exchange(host: Host, address: str, port: int, steps: Sequence[Step]) -> list[Reply]:
    """Run the steps from `host` against address:port; one reply per step."""
    plan = [
        {
            "writes": [base64.b64encode(w).decode() for w in step.writes],
            "pause": SPLIT_PAUSE_SECONDS,
            "first": step.first,
            "quiet": step.quiet,
            "limit": step.limit,
        }
        for step in steps
    ]
    budget = sum(step.first + step.limit + SPLIT_PAUSE_SECONDS for step in steps) + 30
    ran = host.run(
        [host.python, "-c", CLIENT, address, str(port), json.dumps(plan)],
        timeout=budget,
        check=False,
    )
    try:
        replies = json.loads(ran.stdout)
        return [Reply(base64.b64decode(r["data"]), bool(r["closed"]), r["error"]) for r in replies]
    except (ValueError, KeyError, TypeError):
        detail = (ran.stderr.strip() or ran.stdout.strip() or "no output").splitlines()[-1]
        raise HostError(
            f"the request client on {host.name} ({host.python}) failed: {detail}"
        ) from None


def answers_once(host: Host, address: str, port: int) -> bool:
    """True when one request from `host` gets the start of an HTTP answer."""
    step = Step((request(address, port),), first=1.0, quiet=0.05, limit=1.0)
    reply = exchange(host, address, port, [step])[0]
    return reply.data.startswith(b"HTTP/")
