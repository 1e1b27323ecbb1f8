"""The line each server prints at start, before `listening on` (servers/README.md): its API,
the kernel it runs on and, for io_uring, the ring's setup flags and the features the
kernel granted, which change results between kernels and distros."""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "server: "
_FIELD = re.compile(r"(\w+)=(\S+)")

# include/uapi/linux/io_uring.h, IORING_SETUP_* and IORING_FEAT_*, bit by bit.
SETUP_FLAGS = (
    "IOPOLL", "SQPOLL", "SQ_AFF", "CQSIZE", "CLAMP", "ATTACH_WQ", "R_DISABLED", "SUBMIT_ALL",
    "COOP_TASKRUN", "TASKRUN_FLAG", "SQE128", "CQE32", "SINGLE_ISSUER", "DEFER_TASKRUN",
    "NO_MMAP", "REGISTERED_FD_ONLY", "NO_SQARRAY", "HYBRID_IOPOLL",
)  # fmt: skip
FEATURES = (
    "SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY", "FAST_POLL",
    "POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS", "RSRC_TAGS", "CQE_SKIP",
    "LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE", "MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT",
)  # fmt: skip


def decode(value: int, names: tuple[str, ...]) -> str:
    """Bits by name, `A|B`, with any bit orch does not know as `bit N`."""
    parts = [
        names[bit] if bit < len(names) else f"bit {bit}"
        for bit in range(value.bit_length())
        if value >> bit & 1
    ]
    return "|".join(parts) or "none"


@dataclass(frozen=True)
class StartupLine:
    """What a server said about itself at start."""

    api: str
    kernel: str
    setup_flags: int | None = None
    features: int | None = None

    def describe(self) -> str:
        """`io_uring on 6.18.44, setup CQSIZE|... (0x3188), features ... (0x3ffff)`."""
        text = f"{self.api} on {self.kernel}"
        if self.setup_flags is not None:
            text += f", setup {decode(self.setup_flags, SETUP_FLAGS)} ({self.setup_flags:#x})"
        if self.features is not None:
            text += f", features {decode(self.features, FEATURES)} ({self.features:#x})"
        return text


def find_startup_line(log: str) -> str | None:
    """The start-up line in a server's output, if it printed one."""
    return next((line for line in log.splitlines() if line.startswith(PREFIX)), None)


def parse_startup_line(line: str) -> StartupLine | None:
    """The fields of a start-up line; None when it is not one."""
    if not line.startswith(PREFIX):
        return None
    fields = dict(_FIELD.findall(line[len(PREFIX) :]))
    if "api" not in fields or "kernel" not in fields:
        return None
    try:
        flags = int(fields["setup_flags"], 16) if "setup_flags" in fields else None
        features = int(fields["features"], 16) if "features" in fields else None
    except ValueError:
        return None
    return StartupLine(fields["api"], fields["kernel"], flags, features)
