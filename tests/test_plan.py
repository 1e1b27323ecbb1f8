"""Server selection and plan building."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from server_helpers import SERVER_NAMES

from orchestrator.catalogue.read import load_catalogue
from orchestrator.catalogue.spec import ServerSpec
from orchestrator.errors import UserError
from orchestrator.load.points import PROFILES, LoadPoint, parse_duration, resolve_profile
from orchestrator.run.plan import build_plan

CATALOGUE = load_catalogue()
ALL_SERVERS = CATALOGUE.matrices["full"]
select_servers = CATALOGUE.select


def names(servers: Sequence[ServerSpec]) -> list[str]:
    return [s.name for s in servers]


def test_full_matrix_is_all_six_grouped_by_api() -> None:
    assert names(select_servers("full", [])) == list(SERVER_NAMES)


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        ("epoll", ["c-epoll", "rust-epoll", "zig-epoll"]),
        ("io_uring", ["c-io_uring", "rust-io_uring", "zig-io_uring"]),
        ("rust", ["rust-epoll", "rust-io_uring"]),
    ],
)
def test_matrix_presets(matrix: str, expected: list[str]) -> None:
    assert names(select_servers(matrix, [])) == expected


def test_servers_add_to_a_matrix_without_duplicates() -> None:
    chosen = select_servers("c", ["c-epoll", "zig-io_uring"])
    assert names(chosen) == ["c-epoll", "c-io_uring", "zig-io_uring"]


def test_unknown_names_are_user_errors() -> None:
    with pytest.raises(UserError, match="--matrix: unknown matrix 'fast'"):
        select_servers("fast", [])
    with pytest.raises(UserError, match="--server: unknown server 'go-epoll'"):
        select_servers(None, ["go-epoll"])


def test_plan_interleaves_repetitions_and_rotates_start() -> None:
    servers = list(ALL_SERVERS[:3])
    cells = build_plan(servers, [LoadPoint(kind="ramp", vus=500)], 3)
    assert [c.key.label(with_point=False) for c in cells] == [
        "c-epoll/1",
        "rust-epoll/1",
        "zig-epoll/1",
        "rust-epoll/2",
        "zig-epoll/2",
        "c-epoll/2",
        "zig-epoll/3",
        "c-epoll/3",
        "rust-epoll/3",
    ]
    # Every server appears once per repetition.
    for rep in (1, 2, 3):
        assert sorted(c.server.name for c in cells if c.repetition == rep) == sorted(names(servers))


def test_plan_rounds_hold_every_point_and_server_pair() -> None:
    servers = [s for s in ALL_SERVERS if s.language == "c"]
    points = [LoadPoint(kind="closed", vus=10), LoadPoint(kind="closed", vus=100)]
    cells = build_plan(servers, points, 3)
    assert len(cells) == 12
    pairs = {(p.key, s.name) for p in points for s in servers}
    for rep in (1, 2, 3):
        in_round = [(c.point.key, c.server.name) for c in cells if c.repetition == rep]
        assert sorted(in_round) == sorted(pairs)  # each pair once per round
    # The pair a verdict compares runs back to back, epoll first in odd rounds.
    for first, second in zip(cells[::2], cells[1::2], strict=True):
        assert (first.point, first.repetition) == (second.point, second.repetition)
        assert (first.server.api, second.server.api) == (
            ("epoll", "io_uring") if first.repetition % 2 else ("io_uring", "epoll")
        )
    assert [c.point.key for c in cells[::4]] == ["c10", "c100", "c10"]  # points rotate


def test_full_matrix_rounds_keep_each_language_pair_together() -> None:
    cells = build_plan(list(ALL_SERVERS), [LoadPoint(kind="ramp", vus=500)], 2)
    assert [c.key.label(with_point=False) for c in cells] == [
        "c-epoll/1",
        "c-io_uring/1",
        "rust-epoll/1",
        "rust-io_uring/1",
        "zig-epoll/1",
        "zig-io_uring/1",
        "rust-io_uring/2",
        "rust-epoll/2",
        "zig-io_uring/2",
        "zig-epoll/2",
        "c-io_uring/2",
        "c-epoll/2",
    ]


def test_seed_profile_matches_the_original() -> None:
    seed = PROFILES["seed"]
    assert seed.duration == 90
    assert seed.max_vus == 500
    assert seed.k6_stages()[0] == {"duration": "5s", "target": 100}


def test_profile_overrides_keep_shape() -> None:
    prof = resolve_profile("quick", duration="9s", vus=50)
    assert prof.duration == pytest.approx(9.0)
    assert prof.max_vus == 50
    assert prof.name == "quick*"


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("1m30s", 90), ("1500ms", 1.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(UserError, match="--duration: cannot read 'soon'"):
        parse_duration("soon")
