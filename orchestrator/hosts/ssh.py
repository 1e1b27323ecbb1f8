"""`SshHost`: a machine reached over SSH (paramiko), with the same semantics as `LocalHost`.

One SSH connection per host is opened when the object is made and reused for every
command and file transfer, so a benchmark cell costs a handful of round trips.

Every command runs inside a small `sh` wrapper that prints its own PID first (so a
command can be killed by PID on timeout or Ctrl-C) and `times` last (the CPU seconds of
the command). Background processes run under a detached watcher shell that records the
exit status in a file beside their log, so `exit_status` and `stop` work from any later
connection.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import logging
import os
import re
import select
import shlex
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.base import (
    STOP_GRACE_SECONDS,
    CommandResult,
    Host,
    _failure_message,
    pinned,
)
from orchestrator.inventory import HostSpec

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
DEFAULT_SSH_CONFIG = "~/.ssh/config"
PID_MARK = "__orch_pid__"
TIMES_MARK = "__orch_times__"
STATUS_SUFFIX = ".status"
SFTP_TIMEOUT_SECONDS = 120.0
KILL_TIMEOUT_SECONDS = 15.0
# A connection whose packets go unanswered this long is dead (a cut cable, a host gone):
# paramiko's keepalives give TCP something to send, and the kernel then gives up after
# DEAD_AFTER_SECONDS instead of retransmitting for a quarter of an hour.
KEEPALIVE_SECONDS = 5
DEAD_AFTER_SECONDS = 15
POLL_STEP_SECONDS = 0.02
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")
_TIMES_FIELD = re.compile(r"(\d+)m([\d.,]+)s")

# paramiko logs handshake failures with tracebacks through logging's last-resort handler;
# orch reports them itself as one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


# --- remote command lines (pure functions, unit-tested) ------------------------------------


def env_assignments(env: Mapping[str, str] | None) -> str:
    """`K='v' ` prefixes for a command; names are checked so nothing can be injected."""
    parts = []
    for key, value in (env or {}).items():
        if not _ENV_NAME.fullmatch(key):
            raise HostError(f"environment variable name {key!r} is not valid")
        parts.append(f"{key}={shlex.quote(value)} ")
    return "".join(parts)


def path_export(env_path: Sequence[str]) -> str:
    """Shell lines putting `env_path` first on PATH (nothing when empty)."""
    if not env_path:
        return ""
    return f'PATH={shlex.quote(":".join(env_path))}:"$PATH"; export PATH\n'


def in_sh(script: str) -> str:
    """The line sent to sshd: the user's login shell execs `sh`, so `$$` is the session PID."""
    return f"exec sh -c {shlex.quote(script)}"


def run_script(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    env_path: Sequence[str] = (),
    cpus: Sequence[int] | None = None,
) -> str:
    """The remote command line of `SshHost.run`.

    Prints `PID_MARK <pid>` first on stdout and, after the command, `TIMES_MARK` and the
    output of `times` on stderr; the command's exit status is passed through.
    """
    lines = [
        f"printf '%s %s\\n' {PID_MARK} \"$$\"\n",
        path_export(env_path),
        f"cd {shlex.quote(cwd)} || exit 126\n" if cwd else "",
        f"{env_assignments(env)}{shlex.join(pinned(argv, cpus))} </dev/null\n",
        "rc=$?\n",
        f"printf '\\n%s\\n' {TIMES_MARK} >&2\n",
        "times >&2\n",
        'exit "$rc"\n',
    ]
    return in_sh("".join(lines))


def background_script(
    argv: Sequence[str],
    *,
    log_path: str,
    status_path: str,
    cwd: str | None = None,
    env_path: Sequence[str] = (),
    cpus: Sequence[int] | None = None,
) -> str:
    """The remote command line of `SshHost.start_background`.

    A watcher shell in its own session starts the pinned command, prints its PID on the
    SSH channel (fd 3), closes the channel and waits, then writes the exit status to
    `status_path`. taskset execs the command, so the printed PID is the command's own.
    """
    log, status = shlex.quote(log_path), shlex.quote(status_path)
    watcher = (
        f"{shlex.join(pinned(argv, cpus))} >{log} 2>&1 </dev/null 3>&- &\n"
        "pid=$!\n"
        f"printf '%s %s\\n' {PID_MARK} \"$pid\" >&3\n"
        "exec 3>&-\n"
        'wait "$pid"\n'
        "rc=$?\n"
        f'printf "%s\\n" "$rc" >{status}.tmp && mv -f {status}.tmp {status}\n'
    )
    lines = [
        path_export(env_path),
        f"mkdir -p {shlex.quote(os.path.dirname(log_path) or '.')} || exit 1\n",
        f"rm -f {status} && : >{log} || exit 1\n",
        f"cd {shlex.quote(cwd)} || exit 126\n" if cwd else "",
        f"setsid sh -c {shlex.quote(watcher)} orch-watch 3>&1 >/dev/null 2>&1 </dev/null &\n",
    ]
    return in_sh("".join(lines))


