"""The lab's sshds: keys, configs, starting one per namespace and finding them again.

Each sshd runs inside its machine's network namespace and a fresh UTS namespace (so it
has its own hostname), with its own host key, PID file and log under the lab's folder;
the system sshd and ~/.ssh are never touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.processes import alive
from orchestrator.lab.network import (
    COMMAND_TIMEOUT_SECONDS,
    LAB_HOST,
    namespace_pids,
    netns_exists,
    run,
)
from orchestrator.lab.topology import ROLES, LabFiles, Role

SSHD = "/usr/sbin/sshd"
SSHD_READY_SECONDS = 10.0
SSH_PORT = 22
# sshd rewrites its title to "sshd: /usr/sbin/sshd -D -f CONFIG ... [listener]".
_LAB_SSHD_CONFIG = re.compile(r" -f (.+)/sshd_[a-z0-9]+_config ")


def _write_private(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def new_key(private: Path, comment: str) -> str:
    """Write an ed25519 key pair (OpenSSH format); return the public line."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _write_private(private, pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {comment}"
    private.with_name(private.name + ".pub").write_text(line + "\n")
    return line


def _quote_config(path: Path) -> str:
    text = str(path)
    if '"' in text or "\n" in text:
        raise UserError(f"orch lab: the lab folder {path.parent} holds a quote or newline")
    return f'"{text}"'


def sshd_config_text(files: LabFiles, role: Role) -> str:
    """The role's sshd config: key login only, its own keys, listening on its address."""
    return "\n".join(
        [
            f"# orch lab: sshd of the {role.role} namespace {role.namespace}",
            f"ListenAddress {role.address}",
            f"Port {SSH_PORT}",
            f"HostKey {_quote_config(files.host_key(role))}",
            f"PidFile {_quote_config(files.pid_file(role))}",
            f"AuthorizedKeysFile {_quote_config(files.authorized_keys)}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            # The lab folder may sit under a world-writable directory such as /tmp.
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding yes",
            "MaxSessions 64",
            "MaxStartups 64:30:128",
            # bash reads ~/.bashrc for commands run by sshd only at SHLVL 0; a slow bashrc
            # would otherwise be paid on every command orch runs here.
            "SetEnv SHLVL=1",
            "Subsystem sftp internal-sftp",
            "LogLevel INFO",
            "",
        ]
    )


def write_keys_and_configs(files: LabFiles, roles: Sequence[Role] = ROLES) -> None:
    """The client key, each sshd's host key and config, known_hosts and the workdirs."""
    files.root.mkdir(parents=True, exist_ok=True)
    client_public = new_key(files.client_key, "orch-lab-client")
    files.authorized_keys.write_text(client_public + "\n")
    known = []
    for role in roles:
        public = new_key(files.host_key(role), f"orch-lab-{role.role}")
        key_type, key_data = public.split()[:2]
        known.append(f"{role.address} {key_type} {key_data}")
        files.sshd_config(role).write_text(sshd_config_text(files, role))
        files.pid_file(role).unlink(missing_ok=True)
        files.workdir(role).mkdir(parents=True, exist_ok=True)
    files.known_hosts.write_text("\n".join(known) + "\n")


def _is_lab_sshd(pid: int, config: Path) -> bool:
    """Guards against a PID file pointing at a reused PID."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return alive(pid) and f" -f {config} ".encode() in cmdline + b" "


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def sshd_pid(files: LabFiles, role: Role) -> int | None:
    """The PID of the role's running sshd, if it runs."""
    pid = _read_pid(files.pid_file(role))
    return pid if pid is not None and _is_lab_sshd(pid, files.sshd_config(role)) else None


def sshd_answers(role: Role, timeout: float = 1.0) -> bool:
    """True when the role's sshd accepts a TCP connection."""
    return LAB_HOST.tcp_probe(role.address, SSH_PORT, timeout=timeout)


def start_sshd(files: LabFiles, role: Role) -> int:
    """Start the role's sshd inside its namespace and a fresh UTS namespace; return its PID."""
    config = files.sshd_config(role)
    run([SSHD, "-t", "-f", str(config)])
    log_file = files.sshd_log(role)
    # Not LocalHost.start_background: that keeps its process as a child to stop on close,
    # while sshd must outlive `orch lab up`. setsid --fork makes it nobody's child here.
    with log_file.open("ab") as log:
        subprocess.run(
            [
                "setsid",
                "--fork",
                "ip",
                "netns",
                "exec",
                role.namespace,
                "unshare",
                "--uts",
                "sh",
                "-c",
                'hostname "$1" && exec "$2" -D -f "$3" -E "$4"',
                "orch-lab",
                role.hostname,
                SSHD,
                str(config),
                str(log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            check=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
    deadline = time.monotonic() + SSHD_READY_SECONDS
    while time.monotonic() < deadline:
        pid = sshd_pid(files, role)
        if pid is not None and sshd_answers(role, timeout=0.5):
            return pid
        time.sleep(0.05)
    raise HostError(
        f"lab: sshd of {role.namespace} did not answer on {role.address}:{SSH_PORT} within "
        f"{SSHD_READY_SECONDS:.0f} s: {_tail(log_file)}"
    )


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def other_lab(files: LabFiles, roles: Sequence[Role] = ROLES) -> Path | None:
    """The folder of a lab whose sshd runs in the namespaces, if it is not this one."""
    for role in roles:
        if not netns_exists(role.namespace):
            continue
        for pid in namespace_pids(role.namespace):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            found = _LAB_SSHD_CONFIG.search(cmdline.decode(errors="replace") + " ")
            if found and Path(found[1]) != files.root:
                return Path(found[1])
    return None
