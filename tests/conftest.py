"""Shared fixtures for the server tests: build the servers once, start and kill them."""

from __future__ import annotations

from collections.abc import Iterator

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
