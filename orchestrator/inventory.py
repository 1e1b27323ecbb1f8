"""The host inventory (hosts.yaml): pydantic models and `load_inventory` with clear errors."""

from __future__ import annotations

import re
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


class LoadSpec(StrictModel):
    """The machine that runs the load tool."""

    host: str
    tool: Literal["k6", "wrk"] = "k6"
    cpus: CpuList
    target_address: str | None = None
    k6_path: str | None = None
    wrk_path: str | None = None


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
        for section, name in (("target", self.target.host), ("load", self.load.host)):
            if name not in self.hosts:
                known = ", ".join(sorted(self.hosts)) or "none"
                raise _KeyedError(
                    f"{section}.host",
                    f"host '{name}' is not defined under hosts (defined: {known})",
                )
        if self.is_loopback:
            shared = sorted(set(self.target.cpus) & set(self.load.cpus))
            if shared:
                raise _KeyedError(
                    "load.cpus",
                    f"CPU {shared} is given to both the server and the load tool on the same "
                    "host; give them disjoint cores",
                )
        return self

    @property
    def target_host(self) -> HostSpec:
        """The target's host entry."""
        return self.hosts[self.target.host]

    @property
    def load_host(self) -> HostSpec:
        """The load host's entry."""
        return self.hosts[self.load.host]

    def workdir_of(self, name: str) -> str:
        """The working directory on host `name` (its own, else the inventory-wide one)."""
        return self.hosts[name].workdir or self.workdir

    @property
    def is_loopback(self) -> bool:
        """True when server and load tool share one machine."""
        return self.target.host == self.load.host

    @property
    def dial_address(self) -> str:
        """The address the load tool connects to."""
        if self.load.target_address:
            return self.load.target_address
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


def describe_inventory(inv: Inventory) -> list[str]:
    """Human-readable lines saying what the inventory means."""
    mode = "loopback (server and load on one host)" if inv.is_loopback else "two machines"
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
    t, ld = inv.target, inv.load
    lines.append(
        f"target: {t.host}, server listens on {t.listen.address}:{t.listen.port}, "
        f"pinned to CPUs {t.cpus}" + (f", NIC {t.interface}" if t.interface else "")
    )
    lines.append(
        f"load: {ld.host}, {ld.tool} pinned to CPUs {ld.cpus}, dials "
        f"{inv.dial_address}:{t.listen.port}"
    )
    lines.append(f"workdir: {inv.workdir}")
    return lines
