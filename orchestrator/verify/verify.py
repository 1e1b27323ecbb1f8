"""Verify before measuring: start the server as a cell would, ask it what the load tools will
ask (from the load host), judge the answers, stop it by PID.

A server that answers wrongly (16 pipelined requests getting one answer, a split request
getting two) would distort a table without failing a single request, so it is not
measured unless the user allows it; one that does not start is left to fail its cells,
each with its log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from orchestrator.catalogue.spec import ServerSpec
from orchestrator.errors import HostError
from orchestrator.hosts.base import describe_exit
from orchestrator.leftovers import forget_server, record_server
from orchestrator.measure.context import RunContext
from orchestrator.measure.http_client import Step, exchange, request
from orchestrator.measure.server_process import (
    check_port_free,
    fetch_log,
    log_tail,
    start_server,
    stop_server,
    wait_until_ready,
)
from orchestrator.results.cell_result import utc_now
from orchestrator.results.rundir import write_atomic
from orchestrator.results.verification import Verification, VerifyStep
from orchestrator.verify.answers import judge

VERIFY_DIR = "verify"  # in the run directory: verify/<server>/server.log, answers.txt
PIPELINED = 16


def _steps(address: str, port: int) -> list[tuple[str, int, Step]]:
    one = request(address, port)
    half = len(one) // 2
    return [
        ("one request", 1, Step((one,))),
        (f"{PIPELINED} pipelined requests in one write", PIPELINED, Step((one * PIPELINED,))),
        ("one request in two writes", 1, Step((one[:half], one[half:]))),
    ]


def _ask(ctx: RunContext, server: ServerSpec, pid: int, log_path: str) -> list[VerifyStep]:
    """The three exchanges, judged; a server that died meanwhile fails the last step."""
    address = ctx.inventory.dial_address
    planned = _steps(address, ctx.port)
    replies = exchange(ctx.load, address, ctx.port, [step for _, _, step in planned])
    steps = [
        judge(name, count, reply.data, reply.closed, reply.error, server.entry.response)
        for (name, count, _), reply in zip(planned, replies, strict=True)
    ]
    status = ctx.target.exit_status(pid)
    if status is not None:
        died = f"the server {describe_exit(status)}: {log_tail(ctx.target, log_path)}"
        steps[-1] = steps[-1].model_copy(update={"problem": died})
    return steps


def verify_server(ctx: RunContext, server: ServerSpec) -> Verification:
    """Start `server` on its own, ask it, stop it; keep its log and answers in the run
    directory (verify/<server>/)."""
    ctx = ctx.for_server(server)
    remote = f"{ctx.deployed.target_workdir}/runs/{ctx.run_id}/{server.name}/{VERIFY_DIR}"
    log_path = f"{remote}/server.log"
    local = ctx.run_dir.path / VERIFY_DIR / server.name
    name, response = server.name, server.entry.response
    pid: int | None = None
    try:
        try:
            check_port_free(ctx)
            pid, argv = start_server(ctx, server, remote, log_path)
            record_server(local, ctx.target, pid, argv[0])
            wait_until_ready(ctx, server, pid, log_path)
        except HostError as exc:
            return Verification(
                server=name, response=response, at=utc_now(), outcome="not started", error=str(exc)
            )
        steps = _ask(ctx, server, pid, log_path)
    finally:
        if pid is not None:
            with contextlib.suppress(HostError):
                stop_server(ctx, server, pid)
                forget_server(local)
        fetch_log(ctx.target, log_path, local / "server.log")
    answered = "".join(
        f"{step.name}: {step.answers} answers, {step.received_bytes} bytes"
        f"{': ' + step.problem if step.problem else ''}\n  {step.excerpt or '(as required)'}\n"
        for step in steps
    )
    with contextlib.suppress(OSError):
        write_atomic(local / "answers.txt", answered)
    first = steps[0]
    return Verification(
        server=name,
        response=response,
        at=utc_now(),
        outcome="passed" if all(step.passed for step in steps) else "failed",
        steps=steps,
        answer_bytes=first.received_bytes if first.passed else None,
    )


class Verifier:
    """Verify each server once per orch run (and so after each deploy's build), telling
    `on_result` what it found."""

    def __init__(self, on_result: Callable[[Verification], None]) -> None:
        self.on_result = on_result
        self.results: dict[str, Verification] = {}

    def __call__(self, ctx: RunContext, server: ServerSpec) -> Verification:
        """The verification of `server`, made now if it is the first time."""
        if server.name not in self.results:
            found = verify_server(ctx, server)
            self.results[server.name] = found
            self.on_result(found)
        return self.results[server.name]