def stop_script(pid: int, status_path: str, grace: float) -> str:
    """SIGTERM, wait up to `grace` s for the status file, SIGKILL, print the status."""
    status = shlex.quote(status_path)
    steps = max(1, round(grace / POLL_STEP_SECONDS))
    kill_steps = round(5.0 / POLL_STEP_SECONDS)
    script = (
        f"if [ ! -e {status} ]; then\n"
        f"kill -TERM {pid} 2>/dev/null\n"
        f"{_wait_for_file(status, steps)}"
        f"[ -e {status} ] || kill -KILL {pid} 2>/dev/null\n"
        f"{_wait_for_file(status, kill_steps)}"
        "fi\n"
        f"cat {status} 2>/dev/null || echo gone\n"
    )
    return in_sh(script)


def _wait_for_file(quoted_path: str, steps: int) -> str:
    return (
        f'n=0; while [ ! -e {quoted_path} ] && [ "$n" -lt {steps} ]; do '
        f"sleep {POLL_STEP_SECONDS}; n=$((n+1)); done\n"
    )


def probe_script(address: str, port: int, timeout: float) -> str:
    """One command that exits 0 when address:port accepts a TCP connection, 3 if it can't tell."""
    args = f"{shlex.quote(address)} {port}"
    limit = f"{timeout:g}"
    script = (
        "if command -v bash >/dev/null 2>&1; then\n"
        f'  exec timeout {limit} bash -c \'exec 3<>/dev/tcp/"$0"/"$1"\' {args} 2>/dev/null\n'
        "elif command -v python3 >/dev/null 2>&1; then\n"
        "  exec python3 -c 'import socket,sys; "
        "socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3]))' "
        f"{args} {limit} 2>/dev/null\n"
        "fi\n"
        "exit 3\n"
    )
    return in_sh(script)


def parse_times(text: str) -> float | None:
    """User+system CPU seconds of the children line of POSIX `times` (its second line)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    fields = _TIMES_FIELD.findall(lines[1])
    if len(fields) != 2:
        return None
    return sum(int(minutes) * 60 + float(seconds.replace(",", ".")) for minutes, seconds in fields)


@dataclass(frozen=True)
class WrappedOutput:
    """The output of a `run_script` command split into the command's own parts."""

    pid: int | None
    stdout: str
    stderr: str
    cpu_seconds: float | None


def find_pid(stdout: str) -> int | None:
    """The PID on the wrapper's marker line, if it has arrived."""
    for line in stdout.splitlines():
        if line.startswith(PID_MARK + " "):
            value = line[len(PID_MARK) + 1 :].strip()
            return int(value) if value.isdigit() else None
    return None


def split_wrapped(stdout: str, stderr: str) -> WrappedOutput:
    """Remove the wrapper's PID line and `times` trailer; lines a login script printed
    before the PID line are dropped too (they are not the command's output)."""
    pid = None
    marker = f"{PID_MARK} "
    if stdout.startswith(marker):
        start = 0
    else:
        found = stdout.find("\n" + marker)
        start = found + 1 if found >= 0 else -1
    if start >= 0:
        end = stdout.find("\n", start)
        pid = find_pid(stdout[start:end] if end >= 0 else stdout[start:])
        stdout = stdout[end + 1 :] if end >= 0 else ""
    body, sep, trailer = stderr.rpartition(f"\n{TIMES_MARK}\n")
    cpu = None
    if sep:
        stderr = body
        cpu = parse_times(trailer)
    return WrappedOutput(pid, stdout, stderr, cpu)


