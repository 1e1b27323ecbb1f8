"""The host inventory (hosts.yaml): pydantic models and `load_inventory` with clear errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import UserError
from orchestrator.yaml_file import read_yaml

SECRET_KEYS = frozenset({"password", "passwd", "passphrase", "pass", "secret"})
DEFAULT_WORKDIR = "~/.cache/orch"


class StrictModel(BaseModel):
    """Base for inventory models: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_cpu_list(value: Any) -> list[int]:
    """Accept `[0, 1]`, `3` or a Linux cpulist string like `"0-2,5"`; return sorted CPUs."""
    cpus: list[int] = []
    if isinstance(value, bool):
        raise ValueError('expected a CPU list such as [0, 1] or "0-3"')
    if isinstance(value, int):
        cpus = [value]
    elif isinstance(value, str):
        for part in value.replace(" ", "").split(","):
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match:
                raise ValueError(
                    f'bad CPU list {value!r}: expected numbers and ranges like "0-2,5"'
                )
            first, last = int(match[1]), int(match[2] or match[1])
            if last < first:
                raise ValueError(f"bad CPU range {part!r}: the end is below the start")
            cpus.extend(range(first, last + 1))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", item):
                cpus.extend(parse_cpu_list(item))  # `[0-15]` in YAML is the string "0-15"
                continue
            if isinstance(item, bool) or not isinstance(item, int):
                raise ValueError(f"bad CPU {item!r}: CPUs are whole numbers")
            cpus.append(item)
    else:
        raise ValueError('expected a CPU list such as [0, 1] or "0-3"')
    if not cpus:
        raise ValueError("the CPU list is empty")
    if any(cpu < 0 for cpu in cpus):
        raise ValueError("CPU numbers cannot be negative")
    if len(set(cpus)) != len(cpus):
        raise ValueError("a CPU is listed twice")
    return sorted(cpus)


CpuList = Annotated[list[int], BeforeValidator(parse_cpu_list)]
OptionalCpuList = Annotated[
    list[int] | None,
    BeforeValidator(lambda value: None if value is None else parse_cpu_list(value)),
]


class HostSpec(StrictModel):
    """One machine: this one (`connection: local`) or one reached over SSH."""

    connection: Literal["local", "ssh"] = "ssh"
    address: str = "127.0.0.1"
    user: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    key_file: str | None = None
    jump_host: str | None = None
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    workdir: str | None = None  # overrides the inventory-wide workdir on this host
    env_path: list[str] = []  # directories put first on PATH for every command here


class Listen(StrictModel):
    """Where the server listens on the target."""

    address: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)


class TargetSpec(StrictModel):
    """The machine that builds and runs the servers."""

    host: str
    listen: Listen = Listen()
    cpus: CpuList
    interface: str | None = None
    # Where the run puts the network receive work: server (its CPUs), other, or as-is.
    receive_work: Literal["server", "other", "as-is"] = "as-is"


class LoadHostSpec(StrictModel):
    """One load machine: its host entry, the load tool's cores there, what it dials."""

    host: str
    cpus: CpuList
    target_address: str | None = None


class LoadSpec(StrictModel):
    """The machine(s) that run the load tool: one (`host`, `cpus`) or several (`hosts`)."""

    tool: Literal["k6", "wrk", "h2load"] = "k6"
    host: str | None = None
    cpus: OptionalCpuList = None
    hosts: list[LoadHostSpec] | None = None
    target_address: str | None = None  # with `hosts`: for those that name none themselves
    k6_path: str | None = None
    wrk_path: str | None = None
    h2load_path: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> LoadSpec:
        if self.hosts is not None:
            if self.host is not None or self.cpus is not None:
                key = "load.host" if self.host is not None else "load.cpus"
                raise _KeyedError(
                    key, "give either host and cpus (one load host) or a hosts list, not both"
                )
            if not self.hosts:
                raise _KeyedError("load.hosts", "the list of load hosts is empty")
            return self
        if self.host is None:
            raise _KeyedError("load.host", "required key is missing (or a hosts list)")
        if self.cpus is None:
            raise _KeyedError("load.cpus", "required key is missing")
        return self

    @property
    def members(self) -> list[LoadHostSpec]:
        """Every load host, in the inventory's order (one in the single-host form)."""
        if self.hosts is None:
            assert self.host is not None and self.cpus is not None  # checked on validation
            return [
                LoadHostSpec(host=self.host, cpus=self.cpus, target_address=self.target_address)
            ]
        return [
            entry
            if entry.target_address or not self.target_address
            else entry.model_copy(update={"target_address": self.target_address})
            for entry in self.hosts
        ]

    def key(self, index: int, field: str) -> str:
        """The inventory key of a member's field, as errors name it: `load.cpus` in the
        single-host form, `load.hosts.1.cpus` in the list."""
        return f"load.{field}" if self.hosts is None else f"load.hosts.{index}.{field}"


