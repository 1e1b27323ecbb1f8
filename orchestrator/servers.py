"""The server catalogue: six servers (language x API), their binaries and matrix presets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import UserError

LANGUAGES = ("c", "rust", "zig")
APIS = ("epoll", "io_uring")
LANGUAGE_LABELS = {"c": "C", "rust": "Rust", "zig": "Zig"}


@dataclass(frozen=True, order=True)
class ServerSpec:
    """One benchmark server, e.g. rust-io_uring."""

    api: str
    language: str

    @property
    def name(self) -> str:
        """The make target and binary name, e.g. `c-epoll`."""
        return f"{self.language}-{self.api}"

    @property
    def language_label(self) -> str:
        """The language as the seed's table writes it."""
        return LANGUAGE_LABELS[self.language]

    @property
    def binary(self) -> str:
        """The binary's path relative to the synced tree."""
        return f"servers/bin/{self.name}"

    @property
    def needs_io_uring(self) -> bool:
        """True for the io_uring servers."""
        return self.api == "io_uring"


# Grouped by API like the seed's table, languages in a fixed order.
ALL_SERVERS: tuple[ServerSpec, ...] = tuple(
    ServerSpec(api=api, language=language) for api in APIS for language in LANGUAGES
)
BY_NAME = {server.name: server for server in ALL_SERVERS}

MATRICES: dict[str, tuple[ServerSpec, ...]] = {
    "full": ALL_SERVERS,
    **{api: tuple(s for s in ALL_SERVERS if s.api == api) for api in APIS},
    **{lang: tuple(s for s in ALL_SERVERS if s.language == lang) for lang in LANGUAGES},
}


def server_by_name(name: str) -> ServerSpec:
    """Look a server up by name, with a clear error listing the valid names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UserError(
            f"--server: unknown server '{name}' (known: {', '.join(BY_NAME)})"
        ) from None


def select_servers(matrix: str | None, names: Sequence[str]) -> list[ServerSpec]:
    """The servers a run covers: a matrix preset plus any --server names, in catalogue order."""
    chosen: set[ServerSpec] = set()
    if matrix is not None:
        if matrix not in MATRICES:
            raise UserError(f"--matrix: unknown matrix '{matrix}' (known: {', '.join(MATRICES)})")
        chosen.update(MATRICES[matrix])
    chosen.update(server_by_name(name) for name in names)
    if not chosen:
        chosen.update(MATRICES["full"])
    return [server for server in ALL_SERVERS if server in chosen]
