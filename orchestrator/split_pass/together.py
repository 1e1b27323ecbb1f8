"""One pass of the load tool on several load hosts together, merged exactly.

Each load host runs its share (a k6 execution segment, or its wrk or h2load connections
and rate) under orch's load agent (load/agent.py), started by PID and pinned to the
host's load CPUs.
The pass is a barrier: every agent gets ready (k6 paused with its VUs initialised), orch
estimates each host's clock offset from the same polls, then writes one start time to
every host (corrected for an offset larger than its uncertainty); each agent resumes k6
(or starts wrk) at that time and notes when it did, so the start skew is measured, not
assumed. While the tools run, orch polls each agent; a host that stops answering fails
the pass with its name, and every other host's agent (with its tool) is stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from orchestrator.errors import HostError
from orchestrator.hosts.base import CommandResult, describe_exit, last_line
from orchestrator.leftovers import AgentLeftover, forget_agents, record_agents, stop_agents_left
from orchestrator.load import h2load
from orchestrator.load.agent import K6_API, AgentSpec, PassRecord
from orchestrator.load.descriptors import with_limit
from orchestrator.load.k6 import split_argv
from orchestrator.load.merge import merge_results
from orchestrator.load.points import LoadPoint, Profile
from orchestrator.load.result import LatencyHistogram, LoadResult
from orchestrator.load.split import Share, host_point, segment_sequence
from orchestrator.load.tool import KEEP_SAMPLES_ENV
from orchestrator.results.cell_result import LoadCpu
from orchestrator.results.rundir import RunDirectory
from orchestrator.split_pass.members import LoadMember

READY_SECONDS = 150.0  # the agent's own limit for k6's VU initialisation, and some
POLL_READY_SECONDS = 0.02
POLL_RUNNING_SECONDS = 1.0  # while the tools run: a lost host is noticed this often
POLL_ENDING_SECONDS = 0.05  # around the expected end
CLOCK_SAMPLES = 3
GO_LEAD_SECONDS = 0.2  # plus a few round trips per host, to write every go file
END_MARGIN_SECONDS = 60.0
K6_OK_STATUSES = (0, 99)  # 99: thresholds crossed, the summary is valid
HOSTS_DIR = "load-hosts"
_SUMMARIES = {"k6": "k6-summary.json", "h2load": h2load.SUMMARY_FILE}
_H2LOAD_FILES = (h2load.LOG_FILE, h2load.SUMMARY_FILE)
_T = TypeVar("_T")


@dataclass
class _Agent:
    """One member's agent in this pass: its files, PID, clock and readiness."""

    member: LoadMember
    directory: str
    prefix: str
    pid: int | None = None
    ready: bool = False
    offset: float = 0.0  # host clock minus orch's, best estimate
    uncertainty: float = float("inf")  # half the round trip of that estimate
    samples: int = 0
    status: int | None = None

    def path(self, name: str) -> str:
        return f"{self.directory}/{self.prefix}{name}"

    @property
    def applied_offset(self) -> float:
        """The offset the start time is corrected by: only one its estimate can tell
        from zero (identical clocks must not get skewed by the estimate's noise)."""
        return self.offset if abs(self.offset) > self.uncertainty else 0.0


@dataclass(frozen=True)
class PassRequest:
    """One pass to run: which server's cell (for messages), its load point and profile,
    and the prefix of its files (`warmup-` for a warm-up, '' for the measured pass)."""

    server: str
    point: LoadPoint
    profile: Profile
    prefix: str


@dataclass(frozen=True)
class PassResult:
    """A split pass: the merged result, each host's, and the load CPU of them all."""

    merged: LoadResult
    by_host: list[LoadResult]
    cpu: LoadCpu | None


