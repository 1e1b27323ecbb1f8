"""The catalogue's servers on the target: their sources synced by content hash, built when
out of date, their programs found, their versions asked.

Whether a build is out of date is asked in one command for every server: an entry's own
probe (`fresh`, e.g. `make -q`, which runs no compiler), else the content hash of its
sources and build command against the one its last successful build left on the target.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.catalogue.entry import fill
from orchestrator.catalogue.read import remote_folder
from orchestrator.catalogue.spec import ServerSpec
from orchestrator.deploy.sync import SyncReport, local_hashes, sync_tree
from orchestrator.hosts.base import Host
from orchestrator.log import Log

BUILD_TIMEOUT_SECONDS = 1800.0
STAMPS_DIR = "built"  # below the workdir: the content hash of each server's last build
# Where Debian keeps daemons such as nginx; not on a normal user's PATH.
EXTRA_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


@dataclass
class ServersOnTarget:
    """Where each server's sources and program are on the target, and what failed."""

    sources: dict[str, str] = field(default_factory=dict)  # server -> synced folder
    programs: dict[str, str] = field(default_factory=dict)  # server -> program path
    built: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    build_failures: dict[str, str] = field(default_factory=dict)  # server -> output tail
    unavailable: dict[str, str] = field(default_factory=dict)  # server -> why
    versions: dict[str, str] = field(default_factory=dict)  # server -> its version line
    syncs: list[SyncReport] = field(default_factory=list)


def sync_sources(
    host: Host, servers: Sequence[ServerSpec], workdir: str, log: Log
) -> tuple[dict[str, str], list[SyncReport]]:
    """Sync each sources folder once (servers may share one) to workdir/<its name>."""
    folders: dict[str, tuple[str, set[str]]] = {}
    sources: dict[str, str] = {}
    for server in servers:
        entry, name = server.entry, remote_folder(server.entry)
        if entry.sources is None or name is None:
            continue
        remote, outputs = folders.setdefault(entry.sources, (f"{workdir}/{name}", set()))
        outputs.update(entry.outputs)
        sources[server.name] = remote
    reports = []
    for local, (remote, outputs) in folders.items():
        report = sync_tree(host, Path(local), remote, sorted(outputs))
        if report.copied or report.removed:
            log(
                f"synced {local} to {host.name}: {len(report.copied)} copied, "
                f"{len(report.removed)} removed, {report.unchanged} unchanged"
            )
        reports.append(report)
    return sources, reports


def _build_values(host: Host, folder: str | None) -> dict[str, str]:
    return {"python": shlex.quote(host.python), "sources": shlex.quote(folder or "")}


def build_hash(server: ServerSpec, command: str) -> str:
    """What a build depends on: its sources' content and its command."""
    digest = hashlib.sha256(command.encode())
    entry = server.entry
    if entry.sources is not None:
        for name, value in local_hashes(Path(entry.sources), entry.outputs).items():
            digest.update(f"\0{name}\0{value}".encode())
    return digest.hexdigest()


