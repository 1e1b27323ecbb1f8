"""Shared fixtures for the server tests: build the servers once, start and kill them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import SERVER_NAMES, ServerBuilds, ServerLauncher


def _servers_under_test(session: pytest.Session) -> list[str]:
    names: list[str] = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("server_name") if callspec is not None else None
        if isinstance(name, str) and name in SERVER_NAMES and name not in names:
            names.append(name)
    return names


@pytest.fixture(scope="session")
def server_builds(request: pytest.FixtureRequest) -> ServerBuilds:
    """Runs make once for all servers the selected tests are parametrised with.

    Failures are recorded, not raised: `ServerLauncher.binary()` turns them into test
    failures carrying make's output.
    """
    return ServerBuilds(_servers_under_test(request.session))


@pytest.fixture
def server_launcher(server_name: str, server_builds: ServerBuilds) -> Iterator[ServerLauncher]:
    """Start servers of kind `server_name` (a parameter the test module supplies).

    Building is checked and servers are started inside the test body (via `start()`),
    so a build or startup failure makes the test fail rather than error in setup.
    """
    launcher = ServerLauncher(server_name, server_builds)
    try:
        yield launcher
    finally:
        launcher.kill_all()


# --- test tiers -------------------------------------------------------------------------
# Every test belongs to one tier (pytest -m TIER): its module's below, unless the test is
# marked with another tier itself. A module missing here fails collection.
TIERS = {
    "unit": "pure logic and the CLI's answers to bad input; no server, no load (< 1 min)",
    "servers": "the six server binaries, built and probed directly",
    "e2e": "real orch runs in loopback mode: deploy, servers, k6 and wrk",
    "lab": "two-machine mode over SSH in network namespaces (root)",
}
MODULE_TIERS = {
    "test_bad_input": "unit",
    "test_catalogue": "unit",
    "test_catalogue_e2e": "e2e",
    "test_cost_parsers": "unit",
    "test_cost_e2e": "e2e",
    "test_cost_units": "unit",
    "test_e2e_loopback": "e2e",
    "test_fault_units": "unit",
    "test_h2load": "unit",
    "test_h2load_e2e": "e2e",
    "test_faults_lab": "lab",
    "test_faults_loopback": "e2e",
    "test_host_contract": "lab",
    "test_import_rules": "unit",
    "test_inventory": "unit",
    "test_inventory_load_hosts": "unit",
    "test_k6_parse": "unit",
    "test_lab": "lab",
    "test_lab_topology": "unit",
    "test_load_agent": "unit",
    "test_load_hosts_e2e": "e2e",
    "test_load_hosts_lab": "lab",
    "test_load_hosts_report": "unit",
    "test_load_merge": "unit",
    "test_load_result": "unit",
    "test_load_split": "unit",
    "test_placement": "unit",
    "test_placement_e2e": "e2e",
    "test_plan": "unit",
    "test_precision": "unit",
    "test_precision_report": "unit",
    "test_precision_e2e": "e2e",
    "test_plots": "unit",
    "test_rate_verdict": "unit",
    "test_report": "unit",
    "test_run_formats": "unit",
    "test_saturation": "unit",
    "test_server_conformance": "servers",
    "test_server_fuzz": "servers",
    "test_ssh_host": "unit",
    "test_system_cli": "unit",
    "test_system_e2e": "e2e",
    "test_system_record": "unit",
    "test_system_trees": "unit",
    "test_verify": "unit",
    "test_startup": "unit",
    "test_stats": "unit",
    "test_sweep_e2e": "e2e",
    "test_sweeps": "unit",
    "test_wrk": "unit",
}


def pytest_configure(config: pytest.Config) -> None:
    for tier, meaning in TIERS.items():
        config.addinivalue_line("markers", f"{tier}: {meaning}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        own = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        if own:
            continue
        module = Path(item.nodeid.split("::")[0]).stem
        tier = MODULE_TIERS.get(module) or ("servers" if module.startswith("test_server_") else "")
        if tier not in TIERS:
            raise pytest.UsageError(
                f"{module}: no test tier; add it to MODULE_TIERS in conftest.py"
            )
        item.add_marker(getattr(pytest.mark, tier))
