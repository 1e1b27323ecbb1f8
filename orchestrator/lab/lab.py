"""The two-namespace lab: a target and a load "machine" on this one, reached over SSH.

`lab_up` builds two network namespaces joined by a bridge through veth pairs (so traffic
between them crosses a real network interface, `eth0`, not loopback), starts one sshd in
each (inside its own UTS namespace, so each has its own hostname), and writes an
inventory pointing at the lab's own keys and known_hosts. `lab_down` removes all of it
again and works after a partial `lab_up`. Nothing outside the lab's folder, the two
namespaces, the bridge and its veths is touched: not ~/.ssh, not the system sshd.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.errors import HostError, UserError

BRIDGE = "orch-br0"
BRIDGE_ADDRESS = "10.203.0.1"
PREFIX_LENGTH = 24
SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it
NETNS_DIR = Path("/run/netns")
HOSTS_MARK = "# Written by `orch lab up`; `orch lab down` removes it."
DEFAULT_DIR = Path("lab")
DEFAULT_HOSTS_FILE = Path("lab-hosts.yaml")
LISTEN_PORT = 8000
SSHD_READY_SECONDS = 10.0
STOP_GRACE_SECONDS = 3.0
COMMAND_TIMEOUT_SECONDS = 30.0

Log = Callable[[str], None]


@dataclass(frozen=True)
class Role:
    """One lab machine: its namespace (also its hostname), address and veth names."""

    role: str
    namespace: str
    address: str
    veth: str  # the root-namespace end, a port of the bridge
    peer: str  # the namespace end's name until it is renamed eth0 inside

    @property
    def hostname(self) -> str:
        """The UTS hostname its sshd (and so every command run there) sees."""
        return self.namespace


ROLES = (
    Role("target", "orch-target", "10.203.0.2", "orch-target0", "orch-target1"),
    Role("load", "orch-load", "10.203.0.3", "orch-load0", "orch-load1"),
)


class LabFiles:
    """Every path the lab uses, all under its folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()

    @property
    def client_key(self) -> Path:
        """The private key orch logs in with."""
        return self.root / "client_ed25519"

    @property
    def authorized_keys(self) -> Path:
        """The key both sshds accept (the client key's public half)."""
        return self.root / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        """Both host keys under their addresses, so strict checking works out of the box."""
        return self.root / "known_hosts"

    @property
    def state(self) -> Path:
        """What `up` made (for `down` and `status`)."""
        return self.root / "lab.json"

    @property
    def work(self) -> Path:
        """Parent of the hosts' work directories."""
        return self.root / "work"

    @property
    def shim_dir(self) -> Path:
        """Holds a `python3` link when this Python's folder has none."""
        return self.root / "bin"

    def host_key(self, role: Role) -> Path:
        """The role's sshd host key."""
        return self.root / f"ssh_host_{role.role}_ed25519_key"

    def sshd_config(self, role: Role) -> Path:
        """The role's sshd config."""
        return self.root / f"sshd_{role.role}_config"

    def pid_file(self, role: Role) -> Path:
        """Where the role's sshd writes its PID."""
        return self.root / f"sshd_{role.role}.pid"

    def sshd_log(self, role: Role) -> Path:
        """The role's sshd log."""
        return self.root / f"sshd_{role.role}.log"

    def workdir(self, role: Role) -> Path:
        """The role's orch workdir (the namespaces share this filesystem, so one each)."""
        return self.work / role.role

    def generated(self) -> list[Path]:
        """Every file `up` writes, except the work directories."""
        files = [
            self.client_key,
            self.client_key.with_suffix(".pub"),
            self.authorized_keys,
            self.known_hosts,
            self.state,
            self.shim_dir / "python3",
        ]
        for role in ROLES:
            key = self.host_key(role)
            files += [
                key,
                key.with_name(key.name + ".pub"),
                self.sshd_config(role),
                self.pid_file(role),
                self.sshd_log(role),
            ]
        return files


