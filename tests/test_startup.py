"""The servers' start-up line: parsed, and its ring flags named bit by bit."""

from __future__ import annotations

from orchestrator.startup import (
    FEATURES,
    SETUP_FLAGS,
    decode,
    find_startup_line,
    parse_startup_line,
)

IO_URING = "server: api=io_uring kernel=6.18.44-fc-v657 setup_flags=0x3188 features=0x3ffff"


def test_io_uring_line_is_parsed_and_named() -> None:
    line = parse_startup_line(IO_URING)
    assert line is not None
    assert (line.api, line.kernel, line.setup_flags, line.features) == (
        "io_uring",
        "6.18.44-fc-v657",
        0x3188,
        0x3FFFF,
    )
    # 0x3188 = CQSIZE (1<<3) | SUBMIT_ALL (1<<7) | COOP_TASKRUN (1<<8) | SINGLE_ISSUER (1<<12)
    # | DEFER_TASKRUN (1<<13), as include/uapi/linux/io_uring.h numbers them
    assert (
        decode(0x3188, SETUP_FLAGS) == "CQSIZE|SUBMIT_ALL|COOP_TASKRUN|SINGLE_ISSUER|DEFER_TASKRUN"
    )
    assert decode(1 << 16, SETUP_FLAGS) == "NO_SQARRAY"
    assert decode(0x3FFFF, FEATURES).endswith("MIN_TIMEOUT|RW_ATTR|NO_IOWAIT")
    assert decode(1 << 40, FEATURES) == "bit 40" and decode(0, FEATURES) == "none"
    assert "setup CQSIZE|" in line.describe() and "(0x3188)" in line.describe()


def test_epoll_line_and_lines_that_are_not_one() -> None:
    epoll = parse_startup_line("server: api=epoll kernel=6.1.0-18-amd64")
    assert epoll is not None and epoll.setup_flags is None
    assert epoll.describe() == "epoll on 6.1.0-18-amd64"
    assert parse_startup_line("listening on 127.0.0.1:8000") is None
    assert parse_startup_line("server: kernel=6.1") is None
    assert parse_startup_line("server: api=io_uring kernel=6.1 setup_flags=0xzz") is None
    log = f"{IO_URING}\nlistening on 127.0.0.1:8000\n"
    assert find_startup_line(log) == IO_URING and find_startup_line("listening on x") is None
