"""`SshLink`: one fabric `Connection` opened the way orch requires.

fabric does the connecting: the client config, the `direct-tcpip` tunnel through a
gateway `Connection` (jump hosts), ProxyCommand, key files and the SFTP session. orch
adds what fabric lacks or decides otherwise:

- host keys: fabric trusts any unknown key (AutoAddPolicy) on every `Connection`,
  gateways included; here unknown keys are refused unless accepted on request, changed
  keys always are, and known_hosts comes from the inventory or the client config;
- the inventory's key loaded by orch, so a bad key file is a one-line error;
- keepalives, TCP_NODELAY and TCP_USER_TIMEOUT on the socket, so a dead peer is noticed;
- one-line errors that say which step failed (TCP, tunnel, handshake, login).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Literal

import paramiko

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.ssh_settings import (
    SshSettings,
    jump_spec,
    new_connection,
    settings_of,
)
from orchestrator.inventory import HostSpec

SFTP_TIMEOUT_SECONDS = 120.0
# A connection whose packets go unanswered this long is dead (a cut cable, a host gone):
# paramiko's keepalives give TCP something to send, and the kernel then gives up after
# DEAD_AFTER_SECONDS instead of retransmitting for a quarter of an hour.
KEEPALIVE_SECONDS = 5
DEAD_AFTER_SECONDS = 15
SETTLE_STEP_SECONDS = 0.02

# paramiko logs handshake failures with tracebacks through logging's last-resort handler;
# orch reports them itself as one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Unknown host keys: refuse, or (opted in) trust and append them to known_hosts."""

    def __init__(self, label: str, settings: SshSettings) -> None:
        self._label = label
        self._settings = settings

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        """Called by paramiko when known_hosts has no key for `hostname`."""
        if not self._settings.accept_new_host_keys:
            raise UserError(
                f"{self._label}: host key not known ({key.get_name()} "
                f"{key.fingerprint}) in {self._settings.known_hosts}; refusing to connect. "
                "If this is the right machine, pass --accept-new-host-keys (or set "
                "accept_new_host_keys: true on the host) to trust and record it"
            )
        append_known_host(Path(self._settings.known_hosts), hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def append_known_host(path: Path, hostname: str, key: paramiko.PKey) -> None:
    """Add one `host type key` line to a known_hosts file (created when missing)."""
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            file.seek(file.tell() - 1)
            if file.read(1) != "\n":
                line = "\n" + line
        file.write(line)


def load_key(settings: SshSettings, where: str) -> paramiko.PKey | None:
    """The inventory's key, loaded here so a bad file is a one-line UserError."""
    if not settings.key_from_inventory:
        return None
    path = Path(settings.key_files[0]).expanduser()
    if not path.is_file():
        raise UserError(f"{where}: {path} does not exist")
    try:
        return paramiko.PKey.from_path(path)
    except TypeError:
        if os.environ.get("SSH_AUTH_SOCK"):
            return None  # encrypted: the agent may hold it unlocked
        raise UserError(
            f"{where}: {path} is protected by a passphrase; load it into ssh-agent "
            "(passphrases are never read from the inventory)"
        ) from None
    except (OSError, ValueError, paramiko.SSHException) as exc:
        raise UserError(f"{where}: {path} is not a usable private key ({exc})") from None


class SshLink:
    """A fabric Connection to one host, possibly through a chain of gateway links."""

    def __init__(
        self,
        name: str,
        spec: HostSpec,
        *,
        config: Any,
        accept_new_host_keys: bool = False,
        gateway: SshLink | Literal[False] | None = None,
    ) -> None:
        """Build the Connection (nothing is opened yet).

        gateway: the link to tunnel through; False means "connect directly"; None means
        the spec's or the client config's jump (`user@host:port[,...]`), else its
        ProxyCommand. The link owns its gateway and closes it.
        """
        self.name = name
        self.label = f"{name} ({spec.address})"
        self.connection = new_connection(name, spec, config)
        self.settings = settings_of(spec, accept_new_host_keys, self.connection)
        self.gateway: SshLink | None = None
        if gateway is None and self.settings.jump:
            gateway = SshLink(
                f"{name}'s jump host {self.settings.jump}",
                jump_spec(self.settings.jump, spec),
                config=config,
                accept_new_host_keys=self.settings.accept_new_host_keys,
            )
        if isinstance(gateway, SshLink):
            self.gateway = gateway
            self.connection.gateway = gateway.connection
        elif gateway is None and self.settings.proxy_command:
            self.connection.gateway = self.settings.proxy_command
        else:
            self.connection.gateway = False
        self._client: paramiko.SSHClient = self.connection.client
        known = Path(self.settings.known_hosts)
        if known.is_file():
            try:
                self._client.get_host_keys().load(str(known))
            except (OSError, paramiko.SSHException) as exc:
                raise UserError(f"{known}: cannot read known_hosts: {exc}") from None
        self._client.set_missing_host_key_policy(HostKeyPolicy(self.label, self.settings))

    # -- opening --

    def transport(self) -> paramiko.Transport:
        """The live transport, connecting (again, once) when there is none."""
        transport = self._client.get_transport()
        if transport is not None and transport.is_active():
            return transport
        if self.gateway is not None:
            self.gateway.transport()
        self.drop()
        self.connection.connect_kwargs = self._connect_kwargs()
        try:
            self.connection.open()
        except UserError:
            self.drop()
            raise
        except paramiko.BadHostKeyException as exc:
            self.drop()
            raise HostError(
                f"{self.label}: host key CHANGED: it offered {exc.key.get_name()} "
                f"{exc.key.fingerprint} but {self.settings.known_hosts} records "
                f"{exc.expected_key.fingerprint}; refusing to connect (possible "
                "man-in-the-middle). If the machine was really reinstalled, remove its old "
                "line from that file"
            ) from None
        except paramiko.AuthenticationException as exc:
            self.drop()
            raise HostError(
                f"{self.label}: authentication as {self.settings.user} failed with "
                f"{self._tried_keys()} ({reason(exc)})"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            failure = self._open_failure(exc)
            self.drop()
            raise failure from None
        transport = self._client.get_transport()
        if transport is None:
            raise HostError(f"{self.label}: SSH connection lost")
        _tune(transport)
        return transport

    def _connect_kwargs(self) -> dict[str, Any]:
        settings = self.settings
        key = load_key(settings, f"inventory hosts.{self.name}.key_file")
        # Keys named by ~/.ssh/config count only when present, as with OpenSSH's ssh.
        config_keys = [
            str(Path(path).expanduser())
            for path in ([] if settings.key_from_inventory else settings.key_files)
            if Path(path).expanduser().is_file()
        ]
        limit = settings.connect_timeout
        return {
            "pkey": key,
            "key_filename": config_keys or None,
            "allow_agent": True,
            "look_for_keys": not settings.key_from_inventory and not config_keys,
            "timeout": limit,
            "banner_timeout": limit,
            "auth_timeout": limit,
            # Also the time limit for opening a tunnel through this host.
            "channel_timeout": limit,
        }

    def _open_failure(self, exc: BaseException) -> HostError:
        """Say which step failed: paramiko makes the transport only once the TCP
        connection (or the tunnel, or the ProxyCommand) is there."""
        settings = self.settings
        target = f"{settings.hostname}:{settings.port}"
        limit = settings.connect_timeout
        if self._client.get_transport() is not None:
            why = f"SSH handshake with {target} failed (time limit {limit:g} s): {reason(exc)}"
        elif self.gateway is not None:
            why = f"jump host {self.gateway.name} cannot reach {target}: {reason(exc)}"
        elif isinstance(self.connection.gateway, str):
            why = f"ProxyCommand from ~/.ssh/config failed: {exc}"
        else:
            why = _tcp_failure(exc, target, settings)
        return HostError(f"{self.label}: {why}")

    def _tried_keys(self) -> str:
        keys = ", ".join(self.settings.key_files) or "the default keys in ~/.ssh"
        agent = " and ssh-agent" if os.environ.get("SSH_AUTH_SOCK") else ""
        return f"key {keys}{agent}"

    # -- using --

    @property
    def opened(self) -> bool:
        """False before the first connection and after a failed attempt to (re)connect:
        then there is no point in trying again to clean up."""
        return self._client.get_transport() is not None

    def connected(self, settle: float = 0.2) -> bool:
        """True while the SSH connection is up (no reconnection is attempted).

        A dying connection closes its channels a moment before it reports itself
        inactive, so a live answer is given only after `settle` seconds.
        """
        deadline = time.monotonic() + settle
        while True:
            transport = self._client.get_transport()
            if transport is None or not transport.is_active():
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(SETTLE_STEP_SECONDS)

    def sftp(self) -> paramiko.SFTPClient:
        """The Connection's one SFTP session (fabric keeps it), on a live connection."""
        self.transport()
        sftp = self._open_sftp()
        channel = sftp.get_channel()
        if channel is None or channel.closed:
            # fabric keeps its SFTP session until the connection closes: start afresh.
            self.drop()
            self.transport()
            sftp = self._open_sftp()
            channel = sftp.get_channel()
            if channel is None:
                raise HostError(f"{self.label}: cannot open SFTP")
        channel.settimeout(SFTP_TIMEOUT_SECONDS)
        return sftp

    def _open_sftp(self) -> paramiko.SFTPClient:
        try:
            sftp: paramiko.SFTPClient = self.connection.sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(f"{self.label}: cannot open SFTP: {reason(exc)}") from None
        return sftp

    def drop(self) -> None:
        """Close this connection (and its SFTP session); the gateway stays open."""
        with contextlib.suppress(Exception):
            self.connection.close()
        # fabric closes only a live client; a dead one still holds its transport.
        with contextlib.suppress(Exception):
            self._client.close()

    def close(self) -> None:
        """Close this connection, then the gateway chain behind it."""
        self.drop()
        if self.gateway is not None:
            self.gateway.close()


def _tune(transport: paramiko.Transport) -> None:
    transport.set_keepalive(KEEPALIVE_SECONDS)
    sock = transport.sock
    if isinstance(sock, socket.socket):  # not a tunnel or a ProxyCommand
        # Without it, Nagle's algorithm and delayed ACKs add ~40 ms to every command.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_AFTER_SECONDS * 1000)


def _tcp_failure(exc: BaseException, target: str, settings: SshSettings) -> str:
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        # paramiko gathers refused and unreachable per address family.
        errors = list(exc.errors.values())
        if any(getattr(error, "errno", None) == errno.ECONNREFUSED for error in errors):
            exc = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        elif errors:
            exc = errors[-1]
    if isinstance(exc, TimeoutError):
        return (
            f"no SSH connection to {target} within {settings.connect_timeout:g} s "
            "(host down or unreachable?)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {target} refused (is sshd running there?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {settings.hostname}: {exc.strerror}"
    return f"cannot connect to {target}: {reason(exc)}"


def reason(exc: BaseException) -> str:
    """The first line of what went wrong, in words."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        if exc.errno == errno.EHOSTUNREACH:
            return "no route to host"
        return exc.strerror
    if isinstance(exc, EOFError):  # paramiko's word for a transport that went away
        return "the connection closed (sshd gone or the network cut)"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
