"""Turn a run directory's cells into the seed's table (Markdown), CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

from orchestrator.results import CellResult, RunDirectory, write_atomic
from orchestrator.servers import ALL_SERVERS, LANGUAGE_LABELS

# Below this share of its core the server was waiting for requests: the load tool set req/s.
SATURATION_THRESHOLD = 0.90


@dataclass(frozen=True)
class Row:
    """One server's figures, the median over its successful repetitions."""

    server: str
    api: str
    language: str
    repetitions_ok: int
    repetitions: int
    median_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    requests_per_second: float | None
    more_requests_percent: float | None  # None for the baseline itself or when unknown
    is_baseline: bool
    server_cpu_percent: float | None
    requests_per_cpu_second: float | None
    nic_packets_per_request: float | None
    failed_requests: int
    load_bound: bool


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def _packets_per_request(cell: CellResult) -> float | None:
    if cell.nic is None or cell.load is None or cell.load.requests == 0:
        return None
    return (cell.nic.rx_packets + cell.nic.tx_packets) / cell.load.requests


def build_rows(cells: Sequence[CellResult], baseline: str | None) -> list[Row]:
    """Aggregate cells per server, in catalogue order, with % more requests vs the baseline."""
    by_server: dict[str, list[CellResult]] = {}
    for cell in cells:
        by_server.setdefault(cell.server, []).append(cell)
    order = [s.name for s in ALL_SERVERS if s.name in by_server]
    order += sorted(name for name in by_server if name not in order)
    partial: list[dict[str, Any]] = []
    for name in order:
        group = by_server[name]
        ok = [c for c in group if c.status == "ok" and c.load is not None]
        loads = [c.load for c in ok if c.load is not None]
        cpu = _median([c.server_cpu.utilisation if c.server_cpu else None for c in ok])
        partial.append(
            {
                "server": name,
                "api": group[0].api,
                "language": LANGUAGE_LABELS.get(group[0].language, group[0].language),
                "repetitions_ok": len(ok),
                "repetitions": len(group),
                "median_ms": _median([ld.latency_ms.get("med") for ld in loads]),
                "p99_ms": _median([ld.latency_ms.get("p(99)") for ld in loads]),
                "p999_ms": _median([ld.latency_ms.get("p(99.9)") for ld in loads]),
                "requests_per_second": _median([ld.requests_per_second for ld in loads]),
                "server_cpu_percent": None if cpu is None else cpu * 100,
                "requests_per_cpu_second": _median([c.requests_per_cpu_second for c in ok]),
                "nic_packets_per_request": _median([_packets_per_request(c) for c in ok]),
                "failed_requests": sum(c.load.failed_requests for c in group if c.load),
                "load_bound": cpu is not None and cpu < SATURATION_THRESHOLD,
            }
        )
    names = [p["server"] for p in partial if p["requests_per_second"]]
    chosen = baseline if baseline in names else (names[0] if names else None)
    base_rps = next((p["requests_per_second"] for p in partial if p["server"] == chosen), None)
    rows = []
    for p in partial:
        rps = p["requests_per_second"]
        more = None
        if base_rps and rps is not None and p["server"] != chosen:
            more = (rps - base_rps) / base_rps * 100
        rows.append(Row(**p, more_requests_percent=more, is_baseline=p["server"] == chosen))
    return rows


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}ms" if value >= 1 else f"{value:.3f}ms"


def _int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _more(row: Row) -> str:
    if row.is_baseline:
        return "Baseline"
    return "-" if row.more_requests_percent is None else f"{row.more_requests_percent:+.2f}%"


COLUMNS = (
    "Api",
    "Language",
    "Median Req. Duration",
    "p(99) Req. Duration",
    "p(99.9) Req. Duration",
    "Req/s",
    "% More Requests",
    "Server CPU",
    "Req per server CPU-s",
    "NIC pkts/req",
    "Failed req.",
    "Limit",
)