@dataclass
class LabStatus:
    """What of the lab exists right now."""

    namespaces: dict[str, bool]
    bridge: bool
    sshd_pids: dict[str, int | None]
    reachable: dict[str, bool]
    hosts_file: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def up(self) -> bool:
        """True when every piece is there and both sshds answer."""
        return (
            self.bridge
            and all(self.namespaces.values())
            and all(pid is not None for pid in self.sshd_pids.values())
            and all(self.reachable.values())
        )

    @property
    def anything(self) -> bool:
        """True when any piece of the lab exists."""
        return (
            self.bridge
            or any(self.namespaces.values())
            or any(pid is not None for pid in self.sshd_pids.values())
        )

    def lines(self) -> list[str]:
        """A human-readable summary."""
        state = "up" if self.up else ("partly up" if self.anything else "down")
        lines = [f"lab: {state}", f"bridge {BRIDGE} ({BRIDGE_ADDRESS}): {_yes(self.bridge)}"]
        for role in ROLES:
            pid = self.sshd_pids.get(role.role)
            lines.append(
                f"{role.role}: namespace {role.namespace} {_yes(self.namespaces[role.namespace])}, "
                f"{role.address}, sshd "
                + (f"PID {pid}" if pid is not None else "not running")
                + (", answers on port 22" if self.reachable.get(role.role) else "")
            )
        if self.hosts_file:
            lines.append(f"inventory: {self.hosts_file}")
        return lines + self.notes


def _yes(flag: bool) -> str:
    return "present" if flag else "absent"


# --- small system helpers ----------------------------------------------------------------


def require_root() -> None:
    """The lab creates namespaces, links and sshds: that needs root."""
    if os.geteuid() != 0:
        raise UserError(
            "orch lab needs root (it creates network namespaces, a bridge and sshds); "
            "run it with sudo"
        )


def _require_tools() -> None:
    missing = [tool for tool in ("ip", "unshare", "setsid") if shutil.which(tool) is None]
    if not Path(SSHD).is_file():
        missing.append(f"{SSHD} (apt-get install openssh-server)")
    if missing:
        raise UserError(f"orch lab: missing {', '.join(missing)} (apt-get install iproute2)")


