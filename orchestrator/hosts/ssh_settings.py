"""How to reach one SSH host: the inventory entry merged with the OpenSSH client config.

fabric reads the config files and builds the `Connection` (host name, user and port
from `~/.ssh/config`); orch adds what the inventory decides: its keys, known_hosts,
time limit and jump hosts win over the config file's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fabric
import paramiko

from orchestrator.errors import UserError
from orchestrator.inventory import HostSpec

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
USER_SSH_CONFIG = "~/.ssh/config"
SYSTEM_SSH_CONFIG = "/etc/ssh/ssh_config"


@dataclass(frozen=True)
class SshSettings:
    """How to reach one host: the inventory entry merged with ~/.ssh/config."""

    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    key_from_inventory: bool
    known_hosts: str
    accept_new_host_keys: bool
    connect_timeout: float
    jump: str | None
    proxy_command: str | None


def fabric_config(source: paramiko.SSHConfig | str | Path | None = None) -> Any:
    """fabric's Config holding the SSH client config to use.

    source: a parsed config (tests), a file to read instead of the usual ones (as
    `ssh -F`), or None for ~/.ssh/config and /etc/ssh/ssh_config, as fabric and OpenSSH
    read them. fabric's own settings files and environment variables are not read: the
    inventory is orch's configuration.
    """
    if isinstance(source, paramiko.SSHConfig):
        return fabric.Config(ssh_config=source, lazy=True)
    if source is None:
        config = fabric.Config(lazy=True)
        where = f"{Path(USER_SSH_CONFIG).expanduser()} or {SYSTEM_SSH_CONFIG}"
    else:
        path = Path(source).expanduser()
        config = fabric.Config(runtime_ssh_path=str(path), lazy=True)
        where = str(path)
    try:
        config.load_ssh_config()
    except (OSError, paramiko.SSHException) as exc:
        raise UserError(f"{where}: cannot read SSH config: {exc}") from None
    return config


def new_connection(name: str, spec: HostSpec, config: Any) -> Any:
    """A fabric Connection for the inventory entry, not yet open.

    It gets no gateway here: fabric would build ProxyJump hops itself, each trusting any
    host key; `SshLink` gives it one. fabric rounds the connect time limit down to whole
    seconds (0.5 s would mean none), so orch hands paramiko the limit itself.
    """
    try:
        connection = fabric.Connection(
            spec.address,
            user=spec.user,
            port=spec.port if "port" in spec.model_fields_set else None,
            config=config,
            gateway=False,
        )
    except ValueError as exc:  # e.g. a port both in the address and in `port`
        raise UserError(f"inventory hosts.{name}.address: {exc}") from None
    connection.connect_timeout = None
    return connection


def settings_of(spec: HostSpec, accept_new_host_keys: bool, connection: Any) -> SshSettings:
    """Merge: keys set in the inventory win, then ~/.ssh/config (as fabric looked it up
    for the Connection), then defaults."""
    given = spec.model_fields_set
    found: Any = connection.ssh_config
    if spec.key_file:
        key_files: tuple[str, ...] = (spec.key_file,)
    else:
        key_files = tuple(str(path) for path in found.get("identityfile", []))
    known = spec.known_hosts
    if known is None:
        files = str(found.get("userknownhostsfile", "")).split()
        known = files[0] if files else DEFAULT_KNOWN_HOSTS
    timeout = spec.connect_timeout
    if "connect_timeout" not in given and "connecttimeout" in found:
        timeout = float(found["connecttimeout"])
    jump = spec.jump_host
    if jump is None and str(found.get("proxyjump", "none")).lower() != "none":
        jump = str(found["proxyjump"])
    proxy = found.get("proxycommand")
    return SshSettings(
        hostname=str(connection.host),
        port=int(connection.port),
        user=str(connection.user),
        key_files=key_files,
        key_from_inventory=spec.key_file is not None,
        known_hosts=str(Path(known).expanduser()),
        accept_new_host_keys=accept_new_host_keys or spec.accept_new_host_keys,
        connect_timeout=timeout,
        jump=jump,
        proxy_command=None if proxy is None or str(proxy).lower() == "none" else str(proxy),
    )


def resolve_settings(
    name: str,
    spec: HostSpec,
    accept_new_host_keys: bool,
    config: paramiko.SSHConfig | Any,
) -> SshSettings:
    """The settings the Connection for `spec` is opened with (config: a parsed SSH config
    or a fabric Config)."""
    if isinstance(config, paramiko.SSHConfig):
        config = fabric_config(config)
    return settings_of(spec, accept_new_host_keys, new_connection(name, spec, config))


def parse_jump(text: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (IPv6 as `[addr]:port`) into (user, host, port).

    fabric's own host-string parser leaves IPv6 ports alone and checks no port range.
    """
    user, _, rest = text.strip().rpartition("@")
    port: int | None = None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":"):
            port = _port(tail[1:], text)
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = _port(port_text, text)
    else:
        host = rest
    if not host:
        raise UserError(f"jump host {text!r}: expected [user@]host[:port]")
    return user or None, host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UserError(f"jump host {whole!r}: bad port {text!r}")
    return int(text)


def jump_spec(text: str, base: HostSpec) -> HostSpec:
    """A HostSpec for a `user@host:port` jump (a comma list: the last hop, via the others).

    The hop inherits the key, known_hosts and time limit of the host it leads to.
    """
    hops = [hop for hop in text.split(",") if hop.strip()]
    if not hops:
        raise UserError(f"jump host {text!r}: empty")
    user, host, port = parse_jump(hops[-1])
    fields: dict[str, Any] = {
        "address": host,
        "key_file": base.key_file,
        "known_hosts": base.known_hosts,
        "accept_new_host_keys": base.accept_new_host_keys,
        "connect_timeout": base.connect_timeout,
        "jump_host": ",".join(hops[:-1]) or None,
    }
    if user:
        fields["user"] = user
    if port:
        fields["port"] = port
    return HostSpec(**fields)