def run_together(
    run_dir: RunDirectory,
    members: Sequence[LoadMember],
    pass_: PassRequest,
    remote_dir: str,
    local_dir: Path,
) -> PassResult:
    """Run one pass of `pass_`'s point on every load host at once; raise HostError naming
    the host when one fails or is lost (the others' agents stopped by PID).

    k6's raw samples (h2load's per-request logs) are deleted once reduced, unless
    ORCH_KEEP_LOAD_SAMPLES=1 (for audits, and the tests that check the merge against
    them)."""
    keep_samples = os.environ.get(KEEP_SAMPLES_ENV) == "1"
    stop_agents_left(run_dir, {m.name: m.host for m in members}, lambda _: None)
    parts = [m.share for m in members]
    # A folder per host even on the host: two load hosts may share a filesystem.
    directory = f"{remote_dir}/{HOSTS_DIR}"
    agents = [_Agent(m, f"{m.workdir}/{directory}/{m.name}", pass_.prefix) for m in members]
    try:
        for agent in agents:
            _start(agent, pass_, parts, keep_samples)
            _record(local_dir, agents)
        _wait_ready(agents)
        start = _go(agents)
        end = start + pass_.profile.duration
        _wait_done(agents, end + END_MARGIN_SECONDS, end, local_dir)
        by_host = [_collect(a, pass_, parts, local_dir) for a in agents]
    except BaseException as exc:
        note = _stop_all(agents)
        _record(local_dir, agents)
        if isinstance(exc, HostError) and note:
            raise HostError(f"{exc}; {note}") from None
        raise
    note = _stop_all(agents)
    _record(local_dir, agents)
    if note.startswith("could not"):
        raise HostError(f"after the load pass, {note}")
    merged = merge_results(by_host, max(a.uncertainty for a in agents))
    cpu = None
    if merged.cpu_seconds is not None and merged.wall_seconds:
        cpu = LoadCpu(
            cpu_seconds=merged.cpu_seconds,
            wall_seconds=merged.wall_seconds,
            # CPUs, not CPUs per host: the lab's load hosts are one machine's namespaces.
            cpus=len({(m.machine, cpu) for m in members for cpu in m.cpus}),
        )
    return PassResult(merged, by_host, cpu)


def _summary_name(kind: str) -> str | None:
    """The file a tool's result is parsed from, beside its output (None: its output)."""
    return _SUMMARIES.get(kind)


def _record(local_dir: Path, agents: Sequence[_Agent]) -> None:
    """Keep the PIDs of the agents not yet stopped in the cell's folder (none: no file)."""
    running = [
        AgentLeftover(host=a.member.name, pid=a.pid, spec=a.path("spec.json"))
        for a in agents
        if a.pid is not None
    ]
    if running:
        record_agents(local_dir, running)
    else:
        forget_agents(local_dir)


def _start(agent: _Agent, pass_: PassRequest, parts: Sequence[Share], keep: bool) -> None:
    """Write the agent's spec and start it pinned to the host's load CPUs."""
    member, host = agent.member, agent.member.host
    if not host.tcp_probe(member.dial, member.port):
        raise HostError(f"load host {member.name} cannot connect to {member.url}")
    measured = not agent.prefix
    point = host_point(pass_.point, member.index, parts, member.tool.kind)
    command = member.tool.command(member.url, pass_.profile, point, agent.directory, agent.prefix)
    argv = command.argv
    samples = agent.path("k6-samples.csv") if member.tool.kind == "k6" and measured else None
    if member.tool.kind == "k6":
        argv = split_argv(argv, K6_API, member.share.segment, segment_sequence(parts), samples)
    spec = AgentSpec(
        argv=with_limit(argv, member.nofile),
        env=dict(command.env),
        output=agent.path(member.tool.raw_output_name),
        ready=agent.path("ready.json"),
        go=agent.path("go"),
        result=agent.path("pass.json"),
        samples=samples,
        keep_samples=keep,
        k6_paused=member.tool.kind == "k6",
        ok_statuses=list(K6_OK_STATUSES) if member.tool.kind == "k6" else [0],
        after=command.after,
    )
    names = ("ready.json", "go", "pass.json", "k6-samples.csv", *_H2LOAD_FILES)
    stale = [agent.path(n) for n in names]
    try:
        clean = ["sh", "-c", 'mkdir -p "$1" && shift && rm -f "$@"', "orch", agent.directory]
        host.run([*clean, *stale])
        host.write_text(agent.path("spec.json"), spec.to_json())
        agent.pid = host.start_background(
            [host.python, member.agent, agent.path("spec.json")],
            log_path=agent.path("agent.log"),
            cpus=member.cpus,
        )
    except HostError as exc:
        raise HostError(f"load host {member.name}: cannot start its load agent: {exc}") from None


