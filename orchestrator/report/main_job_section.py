"""report.md's Results and Method for the main job: the seed's table from one round of
the profile, then the table of the verdict's short rounds at their fixed point."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.report.table import markdown_table
from orchestrator.results.aggregate import Row
from orchestrator.results.precision_record import duration_text, percent_text
from orchestrator.results.record import RunRecord

ModelLines = Callable[[str, int | None, Sequence[Row]], list[str]]
SaturationLines = Callable[[Sequence[Row], bool], list[str]]


def main_job_results(
    record: RunRecord, rows: Sequence[Row], model: ModelLines, saturation: SaturationLines
) -> list[str]:
    """The seed's table at each table point, then each verdict point's own table."""
    out: list[str] = []
    for point in record.ordered_points:
        mine = [r for r in rows if r.point == point.key]
        dropped = point.is_open or any(r.dropped_iterations for r in mine)
        if point.key in record.table_points:
            out += [*model(record.load_model(point.key), point.rate, mine), ""]
        else:
            rounds = max((r.repetitions for r in mine), default=0)
            out += [
                f"**The verdict's rounds at {point.describe()}** ({rounds} rounds of "
                f"{record.load_model(point.key)}): the same columns, each row the median of "
                "its rounds. The verdict above compares CPU per request here.",
                "",
            ]
        out += [markdown_table(mine, dropped), ""]
        out += saturation(mine, point.is_open)
    return out


def main_job_method(record: RunRecord) -> list[str]:
    """Method lines: the profile of each point measured with its own."""
    out = []
    for key, profile in record.point_profiles.items():
        out.append(
            f"- The verdict's rounds at {record.point(key).describe()}: profile "
            f"`{profile.name}`, {profile.duration:g} s after a {profile.warmup_seconds:g} s "
            "warm-up; the table's point was measured once with the run's profile."
        )
    return out


def rounds_line(record: RunRecord) -> str | None:
    """How many rounds a run to a precision measured (None: a run of fixed rounds)."""
    precision = record.precision
    if precision is None:
        return None
    table = " after one round of the table's point" if record.table_points else ""
    return (
        f"- Rounds{table}: added until every compared pair's interval was "
        f"{percent_text(precision.target)} or narrower (at least {precision.min_rounds} "
        f"rounds), within a budget of {duration_text(precision.budget_seconds)}; after "
        "the minimum a round visits only the pairs still short of it. In each round every "
        "language's epoll and io_uring run back to back, their order alternating; each "
        "figure is the median across a server's successful rounds"
    )
