"""One interface over the load tools: the command for a profile, success, parsing, the model.

bench.py drives a `LoadTool` without knowing which tool it is; each tool's own module
knows its command line and output format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import CommandResult
from orchestrator.load import k6, wrk
from orchestrator.load.points import Profile
from orchestrator.load.result import LoadResult

LOAD_TOOL_NAMES = ("k6", "wrk", "wrk-pipelined")
K6_THRESHOLDS_CROSSED = 99  # k6's exit status when thresholds fail; its summary is valid


@dataclass(frozen=True)
class LoadCommand:
    """One load-tool invocation on the load host."""

    argv: list[str]
    env: dict[str, str]
    summary_path: str | None  # the file holding the parseable result; None: it is in stdout


@dataclass(frozen=True)
class LoadTool:
    """A load tool ready to run on the load host."""

    kind: Literal["k6", "wrk"]
    path: str  # the binary on the load host
    script: str  # k6/simple.js or wrk/orch.lua on the load host
    threads: int = 1  # wrk threads (one per load CPU)
    pipeline: int = 1  # wrk requests in flight per connection
    version: str = ""

    @property
    def label(self) -> str:
        """`k6`, `wrk` or `wrk-pipelined-16`."""
        return f"wrk-pipelined-{self.pipeline}" if self.pipeline > 1 else self.kind

    @property
    def raw_output_name(self) -> str:
        """File name for the tool's console output in the cell directory."""
        return f"{self.kind}-output.txt"

    def command(self, url: str, profile: Profile, summary_path: str) -> LoadCommand:
        """The invocation running `profile` against `url`; k6 exports to `summary_path`."""
        if self.kind == "k6":
            return LoadCommand(
                k6.k6_command(self.path, self.script, summary_path),
                k6.k6_environment(url, profile),
                summary_path,
            )
        argv = wrk.wrk_command(self.path, self.script, url, profile, self.threads, self.pipeline)
        return LoadCommand(argv, {}, None)

    def succeeded(self, result: CommandResult) -> bool:
        """Whether the run produced a usable result."""
        if self.kind == "k6":
            return result.ok or result.exit_code == K6_THRESHOLDS_CROSSED
        return result.ok

    def parse(self, output: str, summary: str | None, profile: Profile, source: str) -> LoadResult:
        """The LoadResult of one run from its console output and (k6) summary file."""
        if self.kind == "k6":
            if summary is None:
                raise HostError(f"{source}: k6 left no summary")
            return k6.parse_k6_summary(summary, profile.duration, source=source)
        return wrk.parse_wrk_output(output, self.pipeline, source=source)

    def model(self, profile: Profile) -> str:
        """The load model in words, as the report states it."""
        if self.kind == "wrk":
            return wrk.describe_wrk(profile, self.threads, self.pipeline)
        if profile.rate is not None:
            return (
                f"open model: k6 constant-arrival-rate, {profile.rate} req/s for "
                f"{profile.duration:g} s, up to {profile.max_vus} VUs"
            )
        return (
            f"closed loop: k6 ramping VUs up to {profile.max_vus} over {profile.duration:g} s, "
            "one request per iteration"
        )


def check_combination(name: str, pipeline: int | None, profile: Profile) -> int:
    """Validate --load-tool/--pipeline/--rate together; return the pipeline depth to use."""
    if name not in LOAD_TOOL_NAMES:
        raise UserError(f"--load-tool: unknown tool '{name}' (known: {', '.join(LOAD_TOOL_NAMES)})")
    if pipeline is not None and pipeline < 1:
        raise UserError(f"--pipeline: must be at least 1, got {pipeline}")
    if name == "k6" and pipeline not in (None, 1):
        raise UserError("--pipeline: k6 does not pipeline requests; use --load-tool wrk")
    if name != "k6" and profile.rate is not None:
        raise UserError("--rate: wrk has no open model; use --load-tool k6 for a fixed rate")
    if name == "wrk-pipelined":
        return pipeline or wrk.PIPELINE_DEPTH
    return pipeline or 1