class Inventory(StrictModel):
    """The whole hosts.yaml."""

    hosts: dict[str, HostSpec]
    target: TargetSpec
    load: LoadSpec
    workdir: str = DEFAULT_WORKDIR
    # Catalogue entries of this inventory's own, checked by orchestrator.catalogue (which
    # also knows the shipped servers.yaml and where this file is).
    servers: dict[str, Any] = {}

    @model_validator(mode="after")
    def _check_references(self) -> Inventory:
        known = ", ".join(sorted(self.hosts)) or "none"
        if self.target.host not in self.hosts:
            raise _KeyedError(
                "target.host",
                f"host '{self.target.host}' is not defined under hosts (defined: {known})",
            )
        seen: set[str] = set()
        for index, member in enumerate(self.load.members):
            key = self.load.key(index, "host")
            if member.host not in self.hosts:
                raise _KeyedError(
                    key, f"host '{member.host}' is not defined under hosts (defined: {known})"
                )
            if member.host in seen:
                raise _KeyedError(key, f"host '{member.host}' is listed twice")
            seen.add(member.host)
            shared = sorted(set(self.target.cpus) & set(member.cpus))
            if shared and self.same_machine(self.target.host, member.host):
                raise _KeyedError(
                    self.load.key(index, "cpus"),
                    f"CPU {shared} is given to both the server and the load tool on the same "
                    "host; give them disjoint cores",
                )
        return self

    def same_machine(self, first: str, second: str) -> bool:
        """True when two host entries are one machine: the same entry, or both this one."""
        return first == second or (
            self.hosts[first].connection == "local" and self.hosts[second].connection == "local"
        )

    @property
    def target_host(self) -> HostSpec:
        """The target's host entry."""
        return self.hosts[self.target.host]

    @property
    def load_members(self) -> list[LoadHostSpec]:
        """Every load host of the inventory, in its order."""
        return self.load.members

    @property
    def first_load(self) -> LoadHostSpec:
        """The first (in the single-host form, the only) load host."""
        return self.load.members[0]

    @property
    def several_load_hosts(self) -> bool:
        """True when the load of each cell is split across more than one load host."""
        return len(self.load.members) > 1

    @property
    def load_host(self) -> HostSpec:
        """The first load host's entry."""
        return self.hosts[self.first_load.host]

    def workdir_of(self, name: str) -> str:
        """The working directory on host `name` (its own, else the inventory-wide one)."""
        return self.hosts[name].workdir or self.workdir

    @property
    def is_loopback(self) -> bool:
        """True when the server and every load host share one machine."""
        return all(self.same_machine(self.target.host, m.host) for m in self.load.members)

    @property
    def dial_address(self) -> str:
        """The address the (first) load host's tool connects to."""
        return self.dial_address_of(self.first_load)

    def dial_address_of(self, member: LoadHostSpec) -> str:
        """The address a load host's tool connects to: its own target_address, else the
        listen address, else (listening on every address) the target host's address."""
        if member.target_address:
            return member.target_address
        listen = self.target.listen.address
        if listen not in ("0.0.0.0", "::"):
            return listen
        return self.target_host.address


class _KeyedError(ValueError):
    """A cross-field error that knows which key it is about."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _key_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _describe(error: Any) -> tuple[str, str]:
    """Turn one pydantic error dict into (key path, message)."""
    loc = tuple(error.get("loc", ()))
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _KeyedError):
        return ctx_error.key, str(ctx_error)
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if error.get("type") == "extra_forbidden":
        message = f"unknown key '{loc[-1]}'" if loc else "unknown key"
        if loc and str(loc[-1]).lower() in SECRET_KEYS:
            message = (
                f"'{loc[-1]}' is not accepted: passwords never go in the inventory; "
                "use key_file, ssh-agent or ~/.ssh/config"
            )
    elif error.get("type") == "missing":
        message = "required key is missing"
    # Model validators have no field location; their message may carry it.
    return _key_path(loc), message


def parse_inventory(data: Any, source: str) -> Inventory:
    """Validate already-loaded YAML data; errors name `source` and the key path."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: the inventory must be a mapping with hosts, target and load")
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        key, message = _describe(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"{source}: {key}: {message}{more}") from None


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate a hosts.yaml file, raising UserError with one clear line."""
    path = Path(path)
    return parse_inventory(read_yaml(path, "inventory"), str(path))


def describe_inventory(inv: Inventory, shares: Sequence[str] = ()) -> list[str]:
    """Human-readable lines saying what the inventory means; `shares` says, per load host,
    which part of each cell's load it runs (when there are several)."""
    if inv.is_loopback:
        mode = "loopback (server and load on one host)"
    elif inv.several_load_hosts:
        mode = f"{len(inv.load_members)} load machines and a target"
    else:
        mode = "two machines"
    lines = [f"mode: {mode}"]
    for name, spec in inv.hosts.items():
        how = (
            "this machine"
            if spec.connection == "local"
            else (
                f"ssh {spec.user + '@' if spec.user else ''}{spec.address}:{spec.port}"
                + (f" via {spec.jump_host}" if spec.jump_host else "")
            )
        )
        lines.append(f"host {name}: {how}")
    t = inv.target
    lines.append(
        f"target: {t.host}, server listens on {t.listen.address}:{t.listen.port}, "
        f"pinned to CPUs {t.cpus}" + (f", NIC {t.interface}" if t.interface else "")
    )
    for index, member in enumerate(inv.load_members):
        share = f", {shares[index]}" if index < len(shares) else ""
        lines.append(
            f"load: {member.host}, {inv.load.tool} pinned to CPUs {member.cpus}{share}, dials "
            f"{inv.dial_address_of(member)}:{t.listen.port}"
        )
    lines.append(f"workdir: {inv.workdir}")
    return lines
