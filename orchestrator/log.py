"""How orch tells its user what it does: a `Log` takes one line; `fail_line` prints a
final one-line error."""

from __future__ import annotations

import sys
from collections.abc import Callable

Log = Callable[[str], None]


def fail_line(message: str) -> None:
    """`orch: MESSAGE` on stderr, unwrapped (rich would wrap it at the terminal width)."""
    print(f"orch: {message}", file=sys.stderr, flush=True)
