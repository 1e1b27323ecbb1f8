"""One catalogue entry: how to build, start, recognise as ready, verify and stop a server.

Commands are templates: `{name}` placeholders are filled by orch. A start command is split
into words (shell quoting rules, no shell runs it: the PID orch starts is the server's) and
each word is filled on its own, so a value holding a space stays one word.
"""

from __future__ import annotations

import re
import shlex
import signal
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# What each command may name. Start: where to listen, a directory of the server's own
# for this start (generated files, pid and temporary files) and the synced sources.
START_PLACEHOLDERS = ("host", "port", "dir", "sources")
BUILD_PLACEHOLDERS = ("python", "sources")
FILE_PLACEHOLDERS = START_PLACEHOLDERS  # in generated files; other braces are left alone
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EntryError(ValueError):
    """A bad value, with the key of the entry it is about (`start`, `ready.line`)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def placeholders(text: str) -> list[str]:
    """The `{name}` placeholders a command or file names, in order."""
    return _PLACEHOLDER.findall(text)


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with each known `{name}` replaced; unknown braces stay as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), text)


def _check_placeholders(key: str, text: str, allowed: tuple[str, ...]) -> None:
    unknown = [name for name in placeholders(text) if name not in allowed]
    if unknown:
        raise EntryError(key, f"unknown placeholder {{{unknown[0]}}} (known: {', '.join(allowed)})")


def signal_name(value: str) -> str:
    """`TERM`, `SIGTERM` or `term` as `TERM`; ValueError for a name Linux does not have."""
    name = value.upper().removeprefix("SIG")
    if name not in signal.Signals.__members__ and f"SIG{name}" not in signal.Signals.__members__:
        raise ValueError(f"unknown signal '{value}' (e.g. TERM, INT, QUIT)")
    return name


class Ready(BaseModel):
    """How orch sees the server is ready: a line of its output matching `line` (a regular
    expression), or, without one, a TCP connect and one answered request. A TCP connect
    from the load host is always needed too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data == "tcp":
            return {"line": None}
        if isinstance(data, dict):
            return data
        raise ValueError("expected tcp or {line: PATTERN}")

    @field_validator("line")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression: {exc}") from None
        return value

    def describe(self) -> str:
        """`a line matching 'listening on'` or `a TCP connect and one answered request`."""
        if self.line is None:
            return "a TCP connect and one answered request"
        return f"a line matching '{self.line}'"


class ServerEntry(BaseModel):
    """A server of the catalogue (servers.yaml, or the inventory's `servers:` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: Literal["epoll", "io_uring", "other"]
    language: str = Field(min_length=1)
    sources: str | None = None  # a folder synced to the target (relative to its file)
    outputs: tuple[str, ...] = ()  # what the build makes in `sources`: never synced
    needs: tuple[Literal["make", "cc", "liburing", "cargo", "zig"], ...] = ()
    build: str | None = None  # a shell command run on the target in the synced sources
    fresh: str | None = None  # exits 0 when the build is up to date (else: content hash)
    start: str
    port: int | None = Field(default=None, ge=1, le=65535)  # a port it cannot be told
    files: dict[str, str] = {}  # generated into {dir} before start: name -> template
    ready: Ready = Ready()
    stop_signal: str = "TERM"
    response: Literal["exact", "http"] = "http"  # what verify requires of each answer
    matrices: tuple[str, ...] = ()  # named matrices it belongs to (full, reference, ...)
    version: str | None = None  # a command printing its version, kept in run.json
    note: str = ""  # shown in the report beside its rows

    @field_validator("stop_signal")
    @classmethod
    def _signal(cls, value: str) -> str:
        return signal_name(value)

    @field_validator("files")
    @classmethod
    def _file_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in (".", ".."):
                raise ValueError(f"'{name}' is not a plain file name")
        return value

    @model_validator(mode="after")
    def _commands(self) -> ServerEntry:
        try:
            words = shlex.split(self.start)
        except ValueError as exc:
            raise EntryError("start", f"cannot split into words: {exc}") from None
        if not words:
            raise EntryError("start", "the start command is empty")
        _check_placeholders("start", self.start, START_PLACEHOLDERS)
        if not self.files:  # else the loader checks once it has read them
            self.check_listen_placeholders(())
        if "sources" in placeholders(self.start) and self.sources is None:
            raise EntryError("start", "{sources} names no folder: the entry has no sources")
        for key in ("build", "fresh", "version"):
            command = getattr(self, key)
            if command is not None:
                _check_placeholders(key, command, BUILD_PLACEHOLDERS)
        if self.fresh is not None and self.build is None:
            raise EntryError("fresh", "a freshness probe needs a build command")
        if self.outputs and self.sources is None:
            raise EntryError("outputs", "build outputs need sources to live in")
        return self

    def check_listen_placeholders(self, file_texts: Sequence[str]) -> None:
        """EntryError unless the start command (or a generated file) says where to listen
        with {host} and {port}, or the entry gives its fixed port."""
        used = set(placeholders(self.start))
        for text in file_texts:
            used.update(placeholders(text))
        missing = [name for name in ("host", "port") if name not in used]
        if self.port is None and missing:
            names = " and ".join(f"{{{name}}}" for name in missing)
            where = "the start command or its files" if self.files else "the start command"
            raise EntryError(
                "start",
                f"no {names} placeholder: {where} must say where to listen with {{host}} "
                "and {port}, or the entry must give its fixed port",
            )

    @property
    def signal_number(self) -> int:
        """The stop signal's number."""
        return int(signal.Signals[f"SIG{self.stop_signal}"])

    def start_words(self) -> list[str]:
        """The start command split into words, placeholders not yet filled."""
        return shlex.split(self.start)

    def stopped_cleanly(self, status: int | None) -> bool:
        """Whether `status` is a normal end on the stop signal: exit status 0; a server with
        the reference servers' contract (`response: exact`, servers/README.md) must exit 0,
        any other may also end by the signal itself."""
        if status == 0:
            return True
        if self.response == "exact" or status is None:
            return False
        return status in (-self.signal_number, 128 + self.signal_number)

    def describe(self) -> str:
        """One line for `orch check`."""
        where = f"fixed port {self.port}" if self.port is not None else "told {host} {port}"
        parts = [
            f"{self.api}, {self.language}",
            f"start `{self.start}` ({where})",
            f"ready on {self.ready.describe()}",
            f"stop {self.stop_signal}",
            f"verify {'the exact 81 bytes' if self.response == 'exact' else 'HTTP/1.1 200'}",
        ]
        if self.build:
            parts.insert(1, f"build `{self.build}`" + (" in its sources" if self.sources else ""))
        return "; ".join(parts)