def _cmd(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostError(f"lab: {' '.join(argv)}: {exc}") from None
    if check and done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise HostError(f"lab: {' '.join(argv)} exited {done.returncode}: {detail}")
    return done


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def _is_lab_sshd(pid: int, config: Path) -> bool:
    """Guards against a PID file pointing at a reused PID."""
    try:
        # sshd rewrites its title to "sshd: /usr/sbin/sshd -D -f CONFIG ... [listener]".
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return _alive(pid) and f" -f {config} ".encode() in cmdline + b" "


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _sshd_pid(files: LabFiles, role: Role) -> int | None:
    pid = _read_pid(files.pid_file(role))
    return pid if pid is not None and _is_lab_sshd(pid, files.sshd_config(role)) else None


def _tcp_open(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _terminate(pids: Sequence[int], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the PIDs, SIGKILL whatever still runs after `grace` s, reap own children."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        _reap(pids)
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _reap(pids)


def _reap(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _write_private(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _new_key(private: Path, comment: str) -> str:
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
            "Port 22",
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


def _env_path(files: LabFiles) -> list[str]:
    """PATH entries for both hosts: this Python (k6, `python3 -m ziglang`) and cargo.

    The Makefile runs `python3 -m ziglang`, so the first python3 on PATH must be this one.
    """
    here = Path(sys.executable).parent
    dirs: list[str] = []
    python3 = here / "python3"
    if not (python3.exists() and python3.resolve() == Path(sys.executable).resolve()):
        files.shim_dir.mkdir(parents=True, exist_ok=True)
        (files.shim_dir / "python3").unlink(missing_ok=True)
        (files.shim_dir / "python3").symlink_to(sys.executable)
        dirs.append(str(files.shim_dir))
    dirs.append(str(here))
    cargo = shutil.which("cargo")
    if cargo:
        dirs.append(str(Path(cargo).parent))
    return list(dict.fromkeys(dirs))


def lab_cpus() -> tuple[list[int], list[int]]:
    """(target CPUs, load CPUs): the first CPU for the server, the others for k6."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[:1], (cpus[1:] or cpus[:1])


def hosts_yaml(files: LabFiles, env_path: list[str]) -> str:
    """The lab's inventory."""
    target_cpus, load_cpus = lab_cpus()
    target, load = ROLES
    hosts: dict[str, Any] = {}
    for role in ROLES:
        hosts[role.namespace] = {
            "address": role.address,
            "user": "root",
            "key_file": str(files.client_key),
            "known_hosts": str(files.known_hosts),
            "connect_timeout": 10,
            "workdir": str(files.workdir(role)),
            "env_path": list(env_path),
        }
    data = {
        "hosts": hosts,
        "target": {
            "host": target.namespace,
            "listen": {"address": "0.0.0.0", "port": LISTEN_PORT},
            "cpus": target_cpus,
            "interface": "eth0",
        },
        "load": {
            "host": load.namespace,
            "tool": "k6",
            "cpus": load_cpus,
            "target_address": target.address,
        },
        "workdir": str(files.work),
    }
    return f"{HOSTS_MARK}\n{yaml.safe_dump(data, sort_keys=False)}"


# --- up / down / status ------------------------------------------------------------------


def lab_status(lab_dir: Path = DEFAULT_DIR) -> LabStatus:
    """Look at what exists; changes nothing."""
    files = LabFiles(lab_dir)
    pids = {role.role: _sshd_pid(files, role) for role in ROLES}
    hosts_file = None
    with contextlib.suppress(OSError, ValueError):
        hosts_file = json.loads(files.state.read_text()).get("hosts_file")
    return LabStatus(
        namespaces={role.namespace: _netns_exists(role.namespace) for role in ROLES},
        bridge=_link_exists(BRIDGE),
        sshd_pids=pids,
        reachable={
            role.role: pids[role.role] is not None and _tcp_open(role.address, 22) for role in ROLES
        },
        hosts_file=hosts_file,
    )


def _disable_ipv6(interface: str, namespace: str | None = None) -> None:
    # No IPv6 autoconfiguration chatter on the lab links: eth0's counters then count the
    # benchmark's packets and little else.
    key = f"net.ipv6.conf.{interface}.disable_ipv6=1"
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    _cmd([*prefix, "sysctl", "-qw", key], check=False)


def _other_lab(files: LabFiles) -> Path | None:
    """The folder of a lab whose sshd runs in the namespaces, if it is not this one."""
    for role in ROLES:
        if not _netns_exists(role.namespace):
            continue
        listed = _cmd(["ip", "netns", "pids", role.namespace], check=False).stdout.split()
        for pid in listed:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            found = re.search(
                r" -f (.+)/sshd_(?:target|load)_config ", cmdline.decode(errors="replace") + " "
            )
            if found and Path(found[1]) != files.root:
                return Path(found[1])
    return None


def _check_subnet_free() -> None:
    """The lab's subnet must not already be routed somewhere else on this machine."""
    subnet = ipaddress.ip_network(f"{BRIDGE_ADDRESS}/{PREFIX_LENGTH}", strict=False)
    listed = _cmd(["ip", "-j", "-4", "addr", "show"], check=False).stdout or "[]"
    for link in json.loads(listed):
        for info in link.get("addr_info", []):
            network = ipaddress.ip_network(
                f"{info.get('local')}/{info.get('prefixlen', 32)}", strict=False
            )
            if network.overlaps(subnet):
                raise UserError(
                    f"orch lab: {subnet} is already in use on interface {link.get('ifname')} "
                    f"({info.get('local')}/{info.get('prefixlen')}); the lab needs that subnet"
                )


def _build_network(log: Log) -> None:
    log(f"bridge {BRIDGE} {BRIDGE_ADDRESS}/{PREFIX_LENGTH}")
    _cmd(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _disable_ipv6(BRIDGE)
    _cmd(["ip", "addr", "add", f"{BRIDGE_ADDRESS}/{PREFIX_LENGTH}", "dev", BRIDGE])
    _cmd(["ip", "link", "set", BRIDGE, "up"])
    for role in ROLES:
        ns = role.namespace
        log(f"namespace {ns}: eth0 {role.address}/{PREFIX_LENGTH} via {role.veth}")
        _cmd(["ip", "netns", "add", ns])
        _cmd(["ip", "link", "add", role.veth, "type", "veth", "peer", "name", role.peer])
        _disable_ipv6(role.veth)
        _cmd(["ip", "link", "set", role.peer, "netns", ns])
        _cmd(["ip", "-n", ns, "link", "set", role.peer, "name", "eth0"])
        _disable_ipv6("all", ns)
        _disable_ipv6("eth0", ns)
        _cmd(["ip", "-n", ns, "addr", "add", f"{role.address}/{PREFIX_LENGTH}", "dev", "eth0"])
        _cmd(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _cmd(["ip", "-n", ns, "link", "set", "lo", "up"])
        _cmd(["ip", "link", "set", role.veth, "master", BRIDGE])
        _cmd(["ip", "link", "set", role.veth, "up"])


def _write_keys_and_configs(files: LabFiles) -> None:
    files.root.mkdir(parents=True, exist_ok=True)
    client_public = _new_key(files.client_key, "orch-lab-client")
    files.authorized_keys.write_text(client_public + "\n")
    known = []
    for role in ROLES:
        public = _new_key(files.host_key(role), f"orch-lab-{role.role}")
        key_type, key_data = public.split()[:2]
        known.append(f"{role.address} {key_type} {key_data}")
        files.sshd_config(role).write_text(sshd_config_text(files, role))
        files.pid_file(role).unlink(missing_ok=True)
        files.workdir(role).mkdir(parents=True, exist_ok=True)
    files.known_hosts.write_text("\n".join(known) + "\n")


def _start_sshd(files: LabFiles, role: Role) -> int:
    """Start the role's sshd inside its namespace and a fresh UTS namespace; return its PID."""
    config = files.sshd_config(role)
    _cmd([SSHD, "-t", "-f", str(config)])
    log_file = files.sshd_log(role)
    with log_file.open("ab") as log:
        # setsid --fork: sshd is nobody's child here, so it outlives `orch lab up`.
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
        pid = _sshd_pid(files, role)
        if pid is not None and _tcp_open(role.address, 22, timeout=0.5):
            return pid
        time.sleep(0.05)
    raise HostError(
        f"lab: sshd of {role.namespace} did not answer on {role.address}:22 within "
        f"{SSHD_READY_SECONDS:.0f} s: {_tail(log_file)}"
    )


def _written_by_lab(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as file:
            return file.readline().rstrip("\n") == HOSTS_MARK
    except (OSError, UnicodeDecodeError):
        return False


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _check_bridged_path() -> None:
    """Load namespace -> target namespace through the bridge (a firewall may block it)."""
    target, load = ROLES
    probe = "import socket, sys\nsocket.create_connection((sys.argv[1], 22), 3).close()\n"
    done = _cmd(
        ["ip", "netns", "exec", load.namespace, sys.executable, "-c", probe, target.address],
        check=False,
    )
    if done.returncode != 0:
        raise HostError(
            f"lab: {load.namespace} cannot reach {target.address}:22 across {BRIDGE} "
            "(is bridged traffic filtered by a firewall, e.g. br_netfilter?)"
        )


def lab_up(
    lab_dir: Path = DEFAULT_DIR, hosts_file: Path = DEFAULT_HOSTS_FILE, log: Log = print
) -> LabStatus:
    """Build the lab and write its inventory; on any failure, remove what was made."""
    require_root()
    _require_tools()
    files = LabFiles(lab_dir)
    hosts_file = hosts_file.absolute()
    if hosts_file.exists() and not _written_by_lab(hosts_file):
        raise UserError(
            f"orch lab: {hosts_file} exists and was not written by `orch lab up`; "
            "name another file with --inventory"
        )
    status = lab_status(lab_dir)
    if status.up and status.hosts_file == str(hosts_file) and hosts_file.is_file():
        log("lab already up")
        return status
    other = _other_lab(files)
    if other is not None:
        raise UserError(
            f"orch lab: a lab from {other} is up (its sshd runs in the namespaces); "
            f"bring it down first: orch lab down --dir {shlex.quote(str(other))}"
        )
    if status.anything or any(_link_exists(r.veth) for r in ROLES):
        log("removing the remains of an earlier lab first")
        lab_down(lab_dir, hosts_file, keep_work=True, log=lambda _: None)
    _check_subnet_free()
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        _write_keys_and_configs(files)
        files.state.write_text(json.dumps({"hosts_file": str(hosts_file)}) + "\n")
        _build_network(log)
        for role in ROLES:
            pid = _start_sshd(files, role)
            log(f"sshd {role.namespace} (hostname {role.hostname}): PID {pid}")
        _check_bridged_path()
        hosts_file.write_text(hosts_yaml(files, _env_path(files)))
        log(f"inventory: {hosts_file}")
    except BaseException:
        with contextlib.suppress(Exception):
            lab_down(lab_dir, hosts_file, keep_work=True, log=lambda _: None)
        raise
    return lab_status(lab_dir)


def lab_down(
    lab_dir: Path = DEFAULT_DIR,
    hosts_file: Path | None = DEFAULT_HOSTS_FILE,
    keep_work: bool = False,
    log: Log = print,
) -> None:
    """Stop the sshds (by PID) and anything else left in the namespaces, delete the
    namespaces, veths and bridge, and the lab's files. Safe to run any number of times."""
    require_root()
    files = LabFiles(lab_dir)
    other = _other_lab(files)
    if other is not None:
        raise UserError(
            f"orch lab: the lab that is up belongs to {other}, not {files.root}; "
            f"to remove it: orch lab down --dir {shlex.quote(str(other))}"
        )
    recorded = None
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(files.state.read_text()).get("hosts_file")
    sshds = [pid for role in ROLES if (pid := _sshd_pid(files, role)) is not None]
    if sshds:
        log(f"stopping sshd PID {', '.join(map(str, sshds))}")
        _terminate(sshds)
    for role in ROLES:
        if not _netns_exists(role.namespace):
            continue
        # Servers or k6 left by an interrupted run, and SSH sessions.
        listed = _cmd(["ip", "netns", "pids", role.namespace], check=False).stdout.split()
        leftover = [int(pid) for pid in listed if pid.isdigit() and _alive(int(pid))]
        if leftover:
            log(f"stopping {len(leftover)} process(es) left in {role.namespace}")
            _terminate(leftover)
    for role in ROLES:
        if _link_exists(role.veth):
            _cmd(["ip", "link", "del", role.veth], check=False)
        if _netns_exists(role.namespace):
            log(f"deleting namespace {role.namespace}")
            _cmd(["ip", "netns", "del", role.namespace])
    if _link_exists(BRIDGE):
        log(f"deleting bridge {BRIDGE}")
        _cmd(["ip", "link", "del", BRIDGE])
    for path in files.generated():
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        files.shim_dir.rmdir()
    if not keep_work and files.work.exists():
        shutil.rmtree(files.work)
    for candidate in {str(hosts_file.absolute()) if hosts_file else None, recorded} - {None}:
        path = Path(str(candidate))
        if _written_by_lab(path):
            path.unlink()
    with contextlib.suppress(OSError):
        files.root.rmdir()  # only when nothing the user keeps is left in it
