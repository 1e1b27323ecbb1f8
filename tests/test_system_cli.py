"""`orch system`'s answers to bad input: one line, exit 2. Not being root is shown by
running orch as the unprivileged user `nobody` (setpriv), with an interpreter that user
may run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from orch_helpers import only_line, orch
from server_helpers import REPO

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
INVENTORY = (
    "hosts:\n  local: {connection: local}\n  spare: {connection: local}\n"
    "target: {host: local, cpus: [0]}\nload: {host: local, cpus: [1]}\n"
)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder `nobody` can read (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="orch-system-"))
    folder.chmod(0o755)
    (folder / "hosts.yaml").write_text(INVENTORY)
    (folder / "hosts.yaml").chmod(0o644)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def _python_for_nobody() -> str | None:
    """An interpreter of this Python version that `nobody` can start, or None."""
    wanted = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.realpath(sys.executable)] + [
        os.path.join(folder, f"python{wanted}")
        for folder in ("/usr/bin", "/usr/local/bin", *os.get_exec_path())
    ]
    for python in dict.fromkeys(candidates):
        if not os.path.isfile(python):
            continue
        probe = subprocess.run(
            [*NOBODY, "sh", "-c", f'exec "{python}" -c "import sys; print(sys.version[:4])"'],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == wanted:
            return python
    return None


def test_an_unknown_host_isonly_line(shared_dir: Path) -> None:
    inventory = str(shared_dir / "hosts.yaml")
    for command in (["system"], ["system", "tune"], ["system", "reset"]):
        refused = orch(*command, "-i", inventory, "--host", "nope", timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert only_line(refused.stderr) == (
            f"orch: error: --host: 'nope' is not a target or load host in {inventory} (they "
            "are: local)"
        )
    spare = orch("system", "-i", inventory, "--host", "spare", timeout=60)
    assert spare.returncode == 2 and "'spare' is not a target or load host" in spare.stderr


def test_tune_on_resume_is_refused(tmp_path: Path) -> None:
    refused = orch("run", "--resume", str(tmp_path), "--tune", timeout=60)
    assert refused.returncode == 2
    assert "--resume: --tune cannot be combined with it" in only_line(refused.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv to nobody needs root")
@pytest.mark.parametrize(("command", "doing"), [("tune", "tuning"), ("reset", "orch system reset")])
def test_tune_and_reset_need_root(shared_dir: Path, command: str, doing: str) -> None:
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no interpreter of this Python version that nobody may run")
    paths = [str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        "HOME": str(shared_dir),
    }
    refused = subprocess.run(
        [*NOBODY, python, "-m", "orchestrator", "system", command, "-i", "hosts.yaml"],
        cwd=shared_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert only_line(refused.stderr) == (
        f"orch: error: local: {doing} needs root there (orch runs as uid 65534)"
    )
    shown = subprocess.run(
        [*NOBODY, python, "-m", "orchestrator", "system", "-i", "hosts.yaml"],
        cwd=shared_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr  # showing needs no root
    assert shown.stdout.startswith("local: target, load\n")
