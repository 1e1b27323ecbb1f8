"""Result models and the run directory: atomic writes, listing what is already measured."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import UserError
from orchestrator.load.result import LoadResult

RUN_FILE = "run.json"
RESULT_FILE = "result.json"
LOCK_FILE = ".orch.lock"
# What an interrupted atomic write or download leaves behind.
STALE_PATTERNS = (".*.tmp", "*.orch-partial")


class ProcessCpu(BaseModel):
    """CPU time one process used over an interval, from /proc/PID/stat."""

    model_config = ConfigDict(extra="forbid")

    user_seconds: float
    system_seconds: float
    wall_seconds: float
    # The load tool's own measured run time inside the interval: the server can only be
    # busy then, while the interval also holds the tool's start-up and exit.
    active_seconds: float | None = None

    @property
    def cpu_seconds(self) -> float:
        """user + system."""
        return self.user_seconds + self.system_seconds

    @property
    def busy_window_seconds(self) -> float:
        """The time the utilisation is taken over: the load's run time when known."""
        if self.active_seconds is not None and 0 < self.active_seconds < self.wall_seconds:
            return self.active_seconds
        return self.wall_seconds

    @property
    def utilisation(self) -> float:
        """Share of one core used while the load ran (1.0 = a full core)."""
        window = self.busy_window_seconds
        return self.cpu_seconds / window if window > 0 else 0.0


class LoadCpu(BaseModel):
    """CPU time the load tool used over its run, against the cores it was pinned to."""

    model_config = ConfigDict(extra="forbid")

    cpu_seconds: float
    wall_seconds: float
    cpus: int

    @property
    def share(self) -> float:
        """Share of its pinned cores the load tool used (1.0 = all of them, all the time)."""
        capacity = self.wall_seconds * max(1, self.cpus)
        return self.cpu_seconds / capacity if capacity > 0 else 0.0


class CoreCpu(BaseModel):
    """What the server's pinned cores did over the measured pass (all processes, /proc/stat)."""

    model_config = ConfigDict(extra="forbid")

    cpus: list[int]
    busy_seconds: float  # user, nice, system, irq and softirq
    softirq_seconds: float
    idle_seconds: float  # idle and iowait
    steal_seconds: float

    def _capacity(self, window_seconds: float | None) -> float:
        total = self.busy_seconds + self.idle_seconds + self.steal_seconds
        if window_seconds is not None and window_seconds > 0:
            total = min(total, window_seconds * max(1, len(self.cpus)))
        return total

    def busy_share(self, window_seconds: float | None = None) -> float:
        """Share of the cores' time they were busy (1.0 = never idle), over the whole
        interval or over `window_seconds` (the load's run time) when given."""
        total = self._capacity(window_seconds)
        return min(1.0, self.busy_seconds / total) if total > 0 else 0.0

    def softirq_share(self, window_seconds: float | None = None) -> float:
        """Share of the cores' time spent in softirq context (network stack work)."""
        total = self._capacity(window_seconds)
        return min(1.0, self.softirq_seconds / total) if total > 0 else 0.0


class NicCounters(BaseModel):
    """Packet and byte counters of one interface over an interval."""

    model_config = ConfigDict(extra="forbid")

    interface: str
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int


