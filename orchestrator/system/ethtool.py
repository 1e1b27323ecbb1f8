"""What `ethtool -l/-c/-k IF` says about an interface: queues, interrupt coalescing and
offloads. Commands, not files: they run through a `CommandRunner` (the host's `run`; tests
give recorded output)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from orchestrator.hosts.base import CommandResult, last_line
from orchestrator.system.model import Ethtool

CommandRunner = Callable[[Sequence[str]], CommandResult]
NOT_FOUND = 127
PARTS = {"channels": "-l", "coalesce": "-c", "features": "-k"}
COALESCE_KEYS = ("rx-usecs", "rx-frames", "tx-usecs", "tx-frames")
FEATURES = (
    "generic-receive-offload",
    "large-receive-offload",
    "rx-gro-hw",
    "tcp-segmentation-offload",
    "generic-segmentation-offload",
    "rx-checksumming",
    "tx-checksumming",
    "scatter-gather",
    "receive-hashing",
)


def parse_channels(text: str) -> dict[str, str]:
    """`ethtool -l`: the current queue counts (rx, tx, other, combined) and the maximum
    of each (`max combined`)."""
    found: dict[str, str] = {}
    prefix = ""
    for line in text.splitlines():
        if line.startswith("Pre-set maximums"):
            prefix = "max "
        elif line.startswith("Current hardware settings"):
            prefix = ""
        name, sep, value = line.partition(":")
        if sep and value.strip() and name.strip().lower() in ("rx", "tx", "other", "combined"):
            found[prefix + name.strip().lower()] = value.strip()
    return found


def parse_coalesce(text: str) -> dict[str, str]:
    """`ethtool -c`: adaptive coalescing and the usecs/frames an interrupt waits for."""
    found: dict[str, str] = {}
    adaptive = re.search(r"Adaptive RX:\s*(\S+)\s+TX:\s*(\S+)", text)
    if adaptive:
        found["adaptive-rx"], found["adaptive-tx"] = adaptive[1], adaptive[2]
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in COALESCE_KEYS:
            found[name.strip()] = value.strip()
    return found


def parse_features(text: str) -> dict[str, str]:
    """`ethtool -k`: the offloads that change how much work a packet costs (GRO, LRO,
    TSO, GSO, checksums), as `on`, `off` or `off [fixed]`."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and not line.startswith(("\t", " ")) and name in FEATURES:
            found[name] = value.strip()
    return found


PARSERS = {"channels": parse_channels, "coalesce": parse_coalesce, "features": parse_features}


def read_ethtool(run: CommandRunner, interface: str) -> Ethtool:
    """The three ethtool readings of `interface`; a part ethtool cannot give is None with
    the reason in `problems`."""
    values: dict[str, dict[str, str] | None] = {}
    problems: dict[str, str] = {}
    for part, flag in PARTS.items():
        result = run(["ethtool", flag, interface])
        if result.exit_code == NOT_FOUND:
            return Ethtool(problems={name: "ethtool is not installed" for name in PARTS})
        if result.ok:
            values[part] = PARSERS[part](result.stdout)
        else:
            values[part] = None
            problems[part] = last_line(result.stderr or result.stdout)
    return Ethtool(
        channels=values["channels"],
        coalesce=values["coalesce"],
        features=values["features"],
        problems=problems,
    )
