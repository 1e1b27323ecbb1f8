"""The one protocol every load tool follows: the command for a load point, whether it
succeeded, its output parsed into a LoadResult, and its load model in words.

run/ drives a `LoadTool` without knowing which tool it is; each tool's own module (k6.py,
wrk.py) knows its command line and output format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.hosts.base import CommandResult
from orchestrator.load.points import LoadPoint, Profile
from orchestrator.load.result import LoadResult


@dataclass(frozen=True)
class LoadCommand:
    """One load-tool invocation on the load host."""

    argv: list[str]
    env: dict[str, str]
    summary_path: str | None  # the file holding the parseable result; None: it is in stdout


class LoadTool(Protocol):
    """A load tool ready to run on a load host."""

    @property
    def name(self) -> str:
        """What `--load-tool` called it: k6, wrk or wrk-pipelined."""

    @property
    def kind(self) -> str:
        """The program: k6 or wrk."""

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