class CellResult(BaseModel):
    """One server measured once: what happened and what was measured."""

    model_config = ConfigDict(extra="forbid")

    server: str
    api: str
    language: str
    repetition: int
    status: Literal["ok", "failed"]
    error: str | None = None
    started_at: str
    finished_at: str
    load: LoadResult | None = None
    server_cpu: ProcessCpu | None = None
    server_cores: CoreCpu | None = None
    load_cpu: LoadCpu | None = None
    nic: NicCounters | None = None
    server_exit_status: int | None = None  # negative: killed by that signal
    server_log_tail: str | None = None  # the end of the server's log when it failed
    warmup_seconds: float | None = None  # unmeasured load before the measured pass

    @property
    def key(self) -> str:
        """`server/repetition`, as the run's plan names the cell."""
        return f"{self.server}/{self.repetition}"

    @property
    def failed_requests(self) -> int:
        """Requests the load tool counted as failed (0 when it has no result)."""
        return self.load.failed_requests if self.load is not None else 0

    @property
    def server_load(self) -> float | None:
        """How busy the server's pinned core was: its non-idle share, network softirq work
        included, else the server process's own CPU share when core counters are missing.

        Not "process share + softirq share": without IRQ time accounting (Debian's and this
        machine's kernels) softirq ticks are charged to the interrupted process as well, so
        that sum counted them twice and called idle cores saturated. Idle time on the
        server's core is what proves the server waited for the load tool.
        """
        if self.server_cpu is None:
            return None
        if self.server_cores is None:
            return self.server_cpu.utilisation
        return self.server_cores.busy_share(self.server_cpu.busy_window_seconds)

    @property
    def requests_per_cpu_second(self) -> float | None:
        """Requests served per second of server CPU: meaningful even when load-bound."""
        if self.load is None or self.server_cpu is None or self.server_cpu.cpu_seconds <= 0:
            return None
        return self.load.requests / self.server_cpu.cpu_seconds


def utc_now() -> str:
    """Now as an ISO 8601 UTC timestamp."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, text: str) -> None:
    """Write a file so readers (and a kill -9) see either the old or the whole new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Atomically write pretty JSON."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


class RunDirectory:
    """results/<UTC timestamp>-<label>/ with run.json, cells/<server>/<rep>/ and reports."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, parent: Path, label: str) -> RunDirectory:
        """Make a new, uniquely named run directory."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = parent / f"{stamp}-{label}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = parent / f"{stamp}-{label}-{n}"
        path.mkdir(parents=True)
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunDirectory:
        """Open an existing run directory, refusing anything that is not one."""
        if not (path / RUN_FILE).is_file():
            raise UserError(f"{path}: not a run directory (no {RUN_FILE})")
        return cls(path)

    def cell_dir(self, server: str, repetition: int) -> Path:
        """Where one cell's files live."""
        return self.path / "cells" / server / str(repetition)

    def write_run(self, data: dict[str, Any]) -> None:
        """Write run.json."""
        write_json_atomic(self.path / RUN_FILE, data)

    def read_run(self) -> dict[str, Any]:
        """Read run.json."""
        try:
            data: dict[str, Any] = json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path / RUN_FILE}: unreadable run file ({exc})") from None
        return data

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process: a second orch on the same run is refused.

        The kernel drops the lock when orch dies, even by kill -9.
        """
        path = self.path / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise UserError(
                    f"{self.path}: another orch (PID {holder}) is running this run"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    def measured(self) -> set[str]:
        """Keys (`server/repetition`) of the cells whose result.json is on disk."""
        cells = self.path / "cells"
        return {f"{p.parent.parent.name}/{p.parent.name}" for p in cells.glob(f"*/*/{RESULT_FILE}")}

    def clear_unfinished(self, server: str, repetition: int) -> None:
        """Remove what a cell interrupted before its result.json left in its folder."""
        folder = self.cell_dir(server, repetition)
        if folder.is_dir() and not (folder / RESULT_FILE).exists():
            shutil.rmtree(folder)

    def remove_stale_temporaries(self) -> None:
        """Delete half-written temporary files a killed orch left (never a finished file)."""
        for pattern in STALE_PATTERNS:
            for path in self.path.rglob(pattern):
                path.unlink(missing_ok=True)

    def write_cell(self, result: CellResult) -> None:
        """Write one cell's result.json atomically."""
        path = self.cell_dir(result.server, result.repetition) / RESULT_FILE
        write_json_atomic(path, result.model_dump(mode="json"))

    def read_cells(self) -> list[CellResult]:
        """Every cell result on disk, in no particular order."""
        cells = []
        for path in sorted((self.path / "cells").glob(f"*/*/{RESULT_FILE}")):
            try:
                cells.append(CellResult.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValidationError) as exc:
                raise UserError(f"{path}: unreadable cell result ({exc})") from None
        return cells
