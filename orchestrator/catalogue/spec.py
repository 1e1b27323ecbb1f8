"""`ServerSpec`: a catalogue entry under its name, as the rest of orch passes servers around."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.catalogue.entry import ServerEntry

APIS = ("epoll", "io_uring", "other")
COMPARED_APIS = ("epoll", "io_uring")  # the two the verdict compares
# How the seed's table writes the languages it knows; any other is shown as written.
LANGUAGE_LABELS = {"c": "C", "rust": "Rust", "zig": "Zig"}


def language_label(language: str) -> str:
    """`c` -> `C`; a language orch does not know is shown as its entry writes it."""
    return LANGUAGE_LABELS.get(language.lower(), language)


@dataclass(frozen=True)
class ServerSpec:
    """One server of a run, e.g. rust-io_uring or nginx: equal by name (names are unique
    in a catalogue)."""

    name: str
    entry: ServerEntry = field(compare=False, repr=False)

    @property
    def api(self) -> str:
        """epoll, io_uring or other."""
        return self.entry.api

    @property
    def language(self) -> str:
        """The language as its entry writes it (`c`, `rust`, `nginx`), the key of its
        language matrix in lower case."""
        return self.entry.language

    @property
    def language_label(self) -> str:
        """The language as the seed's table writes it."""
        return language_label(self.entry.language)
