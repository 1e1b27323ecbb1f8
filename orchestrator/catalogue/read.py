"""The server catalogue: the shipped servers.yaml plus the inventory's `servers:` section,
validated with one-line errors, and the matrices and `--server` names it answers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.catalogue.entry import EntryError, ServerEntry
from orchestrator.catalogue.spec import APIS, ServerSpec
from orchestrator.errors import UserError
from orchestrator.inventory import Inventory
from orchestrator.paths import project_root
from orchestrator.yaml_file import read_yaml

CATALOGUE_FILE = "servers.yaml"
DEFAULT_MATRIX = "full"
# Folders of the workdir orch uses itself: a server's sources cannot sync there.
RESERVED_DIRS = frozenset({"k6", "wrk", "bin", "runs", "built"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def shipped_catalogue() -> Path:
    """servers.yaml of the checkout: the six reference servers and nginx."""
    return project_root() / CATALOGUE_FILE


def _message(error: Mapping[str, Any]) -> tuple[str, str]:
    """(key below the entry, message) of one pydantic error."""
    loc = [str(part) for part in error.get("loc", ())]
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, EntryError):
        return ctx_error.key, str(ctx_error)
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = f"unknown key '{loc[-1]}'"
        loc = loc[:-1]
    elif error.get("type") == "missing":
        message = "required key is missing"
    return ".".join(loc), message


def _entry(name: str, raw: Any, source: str, base: Path) -> ServerSpec:
    """One entry, its sources and file templates made absolute (they are relative to the
    file that names them)."""
    where = f"{source}: servers.{name}"
    if not _NAME.fullmatch(name):
        raise UserError(f"{where}: a name is letters, digits, '.', '_' and '-' (not first)")
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping of the server's keys")
    try:
        entry = ServerEntry.model_validate(raw)
    except ValidationError as exc:
        key, message = _message(exc.errors()[0])
        raise UserError(f"{where}{'.' + key if key else ''}: {message}") from None
    update: dict[str, Any] = {}
    if entry.sources is not None:
        folder = (base / entry.sources).resolve()
        if not folder.is_dir():
            raise UserError(f"{where}.sources: no folder {folder}")
        update["sources"] = str(folder)
    files = {}
    for file_name, template in entry.files.items():
        path = (base / template).resolve()
        if not path.is_file():
            raise UserError(f"{where}.files.{file_name}: no file {path}")
        files[file_name] = str(path)
    if files:
        update["files"] = files
        texts = [Path(path).read_text(encoding="utf-8") for path in files.values()]
        try:
            entry.check_listen_placeholders(texts)
        except EntryError as exc:
            raise UserError(f"{where}.{exc.key}: {exc}") from None
    return ServerSpec(name, entry.model_copy(update=update))


def parse_servers(data: Any, source: str, base: Path) -> list[ServerSpec]:
    """The entries of a `servers:` mapping read from `source` (paths relative to `base`)."""
    if data is None:
        return []
    if not isinstance(data, dict):
        raise UserError(f"{source}: servers: expected a mapping of server names to entries")
    return [_entry(str(name), raw, source, base) for name, raw in data.items()]


def read_catalogue_file(path: Path) -> list[ServerSpec]:
    """The entries of a catalogue file (`servers:` and nothing else at its top)."""
    data = read_yaml(path, "catalogue")
    if not isinstance(data, dict):
        raise UserError(f"{path}: a catalogue is a mapping with one key, servers")
    unknown = [key for key in data if key != "servers"]
    if unknown:
        raise UserError(f"{path}: {unknown[0]}: unknown key '{unknown[0]}'")
    return parse_servers(data.get("servers"), str(path), path.parent)


def remote_folder(entry: ServerEntry) -> str | None:
    """Where an entry's sources go below the target's workdir: their folder's name."""
    return None if entry.sources is None else Path(entry.sources).name