def _ask(agent: _Agent, call: Callable[[], _T]) -> _T:
    """`call` on the agent's host, once more after a failure (an SSH host reconnects a
    dropped connection first); failing twice, the host is lost: say which."""
    try:
        return call()
    except HostError:
        pass
    try:
        return call()
    except HostError as exc:
        raise HostError(f"load host {agent.member.name} lost during the load pass: {exc}") from None


def _clock_poll(agent: _Agent) -> tuple[str, float, float]:
    """The ready file's content (empty: not ready), with the host's clock and orch's
    times around the question."""
    script = 'cat "$1" 2>/dev/null; echo; date +%s.%N'
    before = time.time()
    out = agent.member.host.run(["sh", "-c", script, "orch", agent.path("ready.json")], timeout=30)
    return out.stdout, before, time.time()


def _wait_ready(agents: Sequence[_Agent]) -> None:
    """Until every agent is ready, estimating each host's clock offset on the way (the
    best of several round trips, as NTP does)."""
    deadline = time.monotonic() + READY_SECONDS
    while not all(a.ready and a.samples >= CLOCK_SAMPLES for a in agents):
        for agent in agents:
            if agent.ready and agent.samples >= CLOCK_SAMPLES:
                continue
            host = agent.member.host
            text, before, after = _ask(agent, partial(_clock_poll, agent))
            lines = text.strip().splitlines()
            with contextlib.suppress(ValueError, IndexError):
                clock = float(lines[-1])
                half = (after - before) / 2
                agent.samples += 1
                if half < agent.uncertainty:
                    agent.offset, agent.uncertainty = clock - (before + half), half
            agent.ready = agent.ready or len(lines) > 1
            if not agent.ready and agent.pid is not None:
                agent.status = _ask(agent, partial(host.exit_status, agent.pid))
                if agent.status is not None:
                    raise HostError(_agent_failure(agent, agent.status))
        if time.monotonic() > deadline:
            late = ", ".join(a.member.name for a in agents if not a.ready)
            raise HostError(f"load hosts not ready within {READY_SECONDS:g} s: {late}")
        time.sleep(POLL_READY_SECONDS)


def _go(agents: Sequence[_Agent]) -> float:
    """Write one start time (orch's clock, corrected per host) to every agent; return it."""
    worst = max(a.uncertainty for a in agents)
    start = time.time() + GO_LEAD_SECONDS + 8 * worst * len(agents)
    for agent in agents:
        go = f"{start + agent.applied_offset:.6f}\n"
        _ask(agent, partial(agent.member.host.write_text, agent.path("go"), go))
    return start


def _wait_done(
    agents: Sequence[_Agent], deadline: float, expected_end: float, local_dir: Path
) -> None:
    """Poll every agent until all have ended. A host lost (twice unanswered), or a tool
    that failed (its agent exits non-zero), raises at once: the others are not waited for."""
    while any(a.status is None for a in agents):
        now = time.time()
        if now > deadline:
            late = ", ".join(a.member.name for a in agents if a.status is None)
            raise HostError(f"load still running on {late} {END_MARGIN_SECONDS:g} s after its end")
        near = now > expected_end - 2 * POLL_RUNNING_SECONDS
        time.sleep(POLL_ENDING_SECONDS if near else POLL_RUNNING_SECONDS)
        for agent in agents:
            if agent.status is None and agent.pid is not None:
                agent.status = _poll(agent)
                if agent.status:
                    _fetch(agent, local_dir)  # raises how it failed
                    raise HostError(_agent_failure(agent, agent.status))


def _poll(agent: _Agent) -> int | None:
    """The agent's exit status, or None while it runs."""
    assert agent.pid is not None
    return _ask(agent, partial(agent.member.host.exit_status, agent.pid))


