"""h2load's per-request log reduced to a latency histogram, on the load host.

This file is also a program: orch copies it to each load host running h2load and runs
`python3 h2load_log.py LOG OUT [--keep]` there after a measured pass (so it imports
nothing but the standard library). h2load's `--log-file` has one row per request that
ended in the measured duration: its start (microseconds since the epoch), its HTTP status
(-1 for a failed stream) and microseconds until the end of its response, tab-separated.
The program counts every answered row's latency in whole microseconds (exact: nothing is
sampled), adds the failed rows apart, notes the first and last request's start (the
window the achieved rate is taken over), times what that cost, writes the result to OUT
as JSON (atomically) and deletes LOG unless told to keep it. Exit status 1: the log could
not be read or held a row it does not understand (the message on stderr).
"""

from __future__ import annotations

import collections
import json
import mmap
import os
import re
import sys
import time

METHOD = "h2load log"
CHUNK_BYTES = 16 << 20
# An answered row's latency (a status of digits only: `-1` rows are failed streams).
_ANSWERED = re.compile(rb"\t\d+\t(\d+)\n")
_STARTS = re.compile(rb"(?m)^(\d+)\t")
_FAILED = b"\t-1\t"


class LogError(Exception):
    """The log could not be reduced; the message says why."""


class Reduced:
    """What a log holds: {latency in µs: answered requests}, failed rows, and the first
    and last request's start (µs since the epoch; None for an empty log)."""

    def __init__(self) -> None:
        self.values: collections.Counter[bytes] = collections.Counter()
        self.failed = 0
        self.rows = 0
        self.first: int | None = None
        self.last: int | None = None

    def add(self, chunk: bytes) -> None:
        """Count the rows of `chunk` (whole rows only)."""
        self.values.update(_ANSWERED.findall(chunk))
        self.failed += chunk.count(_FAILED)
        self.rows += chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        starts = _STARTS.findall(chunk)
        if starts:
            low, high = min(starts, key=int), max(starts, key=int)
            self.first = int(low) if self.first is None else min(self.first, int(low))
            self.last = int(high) if self.last is None else max(self.last, int(high))

    def histogram(self) -> dict[int, int]:
        """{latency in µs: answered requests}."""
        return {int(value): count for value, count in self.values.items()}


def reduce_log(path: str) -> Reduced:
    """The log at `path` reduced.

    The file is mapped, not read, and scanned in chunks ending at a newline; a row that
    is neither answered nor failed (a truncated or foreign file) is an error, so the
    histogram always holds every answered request the log names.
    """
    reduced = Reduced()
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return reduced
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            size, start = len(data), 0
            while start < size:
                end = size
                if start + CHUNK_BYTES < size:
                    end = data.rfind(b"\n", start, start + CHUNK_BYTES) + 1 or size
                reduced.add(data[start:end])
                start = end
    answered = sum(reduced.values.values())
    if answered + reduced.failed != reduced.rows:
        raise LogError(
            f"{path}: {reduced.rows - answered - reduced.failed} of {reduced.rows} rows are "
            "not h2load log rows (start, status, microseconds)"
        )
    return reduced


def reduction(path: str) -> dict[str, object]:
    """The reduced log with what reducing it cost, as the JSON the program writes."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        reduced = reduce_log(path)
    except OSError as exc:
        raise LogError(f"cannot read h2load's log {path}: {exc.strerror}") from None
    histogram = reduced.histogram()
    return {
        "method": METHOD,
        "us": sorted(histogram.items()),
        "failed_rows": reduced.failed,
        "sum_us": sum(us * count for us, count in histogram.items()),
        "samples": sum(histogram.values()),
        "first_start_us": reduced.first,
        "last_start_us": reduced.last,
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
    }


def main(argv: list[str]) -> int:
    """`LOG OUT [--keep]`: reduce LOG into OUT; delete LOG unless --keep."""
    if len(argv) not in (3, 4) or (len(argv) == 4 and argv[3] != "--keep"):
        print("usage: h2load_log.py LOG OUT [--keep]", file=sys.stderr)
        return 2
    log, out = argv[1], argv[2]
    try:
        reduced = reduction(log)
    except LogError as exc:
        print(f"orch h2load log: {exc}", file=sys.stderr)
        return 1
    partial = f"{out}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(reduced, file)
    os.replace(partial, out)
    if len(argv) == 3:
        os.unlink(log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
