"""The run directory: run.json, cells/<server>/<point>/<repetition>/ and the reports, every
file written atomically; a lock so one orch at a time works on a run."""

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
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import UserError
from orchestrator.results.cell_result import CellKey, CellResult
from orchestrator.results.record import RunRecord

RUN_FILE = "run.json"
RESULT_FILE = "result.json"
LOCK_FILE = ".orch.lock"
# What an interrupted atomic write or download leaves behind.
STALE_PATTERNS = (".*.tmp", "*.orch-partial")


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


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "(top level)"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}"


class RunDirectory:
    """results/<UTC timestamp>-<label>/ with run.json, the cells and the reports."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._record: RunRecord | None = None

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

    # -- run.json --

    def write_run(self, record: RunRecord) -> None:
        """Write run.json."""
        write_json_atomic(self.path / RUN_FILE, record.model_dump(mode="json"))
        self._record = record

    def read_run(self) -> RunRecord:
        """Read run.json (any format orch has written), refusing what it cannot read."""
        path = self.path / RUN_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: unreadable run file ({exc})") from None
        try:
            record = RunRecord.model_validate(data)
        except ValidationError as exc:
            raise UserError(f"{path}: unreadable run file: {_validation_message(exc)}") from None
        self._record = record
        return record

    @property
    def record(self) -> RunRecord:
        """run.json as last written or read."""
        return self._record if self._record is not None else self.read_run()

    # -- cells --

    def cell_dir(self, key: CellKey) -> Path:
        """Where one cell's files live."""
        base = self.path / "cells" / key.server
        if self.record.cell_layout == "server/repetition":
            return base / str(key.repetition)
        return base / key.point / str(key.repetition)

    def _result_files(self) -> list[Path]:
        depth = "*/*" if self.record.cell_layout == "server/repetition" else "*/*/*"
        return sorted((self.path / "cells").glob(f"{depth}/{RESULT_FILE}"))

    def measured(self) -> set[CellKey]:
        """The cells whose result.json is on disk."""
        return {cell.key for cell in self.read_cells()}

    def clear_unfinished(self, key: CellKey) -> None:
        """Remove what a cell interrupted before its result.json left in its folder."""
        folder = self.cell_dir(key)
        if folder.is_dir() and not (folder / RESULT_FILE).exists():
            shutil.rmtree(folder)

    def remove_stale_temporaries(self) -> None:
        """Delete half-written temporary files a killed orch left (never a finished file)."""
        for pattern in STALE_PATTERNS:
            for path in self.path.rglob(pattern):
                path.unlink(missing_ok=True)

    def write_cell(self, result: CellResult) -> None:
        """Write one cell's result.json atomically."""
        path = self.cell_dir(result.key) / RESULT_FILE
        write_json_atomic(path, result.model_dump(mode="json"))

    def read_cells(self) -> list[CellResult]:
        """Every cell result on disk, in no particular order."""
        record = self.record
        cells = []
        for path in self._result_files():
            try:
                cell = CellResult.model_validate_json(path.read_text(encoding="utf-8"))
            except (OSError, ValidationError) as exc:
                raise UserError(f"{path}: unreadable cell result ({exc})") from None
            if not cell.point:  # orch 0.1.0: one load point, not named in the cell
                cell = cell.model_copy(update={"point": record.points[0].key})
            cells.append(cell)
        return cells

    # -- the run as a whole --

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
