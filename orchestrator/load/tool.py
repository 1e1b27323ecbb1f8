"""The one protocol every load tool follows: the command for a load point, whether it
succeeded, its output parsed into a LoadResult, and its load model in words.

run/ drives a `LoadTool` without knowing which tool it is; each tool's own module (k6.py,
wrk.py, h2load.py) knows its command line and output format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.errors import UserError
from orchestrator.hosts.base import CommandResult, Host
from orchestrator.load.points import LoadPoint, Profile
from orchestrator.load.result import LoadResult

# Set to 1: keep the load tools' raw samples (k6's CSV, h2load's per-request log) on the
# load hosts after reducing them (for audits, and the tests that check the merge).
KEEP_SAMPLES_ENV = "ORCH_KEEP_LOAD_SAMPLES"


@dataclass(frozen=True)
class LoadCommand:
    """One load-tool invocation on the load host."""

    argv: list[str]
    env: dict[str, str]
    summary_path: str | None  # the file holding the parseable result; None: it is in stdout
    # Run on the load host after the tool succeeded, before its summary is read (h2load:
    # its per-request log reduced there into the summary file); None: nothing.
    after: list[str] | None = None


class LoadTool(Protocol):
    """A load tool ready to run on a load host."""

    @property
    def name(self) -> str:
        """What `--load-tool` called it: k6, wrk, wrk-pipelined or h2load."""

    @property
    def kind(self) -> str:
        """The program: k6, wrk or h2load."""

    @property
    def path(self) -> str:
        """The binary on the load host."""

    @property
    def version(self) -> str:
        """Its version line."""

    @property
    def label(self) -> str:
        """How the report names it (`wrk-pipelined-16`)."""

    @property
    def raw_output_name(self) -> str:
        """File name for its console output in the cell directory."""

    def command(
        self, url: str, profile: Profile, point: LoadPoint, output_dir: str, prefix: str = ""
    ) -> LoadCommand:
        """The invocation holding `point` for the profile's duration against `url`; files
        it writes go to `output_dir` on the load host, their names starting with `prefix`."""

    def succeeded(self, result: CommandResult) -> bool:
        """Whether the run produced a usable result."""

    def parse(
        self, output: str, summary: str | None, profile: Profile, point: LoadPoint, source: str
    ) -> LoadResult:
        """The LoadResult of one run from its console output and summary file."""

    def model(self, profile: Profile, point: LoadPoint) -> str:
        """The load model in words, as the report states it."""


def find_program(host: Host, program: str, configured: str | None, key: str, package: str) -> str:
    """A load tool's program on the load host: `configured` (the inventory's `key`), else
    `program` on PATH; a UserError saying what to install or set when neither is there."""
    if configured:
        path = host.expand(configured)
        if not host.run(["test", "-x", path], timeout=30, check=False).ok:
            raise UserError(f"inventory {key}: {path} is not executable on {host.name}")
        return path
    found = host.run(["sh", "-c", f"command -v {program}"], timeout=30, check=False)
    if not found.stdout.strip():
        raise UserError(
            f"load host {host.name}: {program} not found (apt-get install {package}, or set {key})"
        )
    return found.stdout.strip()
