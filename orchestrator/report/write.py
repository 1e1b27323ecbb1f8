"""Write a run's reports from its directory: one exporter per format, each writing only
its own files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.report.csv_export import render_csv
from orchestrator.report.histograms import render_histograms
from orchestrator.report.json_export import render_json
from orchestrator.report.markdown import render_markdown
from orchestrator.results.aggregate import Row, build_rows
from orchestrator.results.cell_result import CellResult
from orchestrator.results.knees import find_knees
from orchestrator.results.record import RunRecord
from orchestrator.results.rundir import RunDirectory, write_atomic

PLOT_STEMS = (
    "requests",
    "latency",
    "sweep-requests",
    "sweep-cpu",
    "latency-distribution",
    "rate-p99",
    "rate-latency",
    "rate-cpu",
    "cost",
)
PLOT_NAMES = tuple(f"{stem}.{fmt}" for stem in PLOT_STEMS for fmt in ("svg", "png"))
FORMATS = ("md", "csv", "json", "histograms", "plots")


@dataclass(frozen=True)
class RunReport:
    """What the exporters work from: the record, the cells and their rows."""

    run_dir: RunDirectory
    record: RunRecord
    cells: list[CellResult]
    rows: list[Row]

    @classmethod
    def load(cls, run_dir: RunDirectory, baseline: str | None = None) -> RunReport:
        """Read the run and aggregate its cells (`baseline` overrides the recorded one)."""
        record = run_dir.read_run()
        cells = run_dir.read_cells()
        points = [point.key for point in record.ordered_points]
        rows = build_rows(
            cells, baseline or record.baseline, points, record.server_order, record.unverified
        )
        return cls(run_dir, record, cells, rows)

    def plots_present(self) -> list[str]:
        """The plot files already beside the report."""
        return [name for name in PLOT_NAMES if (self.run_dir.path / name).is_file()]


def _markdown(report: RunReport) -> str:
    return render_markdown(report.record, report.cells, report.rows, report.plots_present())


def _plots(report: RunReport) -> str:
    # matplotlib is slow to import: only when plots are asked for.
    from orchestrator.report.plots import write_plots
    from orchestrator.report.sweep_plots import write_sweep_plots

    record = report.record
    folder = report.run_dir.path
    if record.single_point or record.table_points:
        # The main job plots its table's point, as a run of one point does.
        key = record.table_points[0] if record.table_points else record.points[0].key
        rows = [row for row in report.rows if row.point == key]
        paths = write_plots(folder, rows, f"{record.id}: {record.load_model(key)}")
    else:
        knees = find_knees(report.cells, report.rows, record.ordered_points)
        title = f"{record.id}: {record.load_tool.label}, {len(record.ordered_points)} load points"
        paths = write_sweep_plots(
            folder, report.rows, report.cells, record.ordered_points, knees, title
        )
    for stale in set(PLOT_NAMES) - {path.name for path in paths}:
        (folder / stale).unlink(missing_ok=True)
    return "".join(f"{path}\n" for path in paths)


Exporter = Callable[[RunReport], str]
# Format -> (file it writes, or None when it writes its own files; its text).
EXPORTERS: dict[str, tuple[str | None, Exporter]] = {
    "md": ("report.md", lambda r: _markdown(r) + "\n"),
    "csv": ("results.csv", lambda r: render_csv(r.rows)),
    "json": ("results.json", lambda r: render_json(r.record, r.cells, r.rows)),
    "histograms": ("histograms.csv", lambda r: render_histograms(r.cells)),
    "plots": (None, _plots),
}


def write_reports(
    run_dir: RunDirectory, formats: Sequence[str] = FORMATS, baseline: str | None = None
) -> dict[str, str]:
    """Write the chosen formats (plots first, so the Markdown links them); return each
    format's text."""
    unknown = [name for name in formats if name not in EXPORTERS]
    if unknown:
        raise UserError(
            f"--format: unknown format '{unknown[0]}' (known: {', '.join(EXPORTERS)}, all)"
        )
    report = RunReport.load(run_dir, baseline)
    texts: dict[str, str] = {}
    for name in sorted(formats, key=lambda f: f != "plots"):
        file_name, export = EXPORTERS[name]
        texts[name] = export(report)
        if file_name is not None:
            write_atomic(Path(run_dir.path / file_name), texts[name])
    return texts