@dataclass(frozen=True)
class Catalogue:
    """Every server orch can run, in catalogue order (the file's, then the inventory's)."""

    servers: tuple[ServerSpec, ...]
    origins: Mapping[str, str]  # server name -> the file it came from

    def by_name(self, name: str) -> ServerSpec:
        """A server by name; UserError listing the known names."""
        for server in self.servers:
            if server.name == name:
                return server
        known = ", ".join(s.name for s in self.servers)
        raise UserError(f"--server: unknown server '{name}' (known: {known})")

    @property
    def matrices(self) -> dict[str, tuple[ServerSpec, ...]]:
        """Named matrices (entries' `matrices`: full, reference, ...), then one per API and
        one per language, each holding the servers of `full` with that API or language."""
        found: dict[str, list[ServerSpec]] = {}
        for server in self.servers:
            for name in server.entry.matrices:
                found.setdefault(name, []).append(server)
        full = found.get(DEFAULT_MATRIX, [])
        for api in APIS:
            for server in full:
                if server.api == api:
                    found.setdefault(api, []).append(server)
        for server in full:
            found.setdefault(server.language.lower(), []).append(server)
        return {name: tuple(dict.fromkeys(members)) for name, members in found.items()}

    def select(self, matrix: str | None, names: Sequence[str]) -> list[ServerSpec]:
        """A matrix plus any --server names (`full` when neither), in catalogue order."""
        matrices = self.matrices
        chosen: set[ServerSpec] = set()
        if matrix is not None:
            if matrix not in matrices:
                known = ", ".join(matrices)
                raise UserError(f"--matrix: unknown matrix '{matrix}' (known: {known})")
            chosen.update(matrices[matrix])
        chosen.update(self.by_name(name) for name in names)
        if not chosen:
            chosen.update(matrices.get(DEFAULT_MATRIX, ()))
        return [server for server in self.servers if server in chosen]

    def describe(self) -> list[str]:
        """What `orch check` prints about the catalogue."""
        files = list(dict.fromkeys(self.origins.values()))
        counts = ", ".join(
            f"{f} ({sum(1 for o in self.origins.values() if o == f)})" for f in files
        )
        lines = [f"servers: {len(self.servers)} from {counts}"]
        lines += [f"server {s.name}: {s.entry.describe()}" for s in self.servers]
        matrices = "; ".join(
            f"{name} ({', '.join(s.name for s in members)})"
            for name, members in self.matrices.items()
        )
        return [*lines, f"matrices: {matrices}"]


def _check_together(
    servers: Sequence[ServerSpec], origins: Mapping[str, str], inv: Inventory | None, where: str
) -> None:
    """What no entry can tell alone: a fixed port on the servers' port, and two folders
    that would sync to one place on the target."""
    folders: dict[str, str] = {}
    for server in servers:
        entry, origin = server.entry, origins[server.name]
        listen = inv.target.listen.port if inv is not None else None
        if entry.port is not None and entry.port == listen:
            there = "" if origin == where else f" in {where}"
            raise UserError(
                f"{origin}: servers.{server.name}.port: {entry.port} is also target.listen.port"
                f"{there}, where the other servers are told to listen; a fixed port must differ"
            )
        folder = remote_folder(entry)
        if folder is None or entry.sources is None:
            continue
        if folder in RESERVED_DIRS:
            raise UserError(
                f"{origin}: servers.{server.name}.sources: a folder named '{folder}' would "
                f"sync onto orch's own {folder}/ in the workdir; rename it"
            )
        other = folders.setdefault(folder, entry.sources)
        if other != entry.sources:
            raise UserError(
                f"{origin}: servers.{server.name}.sources: {entry.sources} and {other} "
                f"would both sync to {folder}/ in the workdir; rename one"
            )


def load_catalogue(inv: Inventory | None = None, inventory: Path | None = None) -> Catalogue:
    """The shipped servers.yaml, then the entries of the inventory `inv` (read from the
    file `inventory`, which their relative paths start from)."""
    shipped = shipped_catalogue()
    servers = read_catalogue_file(shipped)
    origins = {server.name: str(shipped) for server in servers}
    where = str(inventory) if inventory is not None else "the inventory"
    if inv is not None and inv.servers:
        base = inventory.parent if inventory is not None else Path.cwd()
        for server in parse_servers(inv.servers, where, base):
            if server.name in origins:
                raise UserError(
                    f"{where}: servers.{server.name}: the name is already used in "
                    f"{origins[server.name]}; give this server another name"
                )
            origins[server.name] = where
            servers.append(server)
    _check_together(servers, origins, inv, where)
    return Catalogue(tuple(servers), origins)


def recorded_catalogue(entries: Mapping[str, ServerEntry]) -> Catalogue:
    """The servers a run recorded (run.json keeps their entries), in its order."""
    servers = tuple(ServerSpec(name, entry) for name, entry in entries.items())
    return Catalogue(servers, {name: "run.json" for name in entries})
