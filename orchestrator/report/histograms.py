"""histograms.csv: every cell's latency histogram as value,count rows (microseconds), for
tools that measure one (wrk); per load host when a cell had several."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from orchestrator.results.cell_result import CellResult

HEADER = ("server", "point", "repetition", "host", "latency_us", "count")


def render_histograms(cells: Sequence[CellResult]) -> str:
    """One row per populated latency value of each cell (and load host)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for cell in sorted(cells, key=lambda c: (c.point, c.server, c.repetition)):
        results = cell.load_by_host or ([cell.load] if cell.load is not None else [])
        for result in results:
            if result.histogram is None:
                continue
            host = result.host or ""
            for value, count in result.histogram.buckets:
                writer.writerow(
                    (cell.server, cell.point, cell.repetition, host, f"{value:g}", count)
                )
    return buffer.getvalue()
