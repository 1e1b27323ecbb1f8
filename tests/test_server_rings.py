"""The three io_uring servers set up the same ring, and every server names its kernel.

The start-up line each server prints (servers/README.md) says which setup flags its ring
was created with: C, Rust and Zig must ask for, and get, the same ones.
"""

from __future__ import annotations

import pytest
from server_helpers import STARTUP_RE, ServerBuilds, ServerLauncher


@pytest.mark.parametrize("api", ["epoll", "io_uring"])
def test_languages_report_the_same_setup(server_builds: ServerBuilds, api: str) -> None:
    """The start-up lines of c-API, rust-API and zig-API agree on everything but the
    features (io_uring: the same setup_flags; the features are the kernel's)."""
    lines: dict[str, str] = {}
    setups: dict[str, tuple[str | None, ...]] = {}
    for language in ("c", "rust", "zig"):
        launcher = ServerLauncher(f"{language}-{api}", server_builds)
        try:
            line = launcher.start().startup_line
        finally:
            launcher.kill_all()
        match = STARTUP_RE.fullmatch(line) if line is not None else None
        assert match is not None, f"expected a start-up line from {language}-{api}, got {line!r}"
        lines[language] = match.string
        setups[language] = (match["api"], match["kernel"], match["setup_flags"])
    assert len(set(setups.values())) == 1, (
        f"expected the same api, kernel and setup_flags from the three {api} servers, got "
        + "; ".join(f"{language}: {line.strip()!r}" for language, line in lines.items())
    )
