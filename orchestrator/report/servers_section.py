"""What report.md says about the servers themselves: what verify found (with what a failing
server answered), the notes of catalogue entries, and which rows the verdict left out."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.results.aggregate import Row
from orchestrator.results.cell_result import CellResult
from orchestrator.results.record import RunRecord
from orchestrator.results.verdict import comparable_pairs
from orchestrator.results.verification import Verification

VERIFY_METHOD = (
    "Before its first cell each server was started alone and asked, from the load host, "
    "one request, then 16 pipelined requests in one write, then one request in two writes "
    "(a connection each). The reference servers must answer the 81 bytes of "
    "servers/README.md exactly; any other server a valid HTTP/1.1 200 with a Content-Length "
    "body for every request, keeping the connection open. A server that answers otherwise "
    "is not measured (unless `--allow-unverified`)."
)


def _verify_line(found: Verification, record: RunRecord, cells: Sequence[CellResult]) -> list[str]:
    name = found.server
    if found.outcome == "failed":
        skipped = sum(1 for c in cells if c.server == name and c.status == "skipped")
        if record.allow_unverified:
            fate = "measured anyway (`--allow-unverified`): its rows are marked unverified"
        else:
            cells_text = "1 cell" if skipped == 1 else f"{skipped} cells"
            fate = f"not measured ({cells_text} skipped; `--allow-unverified` measures it)"
        lines = [f"- {name}: **failed verify**, {fate}:"]
        for step in found.steps:
            if step.problem:
                answered = f"`{step.excerpt}`" if step.excerpt else "nothing"
                lines.append(f"  - {step.name}: {step.problem}; it answered: {answered}")
        return lines
    if found.outcome == "not started":
        return [f"- {name}: {found.summary()} (its cells then ran and failed on their own)"]
    return [f"- {name}: {found.summary()}"]


def verify_lines(record: RunRecord, cells: Sequence[CellResult]) -> list[str]:
    """The Verify section (none for runs from before verify)."""
    if not record.verification:
        return []
    out = ["## Verify", "", VERIFY_METHOD, ""]
    for name in record.server_order:
        found = record.verification.get(name)
        if found is not None:
            out += _verify_line(found, record, cells)
    return [*out, ""]


def server_note_lines(record: RunRecord) -> list[str]:
    """The notes catalogue entries give about themselves (nginx: what it is, how it runs)."""
    out = []
    for name, entry in record.servers.items():
        if entry.note:
            version = record.tools.get(name)
            about = f"{entry.api}" + (f", {version}" if version else "")
            out.append(f"- {name} ({about}): {entry.note}")
    return out


def outside_verdict_line(record: RunRecord, rows: Sequence[Row]) -> str | None:
    """Which measured servers the verdict leaves out, and why; None when it uses them all."""
    paired = {row.server for _, a, b in comparable_pairs(rows) for row in (a, b)}
    why: dict[str, str] = {}
    for row in rows:
        if row.server in paired or row.server in why:
            continue
        if not row.verified:
            why[row.server] = "failed verify"
        elif row.api not in ("epoll", "io_uring"):
            why[row.server] = f"API {row.api}"
        else:
            other = "io_uring" if row.api == "epoll" else "epoll"
            why[row.server] = f"no {other} server of language {row.language} in this run"
    if not why:
        return None
    listed = "; ".join(f"{name} ({reason})" for name, reason in why.items())
    return f"Not in the verdict: {listed}."
