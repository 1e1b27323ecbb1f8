"""Each language's own unit tests of the server code, run through `make -C servers`.

They show what no running server can here: the connection-table rule under a huge hard
descriptor limit (this machine cannot raise one), besides framing and argument parsing.
"""

from __future__ import annotations

import subprocess

import pytest
from server_helpers import BUILD_TIMEOUT, make_command, run_make


@pytest.mark.parametrize("target", ["test-c", "test-rust", "test-zig"])
def test_unit_tests_pass(target: str) -> None:
    """`make -C servers TARGET` builds and runs that language's unit tests: exit status 0."""
    command = make_command(target)
    try:
        proc = run_make(command, BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"expected `{' '.join(command)}` to finish within {BUILD_TIMEOUT:.0f} s")
    output = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, (
        f"expected `{' '.join(command)}` to pass, got exit status {proc.returncode}; "
        f"output (last 8,000 characters):\n{output[-8000:]}"
    )
