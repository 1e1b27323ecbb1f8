"""Where orch's own files are: the servers tree, the k6 script, the default results folder."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import UserError


def project_root() -> Path:
    """The checkout holding servers/ and k6/ ($ORCH_HOME, else the package's parent, else cwd)."""
    candidates = []
    if os.environ.get("ORCH_HOME"):
        candidates.append(Path(os.environ["ORCH_HOME"]))
    candidates += [Path(__file__).resolve().parent.parent, Path.cwd()]
    for root in candidates:
        if (root / "servers" / "Makefile").is_file() and (root / "k6" / "simple.js").is_file():
            return root
    raise UserError(
        "cannot find the orch checkout (servers/Makefile and k6/simple.js); "
        "run from the repository or set ORCH_HOME"
    )
