"""What `orch run` says before a run to a precision, and its first guess of the cells
and the time it takes (the progress bar's, until a round has run)."""

from __future__ import annotations

from orchestrator.load.points import Profile
from orchestrator.results.precision_record import duration_text, percent_text
from orchestrator.run.options import RunOptions
from orchestrator.run.precision_options import PrecisionAsk

CELL_OVERHEAD_SECONDS = 1.0  # a cell's set-up and stop beyond its load time, about


def _cell_seconds(profile: Profile) -> float:
    return profile.duration + profile.warmup_seconds + CELL_OVERHEAD_SECONDS


def _table(opts: RunOptions) -> list[str]:
    return [p.key for p in opts.points if p.key in opts.table_points]


def precision_seconds_guess(opts: RunOptions, ask: PrecisionAsk) -> float:
    """The whole run's time at most: the main job's table round, then the budget."""
    table = len(_table(opts)) * len(opts.servers) * _cell_seconds(opts.profile)
    return table + ask.budget_seconds


def precision_cells_guess(opts: RunOptions, ask: PrecisionAsk) -> int:
    """Cells in the table round and the minimum rounds (more follow as needed)."""
    points = len(opts.points) - len(_table(opts))
    return len(opts.servers) * (len(_table(opts)) + points * ask.min_rounds)


def _profile_words(profile: Profile) -> str:
    return f"{profile.name}, {profile.duration:g} s after a {profile.warmup_seconds:g} s warm-up"


def precision_intro(opts: RunOptions, ask: PrecisionAsk) -> str:
    """`orch run`'s first line for a run to a precision."""
    names = ", ".join(s.name for s in opts.servers)
    verdict = [p for p in opts.points if p.key not in opts.table_points]
    where = ", ".join(p.describe() for p in verdict)
    profile = opts.point_profiles.get(verdict[0].key, opts.profile) if verdict else opts.profile
    rounds = (
        f"rounds at {where} (profile {_profile_words(profile)}) "
        f"until io_uring's CPU per request against epoll's is known to "
        f"{percent_text(ask.target)} for every language at every point (at least "
        f"{ask.min_rounds} rounds), within a budget of {duration_text(ask.budget_seconds)}"
    )
    table = [p for p in opts.points if p.key in opts.table_points]
    depth = f" (pipeline {opts.pipeline})" if opts.pipeline > 1 else ""
    tool = f"load tool {opts.load_tool}{depth}"
    if table:
        return (
            f"{names}: the table from one round at {table[0].describe()} (profile "
            f"{_profile_words(opts.profile)}, {len(opts.servers)} cells), then the verdict "
            f"from {rounds}; {tool}"
        )
    return f"{names}: {rounds}; {tool}"