def shell_status(code: int) -> int:
    """A shell reports death by signal N as 128+N; LocalHost (Popen) reports -N."""
    return -(code - 128) if 128 < code < 128 + 65 else code


# --- connection settings ----------------------------------------------------------------


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


def load_ssh_config(path: str = DEFAULT_SSH_CONFIG) -> paramiko.SSHConfig:
    """The user's OpenSSH client config (empty when there is none)."""
    file = Path(path).expanduser()
    if not file.is_file():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(file))
    except (OSError, paramiko.SSHException) as exc:
        raise UserError(f"{file}: cannot read SSH config: {exc}") from None


def resolve_settings(
    name: str, spec: HostSpec, accept_new_host_keys: bool, config: paramiko.SSHConfig
) -> SshSettings:
    """Merge: keys set in the inventory win, then ~/.ssh/config, then defaults."""
    given = spec.model_fields_set
    found: Any = config.lookup(spec.address)
    hostname = str(found.get("hostname", spec.address))
    port = spec.port if "port" in given or "port" not in found else int(found["port"])
    user = spec.user or str(found.get("user") or getpass.getuser())
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
        hostname=hostname,
        port=port,
        user=user,
        key_files=key_files,
        key_from_inventory=spec.key_file is not None,
        known_hosts=str(Path(known).expanduser()),
        accept_new_host_keys=accept_new_host_keys or spec.accept_new_host_keys,
        connect_timeout=timeout,
        jump=jump,
        proxy_command=None if proxy is None or str(proxy).lower() == "none" else str(proxy),
    )


