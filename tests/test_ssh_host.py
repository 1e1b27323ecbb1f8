"""Fast tests of SshHost's remote command lines and parsers (no SSH server needed).

The generated command lines are run here with the local shell, which is what sshd does
with them on a remote host, so quoting is checked by executing it, not by reading it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from orchestrator.errors import HostError, UserError
from orchestrator.hosts.ssh import SshHost
from orchestrator.hosts.ssh_connection import reason
from orchestrator.hosts.ssh_scripts import (
    PID_MARK,
    background_script,
    env_assignments,
    find_pid,
    parse_times,
    probe_script,
    run_script,
    shell_status,
    split_wrapped,
    status_script,
    stop_script,
)
from orchestrator.hosts.ssh_settings import fabric_config, jump_spec, parse_jump, resolve_settings
from orchestrator.inventory import HostSpec

NASTY = [
    "plain",
    "two words",
    "it's",
    'double "quoted"',
    "$HOME",
    "`id`",
    "$(id)",
    "*",
    "a;b",
    "back\\slash",
    "new\nline",
    "",
    "-n",
    "~",
]
ECHO_ARGS = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]


def _login_shell(command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command line the way sshd does: `$SHELL -c LINE`."""
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_arguments_arrive_unchanged() -> None:
    done = _login_shell(run_script([*ECHO_ARGS, *NASTY]))
    wrapped = split_wrapped(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    assert json.loads(wrapped.stdout) == NASTY
    assert wrapped.stderr == ""
    assert wrapped.pid is not None and wrapped.pid > 1


def test_env_cwd_and_path_prefix(tmp_path: Path) -> None:
    folder = tmp_path / "a dir with 'quotes' and $dollar"
    folder.mkdir()
    bin_dir = tmp_path / "my bin"
    bin_dir.mkdir()
    tool = bin_dir / "orch-test-tool"
    tool.write_text("#!/bin/sh\necho tool-ran\n")
    tool.chmod(0o755)
    script = (
        'import os; print(os.getcwd()); print(os.environ["ODD"]); '
        'print(os.environ["PATH"].split(":")[0])'
    )
    env = {"ODD": "x y'z $HOME `id`"}
    command = run_script(
        [sys.executable, "-c", script], cwd=str(folder), env=env, env_path=[str(bin_dir)]
    )
    done = _login_shell(command)
    lines = split_wrapped(done.stdout, done.stderr).stdout.splitlines()
    assert lines == [str(folder), env["ODD"], str(bin_dir)]
    found = _login_shell(run_script(["orch-test-tool"], env_path=[str(bin_dir)]))
    assert split_wrapped(found.stdout, found.stderr).stdout == "tool-ran\n"


def test_exit_status_stderr_and_cpu_seconds() -> None:
    burn = "import sys; sum(range(3_000_000)); sys.stderr.write('oops'); sys.exit(5)"
    done = _login_shell(run_script([sys.executable, "-c", burn], cpus=[0]))
    wrapped = split_wrapped(done.stdout, done.stderr)
    assert done.returncode == 5
    assert wrapped.stderr == "oops"  # the trailer and its separating newline are gone
    assert wrapped.cpu_seconds is not None and wrapped.cpu_seconds > 0


def test_bad_cwd_and_missing_program() -> None:
    assert _login_shell(run_script(["true"], cwd="/nonexistent/dir")).returncode == 126
    assert _login_shell(run_script(["orch-no-such-program"])).returncode == 127


def test_bad_environment_name_is_refused() -> None:
    with pytest.raises(HostError):
        env_assignments({"A;rm -rf /": "x"})
    assert env_assignments({"A_1": "v w"}) == "A_1='v w' "


def test_login_script_noise_before_the_pid_line_is_dropped() -> None:
    stdout = f"motd line\n{PID_MARK} 4242\nreal output\n"
    wrapped = split_wrapped(stdout, "")
    assert (wrapped.pid, wrapped.stdout) == (4242, "real output\n")
    assert find_pid(stdout) == 4242
    assert split_wrapped("no marker\n", "err").stdout == "no marker\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0m0.000000s 0m0.000000s\n0m0.490000s 0m0.020000s\n", 0.51),  # dash
        ("0m0.002s 0m0.000s\n0m0.534s 0m0.031s\n", 0.565),  # bash
        ("0m0.0s 0m0.0s\n125m3.5s 1m0.25s\n", 125 * 60 + 3.5 + 60.25),  # minutes pass 59
        ("0m0,0s 0m0,0s\n0m1,5s 0m0,5s\n", 2.0),  # a decimal comma
        ("0m0.1s 0m0.1s\n", None),  # no children line
        ("", None),
        ("garbage\nmore garbage\n", None),
    ],
)
def test_parse_times(text: str, expected: float | None) -> None:
    result = parse_times(text)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_times_trailer_of_real_shells() -> None:
    for shell in ("sh", "bash"):
        done = subprocess.run(
            [shell, "-c", f"{shlex.quote(sys.executable)} -c 'sum(range(2_000_000))'; times"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert (parse_times(done.stdout) or 0) > 0, (shell, done.stdout)


def test_shell_status_matches_localhost_convention() -> None:
    assert shell_status(0) == 0
    assert shell_status(99) == 99
    assert shell_status(128 + 15) == -15
    assert shell_status(128 + 9) == -9
    assert shell_status(255) == 255


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_background_script_reports_pid_log_and_status(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "server.log"
    status = Path(f"{log}.status")
    argv = [
        sys.executable,
        "-c",
        "import os, sys; print('pid', os.getpid(), flush=True); sys.exit(3)",
    ]
    started = time.monotonic()
    done = _login_shell(background_script(argv, log_path=str(log), status_path=str(status)))
    assert time.monotonic() - started < 5  # the channel closes without waiting for the process
    pid = find_pid(done.stdout)
    assert done.returncode == 0 and pid is not None, done.stderr
    _wait_for(status, 10)
    assert status.read_text().strip() == "3"
    assert log.read_text().split() == ["pid", str(pid)]  # the printed PID is the process's own


def test_status_script_never_reports_a_just_ended_process_as_gone(tmp_path: Path) -> None:
    for attempt in range(5):
        log, status = tmp_path / f"{attempt}.log", tmp_path / f"{attempt}.log.status"
        argv = [sys.executable, "-c", "import sys; sys.exit(3)"]
        pid = find_pid(
            _login_shell(background_script(argv, log_path=str(log), status_path=str(status))).stdout
        )
        assert pid is not None
        deadline = time.monotonic() + 10
        seen = "running"
        while seen == "running" and time.monotonic() < deadline:
            seen = _login_shell(status_script(pid, str(status))).stdout.strip()
        assert seen == "3"
    never_started = _login_shell(status_script(2**22 + 1, str(tmp_path / "none.status")))
    assert never_started.stdout.strip() == "gone"


def test_stop_script_terminates_then_kills(tmp_path: Path) -> None:
    log, status = tmp_path / "a.log", tmp_path / "a.log.status"
    polite = [sys.executable, "-c", "import time; time.sleep(60)"]
    pid = find_pid(
        _login_shell(background_script(polite, log_path=str(log), status_path=str(status))).stdout
    )
    assert pid is not None
    done = _login_shell(stop_script(pid, str(status), grace=3))
    assert shell_status(int(done.stdout.strip())) == -15

    log2, status2 = tmp_path / "b.log", tmp_path / "b.log.status"
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)",
    ]
    pid = find_pid(
        _login_shell(
            background_script(stubborn, log_path=str(log2), status_path=str(status2))
        ).stdout
    )
    assert pid is not None
    deadline = time.monotonic() + 10
    while "ready" not in log2.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    done = _login_shell(stop_script(pid, str(status2), grace=0.3))
    assert shell_status(int(done.stdout.strip())) == -9
    assert time.monotonic() - started < 5


def test_probe_script() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert _login_shell(probe_script("127.0.0.1", port, 1.0)).returncode == 0
    assert _login_shell(probe_script("127.0.0.1", port, 1.0)).returncode != 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bastion", (None, "bastion", None)),
        ("me@bastion", ("me", "bastion", None)),
        ("me@bastion:2222", ("me", "bastion", 2222)),
        ("[2001:db8::1]:22", (None, "2001:db8::1", 22)),
        ("2001:db8::1", (None, "2001:db8::1", None)),
    ],
)
def test_parse_jump(text: str, expected: tuple[str | None, str, int | None]) -> None:
    assert parse_jump(text) == expected


