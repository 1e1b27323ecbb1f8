"""The command lines `SshHost` sends and the parsers of what comes back (pure functions).

Every command runs inside a small `sh` wrapper that prints its own PID first (so a
command can be killed by PID on timeout or Ctrl-C) and `times` last (the CPU seconds of
the command). Background processes run under a detached watcher shell that records the
exit status in a file beside their log, so `exit_status` and `stop` work from any later
connection. Tests run these lines with the local shell, as sshd would.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.errors import HostError
from orchestrator.hosts.base import pinned

PID_MARK = "__orch_pid__"
TIMES_MARK = "__orch_times__"
STATUS_SUFFIX = ".status"
POLL_STEP_SECONDS = 0.02
STATUS_WRITE_SECONDS = 2.0
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")
_TIMES_FIELD = re.compile(r"(\d+)m([\d.,]+)s")


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


def kill_script(pid: int) -> str:
    """SIGKILL a `run_script` command's process group and the wrapper itself."""
    return in_sh(f"kill -9 -{pid} 2>/dev/null; kill -9 {pid} 2>/dev/null; :")


def status_script(pid: int, status_path: str) -> str:
    """Print a background process's recorded status, else `running` or `gone`.

    A process that has just ended is briefly neither running nor recorded (its watcher
    writes the file after `wait` returns): that moment is waited out.
    """
    status = shlex.quote(status_path)
    steps = round(STATUS_WRITE_SECONDS / POLL_STEP_SECONDS)
    return in_sh(
        f"cat {status} 2>/dev/null && exit 0\n"
        f"kill -0 {pid} 2>/dev/null && echo running && exit 0\n"
        f"{_wait_for_file(status, steps)}"
        f"cat {status} 2>/dev/null || echo gone\n"
    )


def recorded_status(text: str) -> int | None:
    """The exit status a watcher recorded (LocalHost's convention), or None when `text`
    is not one (`running`, `gone`, nothing)."""
    value = text.strip()
    return shell_status(int(value)) if value.lstrip("-").isdigit() else None


def mkdir_script(directory: str) -> str:
    """Create a directory and its parents."""
    return in_sh(f"mkdir -p {shlex.quote(directory)}")


def home_script(head: str) -> str | None:
    """Print what the shell makes of `~` or `~user`; None when `head` is neither (it is
    left unquoted for the shell to expand, so nothing else may pass)."""
    user = head[1:]
    if not head.startswith("~") or (user and not _USER_NAME.fullmatch(user)):
        return None
    return in_sh(f"printf '%s' {head}")


def file_state_script(path: str) -> str:
    """Print the SHA-256 and octal mode of a file (nothing when it is missing)."""
    quoted = shlex.quote(path)
    return in_sh(
        f"{{ sha256sum -- {quoted} | cut -d' ' -f1 && stat -c %a -- {quoted}; }} 2>/dev/null"
    )