def _agent_failure(agent: _Agent, status: int) -> str:
    """Why an agent ended early: the error it recorded, else its log's last line."""
    host = agent.member.host
    why = ""
    with contextlib.suppress(HostError, ValueError):
        why = PassRecord.from_json(host.read_text(agent.path("pass.json"))).error or ""
    if not why:
        with contextlib.suppress(HostError):
            lines = host.read_text(agent.path("agent.log")).strip().splitlines()
            why = lines[-1] if lines else ""
    return f"load agent on {agent.member.name} {describe_exit(status)}: {why or 'no output'}"


def _fetch(agent: _Agent, local_dir: Path) -> tuple[PassRecord, dict[str, str]]:
    """The agent's files copied into the cell's folder: its record, and what was fetched
    (by name); a failed tool or agent raises HostError saying how it ended."""
    member, host, tool = agent.member, agent.member.host, agent.member.tool
    here = local_dir / HOSTS_DIR / member.name
    fetched: dict[str, str] = {}
    summary = _summary_name(tool.kind)
    names = ["pass.json", tool.raw_output_name] + ([summary] if summary else [])
    for name in names:
        local = here / f"{agent.prefix}{name}"
        with contextlib.suppress(HostError):
            host.get_file(agent.path(name), local)
            fetched[name] = local.read_text(encoding="utf-8", errors="replace")
    try:
        record = PassRecord.from_json(fetched.get("pass.json", ""))
    except ValueError:
        raise HostError(_agent_failure(agent, agent.status or 0)) from None
    if record.error:
        raise HostError(f"load agent on {member.name}: {record.error}")
    output = fetched.get(tool.raw_output_name, "")
    code = record.exit_status
    if not tool.succeeded(CommandResult((), code, output, "", record.wall_seconds)):
        what = "load" if not agent.prefix else "warm-up"
        last = last_line(output)
        raise HostError(f"{tool.kind} {what} pass on {member.name} {describe_exit(code)}: {last}")
    return record, fetched


def _collect(
    agent: _Agent, pass_: PassRequest, parts: Sequence[Share], local_dir: Path
) -> LoadResult:
    """One host's result: its files fetched into the cell's folder, its output parsed,
    its histogram and times taken from what its agent recorded."""
    member, tool = agent.member, agent.member.tool
    record, fetched = _fetch(agent, local_dir)
    output = fetched.get(tool.raw_output_name, "")
    point = host_point(pass_.point, member.index, parts, tool.kind)
    source = f"{pass_.server} {tool.kind} on {member.name}"
    summary = fetched.get(_summary_name(tool.kind) or "")
    parsed = tool.parse(output, summary, pass_.profile, point, source)
    # When the load began on this host's clock: its first request where the tool logs
    # it (h2load), else when the agent started (or resumed) the tool.
    began = parsed.started_at if parsed.started_at is not None else record.started_at
    result = parsed.model_copy(
        update={
            "host": member.name,
            "cpu_seconds": record.cpu_seconds,
            "started_at": began - agent.applied_offset,
            "wall_seconds": record.wall_seconds,
            "cpus": len(member.cpus),
        }
    )
    reduced = record.histogram
    if reduced is None:
        return result
    histogram = LatencyHistogram(
        buckets=[(float(us), count) for us, count in reduced.us],
        method=reduced.method,
        reduce_seconds=reduced.seconds,
    )
    if histogram.total != parsed.requests:
        raise HostError(
            f"{source}: its samples hold {histogram.total:,} request durations but its "
            f"summary counts {parsed.requests:,} requests"
        )
    return result.model_copy(
        update={"histogram": histogram, "latency": histogram.latency(parsed.latency.mean)}
    )


def _stop_all(agents: Sequence[_Agent]) -> str:
    """Stop every agent still known by PID; what was stopped, and what could not be."""
    stopped, failed = [], []
    for agent in agents:
        if agent.pid is None:
            continue
        name, tool = agent.member.name, agent.member.tool.kind
        try:
            status = agent.member.host.stop(agent.pid)
        except HostError:
            failed.append(f"{name} (PID {agent.pid})")
            continue
        if agent.status is None and status is not None:
            stopped.append(f"{tool} on {name} (agent PID {agent.pid})")
        agent.pid = None
    note = f"stopped {', '.join(stopped)} by PID" if stopped else ""
    if failed:
        note += ("; " if note else "") + f"could not stop the load agent on {', '.join(failed)}"
    return note