def parse_jump(text: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (IPv6 as `[addr]:port`) into (user, host, port)."""
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


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Unknown host keys: refuse, or (opted in) trust and append them to known_hosts."""

    def __init__(self, host: SshHost, settings: SshSettings) -> None:
        self._host = host
        self._settings = settings

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        """Called by paramiko when known_hosts has no key for `hostname`."""
        if not self._settings.accept_new_host_keys:
            raise UserError(
                f"{self._host.describe()}: host key not known ({key.get_name()} "
                f"{key.fingerprint}) in {self._settings.known_hosts}; refusing to connect. "
                "If this is the right machine, pass --accept-new-host-keys (or set "
                "accept_new_host_keys: true on the host) to trust and record it"
            )
        _append_known_host(Path(self._settings.known_hosts), hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def _append_known_host(path: Path, hostname: str, key: paramiko.PKey) -> None:
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            file.seek(file.tell() - 1)
            if file.read(1) != "\n":
                line = "\n" + line
        file.write(line)


# --- the host -------------------------------------------------------------------------


class SshHost(Host):
    """A machine reached over SSH; one connection, reused for everything."""

    def __init__(
        self,
        name: str,
        spec: HostSpec,
        *,
        accept_new_host_keys: bool = False,
        jump: Host | None = None,
        ssh_config: paramiko.SSHConfig | None = None,
    ) -> None:
        """Connect now, so a bad key, host key or address is reported before any work.

        jump: the host to tunnel through (an opened SshHost; a LocalHost means "connect
        directly"); when None, the spec's or ~/.ssh/config's `user@host:port` jump is used.
        The SshHost owns `jump` and closes it.
        """
        super().__init__(name, spec.address)
        self.spec = spec
        self._config = ssh_config if ssh_config is not None else load_ssh_config()
        self.settings = resolve_settings(name, spec, accept_new_host_keys, self._config)
        self._jump = jump
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._expanded: dict[str, str] = {}
        self._children: dict[int, str] = {}  # PID -> its status file
        try:
            if self._jump is None and self.settings.jump:
                self._jump = SshHost(
                    f"{name}'s jump host {self.settings.jump}",
                    jump_spec(self.settings.jump, spec),
                    accept_new_host_keys=self.settings.accept_new_host_keys,
                    ssh_config=self._config,
                )
            self._connect()
        except BaseException:
            self.close()
            raise

    @property
    def is_local(self) -> bool:
        """Always False."""
        return False

    # -- connection --

    def _load_key(self) -> paramiko.PKey | None:
        """The inventory's key, loaded here so a bad file is a one-line UserError."""
        if not self.settings.key_from_inventory:
            return None
        path = Path(self.settings.key_files[0]).expanduser()
        where = f"inventory hosts.{self.name}.key_file"
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

    def _open_socket(self) -> Any:
        settings = self.settings
        target = f"{settings.hostname}:{settings.port}"
        limit = settings.connect_timeout
        if self._jump is not None and isinstance(self._jump, SshHost):
            try:
                return self._jump._transport().open_channel(
                    "direct-tcpip",
                    (settings.hostname, settings.port),
                    ("127.0.0.1", 0),
                    timeout=limit,
                )
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise HostError(
                    f"{self.describe()}: jump host {self._jump.name} cannot reach {target}: "
                    f"{_reason(exc)}"
                ) from None
        if settings.proxy_command and self._jump is None:
            try:
                return paramiko.ProxyCommand(settings.proxy_command)
            except (OSError, paramiko.SSHException) as exc:
                raise HostError(
                    f"{self.describe()}: ProxyCommand from ~/.ssh/config failed: {exc}"
                ) from None
        try:
            sock = socket.create_connection((settings.hostname, settings.port), timeout=limit)
            # Without it, Nagle's algorithm and delayed ACKs add ~40 ms to every command.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_AFTER_SECONDS * 1000)
            return sock
        except TimeoutError:
            raise HostError(
                f"{self.describe()}: no SSH connection to {target} within {limit:g} s "
                "(host down or unreachable?)"
            ) from None
        except ConnectionRefusedError:
            raise HostError(
                f"{self.describe()}: connection to {target} refused (is sshd running there?)"
            ) from None
        except socket.gaierror as exc:
            raise HostError(
                f"{self.describe()}: cannot resolve {settings.hostname}: {exc.strerror}"
            ) from None
        except OSError as exc:
            raise HostError(
                f"{self.describe()}: cannot connect to {target}: {_reason(exc)}"
            ) from None

    def _connect(self) -> None:
        settings = self.settings
        key = self._load_key()
        client = paramiko.SSHClient()
        known = Path(settings.known_hosts)
        if known.is_file():
            try:
                client.get_host_keys().load(str(known))
            except (OSError, paramiko.SSHException) as exc:
                raise UserError(f"{known}: cannot read known_hosts: {exc}") from None
        client.set_missing_host_key_policy(_HostKeyPolicy(self, settings))
        # Keys named by ~/.ssh/config count only when present, as with OpenSSH's ssh.
        config_keys = [
            str(Path(path).expanduser())
            for path in ([] if settings.key_from_inventory else settings.key_files)
            if Path(path).expanduser().is_file()
        ]
        # paramiko takes a list of key files; its type stubs only admit one string.
        key_files: Any = config_keys or None
        sock = self._open_socket()
        limit = settings.connect_timeout
        try:
            client.connect(
                settings.hostname,
                port=settings.port,
                username=settings.user,
                pkey=key,
                key_filename=key_files,
                allow_agent=True,
                look_for_keys=not settings.key_from_inventory and not config_keys,
                sock=sock,
                timeout=limit,
                banner_timeout=limit,
                auth_timeout=limit,
                channel_timeout=limit,
            )
        except UserError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostError(
                f"{self.describe()}: host key CHANGED: it offered {exc.key.get_name()} "
                f"{exc.key.fingerprint} but {settings.known_hosts} records "
                f"{exc.expected_key.fingerprint}; refusing to connect (possible "
                "man-in-the-middle). If the machine was really reinstalled, remove its old "
                "line from that file"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise HostError(
                f"{self.describe()}: authentication as {settings.user} failed with "
                f"{self._tried_keys()} ({_reason(exc)})"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise HostError(
                f"{self.describe()}: SSH handshake with {settings.hostname}:{settings.port} "
                f"failed (time limit {limit:g} s): {_reason(exc)}"
            ) from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_SECONDS)
        self._client = client

    def _tried_keys(self) -> str:
        keys = ", ".join(self.settings.key_files) or "the default keys in ~/.ssh"
        agent = " and ssh-agent" if os.environ.get("SSH_AUTH_SOCK") else ""
        return f"key {keys}{agent}"

    def _transport(self) -> paramiko.Transport:
        """The live transport, reconnecting once if the connection dropped."""
        transport = self._client.get_transport() if self._client is not None else None
        if transport is None or not transport.is_active():
            self._drop_connection()
            self._connect()
            transport = self._client.get_transport() if self._client is not None else None
            if transport is None:
                raise HostError(f"{self.describe()}: SSH connection lost")
        return transport

    def _drop_connection(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
            self._sftp = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def _sftp_client(self) -> paramiko.SFTPClient:
        """The host's one SFTP session, opened on first use."""
        if self._sftp is not None:
            channel = self._sftp.get_channel()
            if channel is not None and not channel.closed:
                return self._sftp
        try:
            sftp = paramiko.SFTPClient.from_transport(self._transport())
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(f"{self.describe()}: cannot open SFTP: {_reason(exc)}") from None
        channel = sftp.get_channel() if sftp is not None else None
        if sftp is None or channel is None:
            raise HostError(f"{self.describe()}: cannot open SFTP")
        channel.settimeout(SFTP_TIMEOUT_SECONDS)
        self._sftp = sftp
        return sftp

    # -- commands --

    def _exec(
        self, command: str, timeout: float, *, killable: bool = False
    ) -> tuple[int | None, str, str, paramiko.Channel | None]:
        """Run one remote command line and collect its output.

        Returns (exit status or None when none came, stdout, stderr, channel); the channel
        is returned, still open, only when `timeout` passed first. On an exception (Ctrl-C)
        a `killable` command (a `run_script`) is killed by the PID it printed.
        """
        try:
            channel = self._transport().open_session(timeout=self.settings.connect_timeout)
            channel.exec_command(command)
            channel.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(f"{self.describe()}: cannot start a command: {_reason(exc)}") from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while not (channel.eof_received and channel.exit_status_ready()):
                got = _drain(channel, out, err)
                if channel.closed and not got:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None, out.decode(errors="replace"), err.decode(errors="replace"), channel
                if channel.eof_received:
                    # Only the exit status is missing; it raises no select() readiness.
                    channel.status_event.wait(min(remaining, 0.25))
                elif not got:
                    select.select([channel], [], [], min(remaining, 0.25))
            _drain(channel, out, err)
            code = channel.recv_exit_status() if channel.exit_status_ready() else None
            # -1 is paramiko's placeholder: no exit status came (connection lost, or the
            # remote shell died by a signal, which paramiko does not report as a status).
            if code is not None and code < 0:
                code = None
        except BaseException:
            if killable:
                self._kill_wrapper(out.decode(errors="replace"), channel)
            else:
                with contextlib.suppress(Exception):
                    channel.close()
            raise
        channel.close()
        return code, out.decode(errors="replace"), err.decode(errors="replace"), None

    def _kill_wrapper(self, stdout_so_far: str, channel: paramiko.Channel) -> None:
        """Kill a running `run_script` command's process group by the PID it printed."""
        buffer = bytearray(stdout_so_far.encode())
        pid = find_pid(stdout_so_far)
        # The PID is the wrapper's first output; after a very early Ctrl-C it may still
        # be on its way.
        deadline = time.monotonic() + 2.0
        while pid is None and time.monotonic() < deadline and not channel.closed:
            _drain(channel, buffer, bytearray())
            pid = find_pid(buffer.decode(errors="replace"))
            if pid is None:
                time.sleep(POLL_STEP_SECONDS)
        with contextlib.suppress(Exception):
            channel.close()
        if pid is not None:
            with contextlib.suppress(Exception):
                self._exec(
                    in_sh(f"kill -9 -{pid} 2>/dev/null; kill -9 {pid} 2>/dev/null; :"),
                    KILL_TIMEOUT_SECONDS,
                )

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 120.0,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        cpus: Sequence[int] | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run a command on the host; killed by PID after `timeout` s or on Ctrl-C.

        Unlike LocalHost, a missing program is exit status 127 (the shell's), not an error.
        """
        full = pinned(argv, cpus)
        script = run_script(argv, cwd=cwd, env=env, env_path=self.spec.env_path, cpus=cpus)
        started = time.monotonic()
        code, out, err, pending = self._exec(script, timeout, killable=True)
        if pending is not None:
            self._kill_wrapper(out, pending)
            raise HostError(
                f"{self.describe()}: {shlex.join(full)} did not finish within {timeout:.0f} s"
            )
        if code is None and self._connected():
            raise HostError(
                f"{self.describe()}: {shlex.join(full)} ended without an exit status "
                "(its shell was killed?)"
            )
        if code is None:
            raise HostError(
                f"{self.describe()}: SSH connection lost while running {shlex.join(full)}; "
                f"{self._stop_after_loss(out)}"
            )
        wrapped = split_wrapped(out, err)
        result = CommandResult(
            argv=tuple(full),
            exit_code=shell_status(code),
            stdout=wrapped.stdout,
            stderr=wrapped.stderr,
            wall_seconds=time.monotonic() - started,
            cpu_seconds=wrapped.cpu_seconds,
        )
        if check and not result.ok:
            raise HostError(_failure_message(self, result))
        return result

    def _connected(self, settle: float = 0.2) -> bool:
        """True while the SSH connection is up (no reconnection is attempted).

        A dying connection closes its channels a moment before it reports itself
        inactive, so a live answer is given only after `settle` seconds.
        """
        deadline = time.monotonic() + settle
        while True:
            transport = self._client.get_transport() if self._client is not None else None
            if transport is None or not transport.is_active():
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(POLL_STEP_SECONDS)

    def _stop_after_loss(self, stdout_so_far: str) -> str:
        """Reconnect (once) and kill a command whose connection died; say how that went."""
        pid = find_pid(stdout_so_far)
        if pid is None:
            return "it never reported its PID, so it could not be stopped"
        try:
            self._shell(
                in_sh(f"kill -9 -{pid} 2>/dev/null; kill -9 {pid} 2>/dev/null; :"),
                KILL_TIMEOUT_SECONDS,
            )
        except HostError as exc:
            reason = str(exc).removeprefix(f"{self.describe()}: ")
            return f"could not reconnect to stop it (PID {pid}): {reason}"
        return f"reconnected and stopped it (PID {pid})"

    def _shell(self, script: str, timeout: float = 60.0) -> tuple[int, str, str]:
        """A small helper command of orch's own (no wrapper output to strip)."""
        code, out, err, pending = self._exec(script, timeout)
        if pending is not None:
            with contextlib.suppress(Exception):
                pending.close()
            raise HostError(f"{self.describe()}: a helper command did not finish in {timeout:g} s")
        if code is None:
            raise HostError(f"{self.describe()}: SSH connection lost during a helper command")
        return code, out, err

    # -- files --

    def _mkdirs(self, directory: str) -> None:
        code, _, err = self._shell(in_sh(f"mkdir -p {shlex.quote(directory)}"))
        if code != 0:
            raise HostError(f"{self.describe()}: cannot create {directory}: {err.strip()}")

    def put_file(self, local: Path, remote: str) -> None:
        """Upload via SFTP to a temporary name, copy the mode, then rename into place."""
        remote = self.expand(remote)
        partial = f"{remote}.orch-partial"
        sftp = self._sftp_client()
        try:
            try:
                sftp.put(str(local), partial)
            except FileNotFoundError:
                if not local.is_file():
                    raise
                self._mkdirs(os.path.dirname(remote) or ".")
                sftp.put(str(local), partial)
            sftp.chmod(partial, local.stat().st_mode & 0o7777)
            sftp.posix_rename(partial, remote)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            with contextlib.suppress(Exception):
                sftp.remove(partial)
            raise HostError(
                f"{self.describe()}: cannot upload {local} to {remote}: {_reason(exc)}"
            ) from None

    def get_file(self, remote: str, local: Path) -> None:
        """Download via SFTP; a failed download leaves no partial local file."""
        remote = self.expand(remote)
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".orch-partial")
        try:
            self._sftp_client().get(remote, str(partial))
            partial.replace(local)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            partial.unlink(missing_ok=True)
            raise HostError(f"{self.describe()}: cannot fetch {remote}: {_reason(exc)}") from None

    def read_text(self, path: str) -> str:
        """Read a text file via SFTP."""
        path = self.expand(path)
        try:
            with self._sftp_client().open(path, "rb") as file:
                data = file.read()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise HostError(f"{self.describe()}: cannot read {path}: {_reason(exc)}") from None
        return bytes(data).decode("utf-8", errors="replace")

    def write_text(self, path: str, text: str) -> None:
        """Write a text file via SFTP (parent directories are created)."""
        path = self.expand(path)
        data = text.encode("utf-8")
        sftp = self._sftp_client()
        try:
            try:
                with sftp.open(path, "wb") as file:
                    file.write(data)
            except FileNotFoundError:
                self._mkdirs(os.path.dirname(path) or ".")
                with sftp.open(path, "wb") as file:
                    file.write(data)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise HostError(f"{self.describe()}: cannot write {path}: {_reason(exc)}") from None

    def expand(self, path: str) -> str:
        """Expand `~` and `~user` as the remote user sees them (asked once, then cached)."""
        if not path.startswith("~"):
            return path
        head, sep, rest = path.partition("/")
        if head not in self._expanded:
            user = head[1:]
            if user and not _USER_NAME.fullmatch(user):
                return path
            code, out, _ = self._shell(in_sh(f"printf '%s' {head}"), timeout=30)
            if code != 0 or not out.startswith("/"):
                return path
            self._expanded[head] = out
        return self._expanded[head] + sep + rest

    # -- background processes --

    def start_background(
        self,
        argv: Sequence[str],
        *,
        log_path: str,
        cpus: Sequence[int] | None = None,
        cwd: str | None = None,
    ) -> int:
        """Start a pinned, detached process; its exit status lands in `<log_path>.status`."""
        log_path = self.expand(log_path)
        status_path = log_path + STATUS_SUFFIX
        script = background_script(
            argv,
            log_path=log_path,
            status_path=status_path,
            cwd=cwd,
            env_path=self.spec.env_path,
            cpus=cpus,
        )
        code, out, err = self._shell(script, timeout=60)
        pid = find_pid(out)
        if code != 0 or pid is None:
            detail = (err.strip() or out.strip() or f"exit status {code}").splitlines()[-1]
            raise HostError(
                f"{self.describe()}: cannot start {shlex.join(pinned(argv, cpus))}: {detail}"
            )
        self._children[pid] = status_path
        return pid

    def exit_status(self, pid: int) -> int | None:
        """Read the status file the watcher writes when the process ends."""
        status_path = self._children.get(pid)
        if status_path is None:
            raise HostError(f"{self.describe()}: process {pid} was not started by orch")
        status = shlex.quote(status_path)
        _, out, err = self._shell(
            in_sh(
                f"cat {status} 2>/dev/null || "
                f"{{ kill -0 {pid} 2>/dev/null && echo running || echo gone; }}"
            ),
            timeout=30,
        )
        return self._parse_status(pid, out, err)

    def _parse_status(self, pid: int, out: str, err: str) -> int | None:
        value = out.strip()
        if value == "running":
            return None
        if value.lstrip("-").isdigit():
            return shell_status(int(value))
        raise HostError(
            f"{self.describe()}: process {pid} ended without recording its exit status"
            + (f": {err.strip()}" if err.strip() else "")
        )

    def stop(self, pid: int, *, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL after `grace` s, in one command; return the exit status."""
        status_path = self._children.get(pid)
        if status_path is None:
            return None
        _, out, _ = self._shell(stop_script(pid, status_path, grace), timeout=grace + 30)
        del self._children[pid]
        value = out.strip()
        return shell_status(int(value)) if value.lstrip("-").isdigit() else None

    def running_children(self) -> list[int]:
        """PIDs started here and not yet stopped."""
        return list(self._children)

    def tcp_probe(self, address: str, port: int, timeout: float = 1.0) -> bool:
        """Connect from this host (bash /dev/tcp, else python3): one round trip."""
        code, _, _ = self._shell(probe_script(address, port, timeout), timeout=timeout + 30)
        if code == 3:
            raise HostError(f"{self.describe()}: neither bash nor python3 is there to probe TCP")
        return code == 0

    def close(self) -> None:
        """Stop every process started here, then close the connection (and any jump host)."""
        if self._client is not None:
            for pid in list(self._children):
                with contextlib.suppress(HostError):
                    self.stop(pid)
        self._drop_connection()
        if self._jump is not None:
            self._jump.close()
            self._jump = None


def _drain(channel: paramiko.Channel, out: bytearray, err: bytearray) -> bool:
    got = False
    while channel.recv_ready():
        chunk = channel.recv(65536)
        if not chunk:
            break
        out += chunk
        got = True
    while channel.recv_stderr_ready():
        chunk = channel.recv_stderr(65536)
        if not chunk:
            break
        err += chunk
        got = True
    return got


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        if exc.errno == errno.EHOSTUNREACH:
            return "no route to host"
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