def build_servers(
    host: Host, servers: Sequence[ServerSpec], workdir: str, sources: dict[str, str], log: Log
) -> tuple[list[str], list[str], dict[str, str]]:
    """Build what is out of date; return (built, already up to date, failures with output)."""
    with_build = [s for s in servers if s.entry.build is not None]
    stamps = f"{workdir}/{STAMPS_DIR}"
    hashes: dict[str, str] = {}
    probe = ""
    for server in with_build:
        folder = sources.get(server.name, workdir)
        values = _build_values(host, folder)
        command = fill(server.entry.build or "", values)
        hashes[server.name] = build_hash(server, command)
        if server.entry.fresh is not None:
            test = f"(cd {shlex.quote(folder)} && {fill(server.entry.fresh, values)})"
        else:
            stamp = shlex.quote(f"{stamps}/{server.name}")
            test = f'[ "$(cat {stamp} 2>/dev/null)" = {hashes[server.name]} ]'
        name = server.name
        probe += f"{test} >/dev/null 2>&1 && echo 'fresh {name}' || echo 'stale {name}'\n"
    if not probe:
        return [], [], {}
    lines = host.run(["sh", "-c", probe], timeout=120).stdout.splitlines()
    stale = [line.split()[1] for line in lines if line.startswith("stale ")]
    fresh = [s.name for s in with_build if s.name not in stale]
    if not stale:
        return [], fresh, {}
    log(f"building {', '.join(stale)} on {host.name}")
    built, failures = [], {}
    for server in with_build:
        if server.name not in stale:
            continue
        folder = sources.get(server.name, workdir)
        command = fill(server.entry.build or "", _build_values(host, folder))
        host.run(["mkdir", "-p", folder], timeout=30)
        result = host.run(
            ["sh", "-c", command], cwd=folder, timeout=BUILD_TIMEOUT_SECONDS, check=False
        )
        if result.ok:
            built.append(server.name)
            if server.entry.fresh is None:
                host.write_text(f"{stamps}/{server.name}", hashes[server.name])
        else:
            output = (result.stdout + result.stderr).strip().splitlines()
            failures[server.name] = "\n".join(output[-30:]) or f"exit status {result.exit_code}"
    return built, fresh, failures


def find_programs(
    host: Host, servers: Sequence[ServerSpec], workdir: str, sources: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Each server's program on the target as an absolute path (a relative one is in its
    sources; a bare name is looked up on PATH and the sbin folders), in one command;
    returns (programs, why the others cannot run)."""
    script = ""
    for server in servers:
        folder = sources.get(server.name, workdir)
        program = fill(server.entry.start_words()[0], {"sources": folder})
        if "/" in program:
            path = program if program.startswith("/") else f"{folder}/{program}"
            ok = shlex.quote(f"ok {server.name} {path}")
            script += f"[ -x {shlex.quote(path)} ] && echo {ok}"
        else:
            script += (
                f'p=$(PATH="$PATH:{EXTRA_PATH}" command -v {shlex.quote(program)}) && '
                f'echo "ok {server.name} $p"'
            )
        script += f" || echo 'missing {server.name}'\n"
    found: dict[str, str] = {}
    for line in host.run(["sh", "-c", script], timeout=60).stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, path = rest.partition(" ")
        if status == "ok":
            found[name] = path
    missing = {}
    for server in servers:
        if server.name not in found:
            program = server.entry.start_words()[0]
            where = "after its build" if "/" in program else f"on PATH or in {EXTRA_PATH}"
            missing[server.name] = f"{program} is not on target {host.name} ({where})"
    return found, missing


def server_versions(
    host: Host, servers: Sequence[ServerSpec], sources: dict[str, str]
) -> dict[str, str]:
    """The first line each entry's `version` command prints (stdout or stderr), run in its
    synced sources when it has any."""
    versions = {}
    for server in servers:
        if server.entry.version is None:
            continue
        folder = sources.get(server.name)
        command = fill(server.entry.version, _build_values(host, folder))
        ran = host.run(
            ["sh", "-c", f'PATH="$PATH:{EXTRA_PATH}"; {command} 2>&1'],
            cwd=folder,
            timeout=30,
            check=False,
        )
        lines = ran.stdout.strip().splitlines()
        versions[server.name] = lines[0] if ran.ok and lines else "unknown"
    return versions


def prepare_servers(
    host: Host, servers: Sequence[ServerSpec], workdir: str, log: Log
) -> ServersOnTarget:
    """Sync, build what is out of date, and find every server's program on the target."""
    sources, syncs = sync_sources(host, servers, workdir, log)
    built, fresh, failures = build_servers(host, servers, workdir, sources, log)
    for name, output in failures.items():
        log(f"build of {name} failed on {host.name}:\n{output}")
    runnable = [s for s in servers if s.name not in failures]
    programs, unavailable = find_programs(host, runnable, workdir, sources)
    return ServersOnTarget(
        sources=sources,
        programs=programs,
        built=built,
        up_to_date=fresh,
        build_failures=failures,
        unavailable=unavailable,
        versions=server_versions(host, [s for s in servers if s.name in programs], sources),
        syncs=syncs,
    )
