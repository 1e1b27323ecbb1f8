"""What verify found before a server's first cell, as run.json keeps it and reports say it.

Verify sends, from the load host, one request; then 16 pipelined requests in one write;
then one request split across two writes (one connection each), and judges every answer:
the reference servers' 81 exact bytes, or, for other servers, a valid HTTP/1.1 200 with
a Content-Length body on a connection kept alive.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Outcome = Literal["passed", "failed", "not started"]


class VerifyStep(BaseModel):
    """One exchange of verify: what was sent, what came back, what is wrong with it."""

    model_config = ConfigDict(extra="forbid")

    name: str  # e.g. `16 pipelined requests in one write`
    requests: int
    answers: int  # complete answers received
    received_bytes: int
    problem: str | None = None  # None: every answer as required
    excerpt: str = ""  # the start of what it answered, escaped, for the report

    @property
    def passed(self) -> bool:
        """True when the step found nothing wrong."""
        return self.problem is None


class Verification(BaseModel):
    """A server's verify: its steps, or why it could not be asked (it did not start)."""

    model_config = ConfigDict(extra="forbid")

    server: str
    at: str
    response: Literal["exact", "http"]  # what each answer had to be
    outcome: Outcome
    steps: list[VerifyStep] = []
    error: str | None = None  # why it was not started or not ready (with its log tail)
    answer_bytes: int | None = None  # bytes of one answer, from the first step

    @property
    def passed(self) -> bool:
        """True when every step passed."""
        return self.outcome == "passed"

    @property
    def refused(self) -> bool:
        """True when the server answered and an answer was wrong: it is not measured
        unless --allow-unverified (one that did not start fails its cells on its own)."""
        return self.outcome == "failed"

    def summary(self) -> str:
        """One line: `passed (81 bytes per answer, the exact reference response)` or what
        failed."""
        if self.outcome == "not started":
            return f"could not be verified: {self.error}"
        if self.passed:
            size = f"{self.answer_bytes} bytes per answer" if self.answer_bytes else "answers"
            what = (
                "the exact reference response"
                if self.response == "exact"
                else "valid HTTP/1.1 200 answers with a body"
            )
            return f"passed ({size}, {what})"
        problems = [f"{step.name}: {step.problem}" for step in self.steps if step.problem]
        return "FAILED: " + "; ".join(problems)