def test_parse_jump_rejects_bad_port() -> None:
    with pytest.raises(UserError, match="bad port"):
        parse_jump("host:99999")


def test_jump_chain_inherits_key_and_known_hosts() -> None:
    base = HostSpec(address="10.0.0.5", key_file="/k", known_hosts="/kh", connect_timeout=4)
    hop = jump_spec("a@first, b@second:2200", base)
    assert (hop.address, hop.user, hop.port) == ("second", "b", 2200)
    assert (hop.key_file, hop.known_hosts, hop.connect_timeout) == ("/k", "/kh", 4)
    assert hop.jump_host == "a@first"


def test_settings_inventory_wins_over_ssh_config() -> None:
    config = paramiko.SSHConfig.from_text(
        "Host box\n  HostName 192.0.2.7\n  User alice\n  Port 2222\n"
        "  IdentityFile ~/.ssh/box_key\n  ProxyJump gate\n  ConnectTimeout 7\n"
        "  UserKnownHostsFile /tmp/kh1 /tmp/kh2\n"
    )
    from_config = resolve_settings("t", HostSpec(address="box"), False, config)
    assert (from_config.hostname, from_config.user, from_config.port) == (
        "192.0.2.7",
        "alice",
        2222,
    )
    assert from_config.key_files == (os.path.expanduser("~/.ssh/box_key"),)
    assert not from_config.key_from_inventory
    assert (from_config.jump, from_config.connect_timeout) == ("gate", 7.0)
    assert from_config.known_hosts == "/tmp/kh1"
    explicit = HostSpec(
        address="box", user="bob", port=22, key_file="/k", connect_timeout=3, known_hosts="/kh"
    )
    mine = resolve_settings("t", explicit, False, config)
    assert (mine.user, mine.port, mine.key_files, mine.connect_timeout) == ("bob", 22, ("/k",), 3)
    assert mine.known_hosts == "/kh" and mine.key_from_inventory
    assert resolve_settings(
        "t", HostSpec(accept_new_host_keys=True), False, config
    ).accept_new_host_keys