def _cells_of(row: Row) -> list[str]:
    return [
        row.api,
        row.language,
        _ms(row.median_ms),
        _ms(row.p99_ms),
        _ms(row.p999_ms),
        _int(row.requests_per_second),
        _more(row),
        "-" if row.server_cpu_percent is None else f"{row.server_cpu_percent:.0f}%",
        _int(row.requests_per_cpu_second),
        "-" if row.nic_packets_per_request is None else f"{row.nic_packets_per_request:.2f}",
        str(row.failed_requests),
        "failed" if row.repetitions_ok == 0 else ("load tool" if row.load_bound else "server"),
    ]


def markdown_table(rows: Sequence[Row]) -> str:
    """The seed's table plus orch's trust columns."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cells_of(row)) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(run: dict[str, Any], cells: Sequence[CellResult], rows: Sequence[Row]) -> str:
    """The whole report.md."""
    out = [f"# orch run {run.get('id', '')}", ""]
    out.append(f"Command: `{run.get('command', '')}`  ")
    out.append(f"orch {run.get('orch_version', '?')} (commit {run.get('orch_commit', 'unknown')})")
    out += ["", "## System Specs", ""]
    for role in ("target", "load"):
        facts = run.get("facts", {}).get(role)
        if facts:
            out.append(
                f"- {role.capitalize()}: Linux {facts['kernel']}, {facts['distro']}, "
                f"{facts['cpu_model'] or 'unknown CPU'}, {facts['cores']} cores, "
                f"{facts['memory_kib'] / 1048576:.1f} GiB ({facts['hostname']})"
            )
    tools = run.get("tools", {})
    if tools:
        out.append("- Tools: " + "; ".join(f"{k}: {v}" for k, v in tools.items()))
    profile = run.get("profile", {})
    out += ["", "## Method", ""]
    out.append(f"- Profile `{profile.get('name')}`: {profile.get('description', '')}")
    out.append(
        f"- Load model: {profile.get('model', 'closed (ramping VUs)')}. In a closed loop "
        "median latency is roughly VUs / throughput, so the latency columns restate Req/s."
    )
    out.append(f"- {run.get('placement', '')}")
    out.append(f"- {run.get('traffic_note', '')}")
    out.append(f"- Repetitions: {run.get('repetitions', 1)}; figures are medians across them.")
    out += ["", "## Results", "", markdown_table(rows), ""]
    bound = [r.server for r in rows if r.load_bound]
    if bound:
        out.append(
            f"**Load-bound:** {', '.join(bound)} used less than "
            f"{SATURATION_THRESHOLD:.0%} of the server core, so the load tool, not the "
            "API, set Req/s for these rows; compare them by Req per server CPU-s."
        )
        out.append("")
    failures = [c for c in cells if c.status == "failed"]
    if failures:
        out += ["## Failed cells", ""]
        out += [f"- {c.server} repetition {c.repetition}: {c.error}" for c in failures]
        out.append("")
    if run.get("status") == "interrupted":
        out += ["**This run was interrupted; cells not listed were not measured.**", ""]
    return "\n".join(out)


def render_csv(rows: Sequence[Row]) -> str:
    """One line per server with raw numbers."""
    buffer = io.StringIO()
    fields = list(asdict(rows[0]).keys()) if rows else [f.lower() for f in COLUMNS]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def write_reports(run_dir: RunDirectory, baseline: str | None = None) -> tuple[str, list[Row]]:
    """Render report.md, results.csv and results.json from what is on disk; return the table."""
    run = run_dir.read_run()
    cells = run_dir.read_cells()
    rows = build_rows(cells, baseline or run.get("baseline"))
    markdown = render_markdown(run, cells, rows)
    write_atomic(run_dir.path / "report.md", markdown + "\n")
    write_atomic(run_dir.path / "results.csv", render_csv(rows))
    write_atomic(
        run_dir.path / "results.json",
        json.dumps(
            {
                "run": run.get("id"),
                "rows": [asdict(r) for r in rows],
                "cells": [c.model_dump(mode="json") for c in cells],
            },
            indent=2,
        )
        + "\n",
    )
    return markdown, rows
