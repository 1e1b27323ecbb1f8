"""Result models and the run directory: atomic writes, listing what is already measured."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import UserError
from orchestrator.loadgen.base import LoadResult

RUN_FILE = "run.json"
RESULT_FILE = "result.json"


class ProcessCpu(BaseModel):
    """CPU time one process used over an interval, from /proc/PID/stat."""

    model_config = ConfigDict(extra="forbid")

    user_seconds: float
    system_seconds: float
    wall_seconds: float

    @property
    def cpu_seconds(self) -> float:
        """user + system."""
        return self.user_seconds + self.system_seconds

    @property
    def utilisation(self) -> float:
        """Share of one core used over the interval (1.0 = a full core)."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


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
    nic: NicCounters | None = None
    server_exit_status: int | None = None

    @property
    def requests_per_cpu_second(self) -> float | None:
        """Requests served per second of server CPU: meaningful even when load-bound."""
        if self.load is None or self.server_cpu is None or self.server_cpu.cpu_seconds <= 0:
            return None
        return self.load.requests / self.server_cpu.cpu_seconds


def utc_now() -> str:
    """Now as an ISO 8601 UTC timestamp."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
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