def test_missing_key_file_is_a_user_error(tmp_path: Path) -> None:
    spec = HostSpec(address="127.0.0.1", key_file=str(tmp_path / "absent"))
    with pytest.raises(UserError, match=r"hosts\.t1\.key_file: .*absent does not exist"):
        SshHost("t1", spec, ssh_config=paramiko.SSHConfig())


def test_refused_connection_names_host_and_address(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    spec = HostSpec(address="127.0.0.1", port=port, known_hosts=str(tmp_path / "kh"))
    with pytest.raises(
        HostError, match=rf"^t1 \(127\.0\.0\.1\): connection to 127\.0\.0\.1:{port} refused"
    ):
        SshHost("t1", spec, ssh_config=paramiko.SSHConfig())


def test_encrypted_key_without_agent_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = tmp_path / "locked"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    spec = HostSpec(address="127.0.0.1", key_file=str(key))
    with pytest.raises(UserError, match="passphrase; load it into ssh-agent"):
        SshHost("t1", spec, ssh_config=paramiko.SSHConfig())


@contextlib.contextmanager
def _silent_port() -> Iterator[int]:
    """A local port that accepts connections and never says a word (no SSH banner)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        yield silent.getsockname()[1]


def test_silent_server_fails_within_the_connect_timeout(tmp_path: Path) -> None:
    with _silent_port() as port:
        spec = HostSpec(
            address="127.0.0.1", port=port, connect_timeout=1, known_hosts=str(tmp_path / "kh")
        )
        started = time.monotonic()
        with pytest.raises(
            HostError, match=r"^t1 \(127\.0\.0\.1\): SSH handshake .*time limit 1 s"
        ):
            SshHost("t1", spec, ssh_config=paramiko.SSHConfig())
        assert time.monotonic() - started < 5


def test_a_fractional_connect_timeout_is_kept(tmp_path: Path) -> None:
    # fabric's Connection rounds its connect_timeout down to whole seconds (0.5 -> no
    # limit at all); orch hands paramiko the inventory's value itself.
    with _silent_port() as port:
        spec = HostSpec(
            address="127.0.0.1", port=port, connect_timeout=0.5, known_hosts=str(tmp_path / "kh")
        )
        started = time.monotonic()
        with pytest.raises(HostError, match=r"time limit 0\.5 s"):
            SshHost("t1", spec, ssh_config=paramiko.SSHConfig())
        assert time.monotonic() - started < 3


def test_an_ssh_config_file_can_be_given_and_the_inventory_still_wins(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host box\n  HostName 192.0.2.7\n  User alice\n  Port 2222\n")
    settings = resolve_settings("t", HostSpec(address="box", port=22), False, fabric_config(config))
    assert (settings.hostname, settings.user, settings.port) == ("192.0.2.7", "alice", 22)
    with pytest.raises(UserError, match="cannot read SSH config"):
        fabric_config(tmp_path / "absent")


def test_a_vanished_connection_is_said_in_words() -> None:
    # paramiko raises a bare EOFError when the transport dies under a new channel.
    assert reason(EOFError()) == "the connection closed (sshd gone or the network cut)"
    assert reason(ConnectionRefusedError(111, "Connection refused")) == "Connection refused"
    assert reason(TimeoutError()) == "TimeoutError"
