"""`SshHost`: a machine reached over SSH, with the same semantics as `LocalHost`.

One fabric Connection per host (`SshLink`) is opened when the object is made and reused
for every command and file transfer, so a benchmark cell costs a handful of round trips.
Files go through the Connection's SFTP session. Commands do not go through fabric's
`run`: it cannot tell the remote PID, so on a timeout it leaves the command running and
on Ctrl-C it only sends ^C into the channel; here each command runs in a `sh` wrapper
(see `ssh_scripts`) on a session channel of the Connection's transport and is killed by
the PID it printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import paramiko

from orchestrator.errors import HostError
from orchestrator.hosts.base import (
    STOP_GRACE_SECONDS,
    CommandResult,
    Host,
    failure_message,
    pinned,
)
from orchestrator.hosts.ssh_channel import collect, open_command, wait_for_pid
from orchestrator.hosts.ssh_connection import SshLink, reason
from orchestrator.hosts.ssh_scripts import (
    STATUS_SUFFIX,
    background_script,
    file_state_script,
    find_pid,
    home_script,
    kill_script,
    mkdir_script,
    probe_script,
    recorded_status,
    run_script,
    shell_status,
    split_wrapped,
    status_script,
    stop_script,
)
from orchestrator.hosts.ssh_settings import fabric_config
from orchestrator.inventory import HostSpec

KILL_TIMEOUT_SECONDS = 15.0
PARTIAL_SUFFIX = ".orch-partial"
_TRANSFER_ERRORS = (OSError, paramiko.SSHException, EOFError)

Outcome = tuple[int | None, str, str, paramiko.Channel | None]


class SshHost(Host):
    """A machine reached over SSH; one connection, reused for everything."""

    def __init__(
        self,
        name: str,
        spec: HostSpec,
        *,
        accept_new_host_keys: bool = False,
        gateway: SshLink | Literal[False] | None = None,
        ssh_config: paramiko.SSHConfig | str | Path | None = None,
    ) -> None:
        """Connect now, so a bad key, host key or address is reported before any work.

        gateway: the opened link to tunnel through (owned and closed by this host);
        False means "connect directly"; None: the spec's or ~/.ssh/config's jump host.
        ssh_config: the client config to use instead of ~/.ssh/config (a parsed one or a
        file).
        """
        super().__init__(name, spec.address)
        self.spec = spec
        self._expanded: dict[str, str] = {}
        self._children: dict[int, str] = {}  # PID -> its status file
        self._link: SshLink | None = None
        try:
            self._link = SshLink(
                name,
                spec,
                config=fabric_config(ssh_config),
                accept_new_host_keys=accept_new_host_keys,
                gateway=gateway,
            )
            self.settings = self._link.settings
            self._link.transport()
        except BaseException:
            if self._link is None and isinstance(gateway, SshLink):
                gateway.close()
            self.close()
            raise

    @property
    def python(self) -> str:
        """`python3` as the host's PATH (with the inventory's env_path first) finds it."""
        return "python3"

    def describe(self) -> str:
        """`name (address)`."""
        return f"{self.name} ({self.address})"

    @property
    def link(self) -> SshLink:
        """The connection to the host."""
        if self._link is None:
            raise HostError(f"{self.describe()}: SSH connection closed")
        return self._link

    # -- commands --

    def _exec(self, command: str, timeout: float, *, killable: bool = False) -> Outcome:
        """Run one remote command line and collect its output.

        Returns (exit status or None when none came, stdout, stderr, channel); the channel
        is returned, still open, only when `timeout` passed first. On an exception (Ctrl-C)
        a `killable` command (a `run_script`) is killed by the PID it printed.
        """
        channel = self._open(command)
        out, err = bytearray(), bytearray()
        try:
            ended, code = collect(channel, timeout, out, err)
        except BaseException:
            if killable:
                self._kill_wrapper(out.decode(errors="replace"), channel)
            else:
                with contextlib.suppress(Exception):
                    channel.close()
            raise
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if not ended:
            return None, stdout, stderr, channel
        channel.close()
        return code, stdout, stderr, None

    def _open(self, command: str) -> paramiko.Channel:
        """A channel running `command`. A session that died a moment ago can still look
        alive until paramiko's reader sees the end; opening on it fails with the
        transport dead, before the command started, so that is retried once on a new
        connection (a live transport refusing the channel is not)."""
        link = self.link
        retry = True
        while True:
            try:
                return open_command(link.transport(), command, link.settings.connect_timeout)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                if not retry or link.connected(settle=0.0):
                    message = f"{self.describe()}: cannot start a command: {reason(exc)}"
                    raise HostError(message) from None
                retry = False

    def _kill_wrapper(self, stdout_so_far: str, channel: paramiko.Channel) -> None:
        """Kill a running `run_script` command's process group by the PID it printed."""
        pid = wait_for_pid(channel, stdout_so_far)
        with contextlib.suppress(Exception):
            channel.close()
        if pid is not None:
            with contextlib.suppress(Exception):
                self._exec(kill_script(pid), KILL_TIMEOUT_SECONDS)

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
        if code is None and self.link.connected():
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
            raise HostError(failure_message(self, result))
        return result

    def _stop_after_loss(self, stdout_so_far: str) -> str:
        """Reconnect (once) and kill a command whose connection died; say how that went."""
        pid = find_pid(stdout_so_far)
        if pid is None:
            return "it never reported its PID, so it could not be stopped"
        try:
            self._shell(kill_script(pid), KILL_TIMEOUT_SECONDS)
        except HostError as exc:
            why = str(exc).removeprefix(f"{self.describe()}: ")
            return f"could not reconnect to stop it (PID {pid}): {why}"
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
        code, _, err = self._shell(mkdir_script(directory))
        if code != 0:
            raise HostError(f"{self.describe()}: cannot create {directory}: {err.strip()}")

    def put_file(self, local: Path, remote: str) -> None:
        """Upload with fabric to a temporary name (mode kept), then rename into place."""
        remote = self.expand(remote)
        partial = f"{remote}{PARTIAL_SUFFIX}"
        link = self.link
        sftp = link.sftp()
        try:
            try:
                link.connection.put(str(local), partial, preserve_mode=True)
            except FileNotFoundError:
                if not local.is_file():
                    raise
                self._mkdirs(os.path.dirname(remote) or ".")
                link.connection.put(str(local), partial, preserve_mode=True)
            sftp.posix_rename(partial, remote)
        except _TRANSFER_ERRORS as exc:
            with contextlib.suppress(Exception):
                sftp.remove(partial)
            raise HostError(
                f"{self.describe()}: cannot upload {local} to {remote}: {reason(exc)}"
            ) from None

    def get_file(self, remote: str, local: Path) -> None:
        """Download with fabric (mode kept); a failed download leaves no partial local file."""
        remote = self.expand(remote)
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + PARTIAL_SUFFIX)
        link = self.link
        link.sftp()
        # fabric fills `{host}`-style fields into a local path: keep braces literal.
        literal = str(partial).replace("{", "{{").replace("}", "}}")
        try:
            link.connection.get(remote, local=literal, preserve_mode=True)
            partial.replace(local)
        except _TRANSFER_ERRORS as exc:
            partial.unlink(missing_ok=True)
            raise HostError(f"{self.describe()}: cannot fetch {remote}: {reason(exc)}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def provide_file(self, local: Path, remote: str) -> str:
        """Upload `local` to `remote` unless the same content and mode are there already."""
        remote = self.expand(remote)
        digest = hashlib.sha256()
        with local.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        wanted = f"{digest.hexdigest()}\n{local.stat().st_mode & 0o7777:o}"
        _, out, _ = self._shell(file_state_script(remote), timeout=120)
        if out.strip() != wanted:
            self.put_file(local, remote)
        return remote

    def read_text(self, path: str) -> str:
        """Read a text file over SFTP."""
        path = self.expand(path)
        try:
            with self.link.sftp().open(path, "rb") as file:
                data = file.read()
        except _TRANSFER_ERRORS as exc:
            raise HostError(f"{self.describe()}: cannot read {path}: {reason(exc)}") from None
        return bytes(data).decode("utf-8", errors="replace")

    def write_text(self, path: str, text: str) -> None:
        """Write a text file over SFTP (parent directories are created)."""
        path = self.expand(path)
        data = text.encode("utf-8")
        sftp = self.link.sftp()
        try:
            try:
                with sftp.open(path, "wb") as file:
                    file.write(data)
            except FileNotFoundError:
                self._mkdirs(os.path.dirname(path) or ".")
                with sftp.open(path, "wb") as file:
                    file.write(data)
        except _TRANSFER_ERRORS as exc:
            raise HostError(f"{self.describe()}: cannot write {path}: {reason(exc)}") from None

    def expand(self, path: str) -> str:
        """Expand `~` and `~user` as the remote user sees them (asked once, then cached)."""
        if not path.startswith("~"):
            return path
        head, sep, rest = path.partition("/")
        if head not in self._expanded:
            script = home_script(head)
            if script is None:
                return path
            code, out, _ = self._shell(script, timeout=30)
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
        _, out, err = self._shell(status_script(pid, status_path), timeout=30)
        if out.strip() == "running":
            return None
        status = recorded_status(out)
        if status is None:
            raise HostError(
                f"{self.describe()}: process {pid} ended without recording its exit status"
                + (f": {err.strip()}" if err.strip() else "")
            )
        return status

    def stop(self, pid: int, *, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL after `grace` s, in one command; return the exit status."""
        status_path = self._children.get(pid)
        if status_path is None:
            return None
        _, out, _ = self._shell(stop_script(pid, status_path, grace), timeout=grace + 30)
        del self._children[pid]
        return recorded_status(out)

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
        if self._link is not None:
            if self._link.opened:
                for pid in list(self._children):
                    with contextlib.suppress(HostError):
                        self.stop(pid)
            self._link.close()
            self._link = None
