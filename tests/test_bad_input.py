"""Bad input through the `orch` command: each kind is exactly one line on stderr, exit 2.

(CPU lists naming absent CPUs, a missing key file and bad --resume use are in
test_faults_loopback.py and test_faults_lab.py: they need a deployed host or the lab.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from orch_helpers import only_line, orch, write_loopback_inventory

GOOD_HOSTS = "hosts:\n  local: {connection: local}\n"
GOOD_LOAD = "load: {host: local, cpus: [1]}\n"

INVENTORIES = [
    pytest.param(
        GOOD_HOSTS.replace("local}", "local") + "target: {host: local, cpus: [0]}\n",
        "YAML syntax error at line 3, column 7: expected ',' or '}', but got ':'",
        id="yaml-syntax",
    ),
    pytest.param(
        GOOD_HOSTS + "target: {host: local, cpus: [0], cpu: 1}\n" + GOOD_LOAD,
        "target.cpu: unknown key 'cpu'",
        id="unknown-key",
    ),
    pytest.param(
        GOOD_HOSTS + "target: {host: local, cpus: [0], listen: {port: eighty}}\n" + GOOD_LOAD,
        "target.listen.port: Input should be a valid integer, unable to parse string as an integer",
        id="wrong-type",
    ),
    pytest.param(
        GOOD_HOSTS + "target: {host: local, cpus: [0, 1]}\n" + 'load: {host: local, cpus: "1"}\n',
        "load.cpus: CPU [1] is given to both the server and the load tool on the same host; "
        "give them disjoint cores",
        id="shared-cpu-loopback",
    ),
    pytest.param(
        GOOD_HOSTS
        + "  box: {address: 10.0.0.9, password: hunter2}\n"
        + "target: {host: box, cpus: [0]}\n"
        + GOOD_LOAD,
        "hosts.box.password: 'password' is not accepted: passwords never go in the inventory; "
        "use key_file, ssh-agent or ~/.ssh/config",
        id="password",
    ),
    pytest.param(
        GOOD_HOSTS + "target: {host: local, cpus: [0], receive_work: elsewhere}\n" + GOOD_LOAD,
        "target.receive_work: Input should be 'server', 'other' or 'as-is'",
        id="unknown-placement",
    ),
]


@pytest.mark.parametrize(("text", "message"), INVENTORIES)
@pytest.mark.parametrize("command", ["check", "run"])
def test_bad_inventory(tmp_path: Path, text: str, message: str, command: str) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(text, encoding="utf-8")
    done = orch(command, "-i", str(path), timeout=60)
    assert done.returncode == 2
    assert only_line(done.stderr) == f"orch: error: {path}: {message}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("run", "--server", "c-kqueue"),
            "--server: unknown server 'c-kqueue' (known: c-epoll, rust-epoll, zig-epoll, "
            "c-io_uring, rust-io_uring, zig-io_uring, nginx)",
            id="unknown-server",
        ),
        pytest.param(
            ("deploy", "--matrix", "everything"),
            "--matrix: unknown matrix 'everything' (known: full, reference, epoll, io_uring, c, "
            "rust, zig)",
            id="unknown-matrix",
        ),
        pytest.param(
            ("run", "--receive-work", "nowhere"),
            "--receive-work: unknown placement 'nowhere' (known: server, other, as-is)",
            id="unknown-placement",
        ),
        pytest.param(
            ("run", "-i", "no-such-hosts.yaml"),
            "no-such-hosts.yaml: inventory file not found",
            id="missing-inventory",
        ),
    ],
)
def test_bad_names(args: tuple[str, ...], message: str) -> None:
    done = orch(*args, timeout=60)
    assert done.returncode == 2
    assert only_line(done.stderr) == f"orch: error: {message}"


@pytest.mark.parametrize("command", ["report", "compare", "resume"])
def test_a_folder_that_is_not_a_run(tmp_path: Path, command: str) -> None:
    args = {
        "report": ("report", str(tmp_path)),
        "compare": ("compare", str(tmp_path), str(tmp_path)),
        "resume": ("run", "--resume", str(tmp_path)),
    }[command]
    done = orch(*args, timeout=60)
    assert done.returncode == 2
    assert only_line(done.stderr) == f"orch: error: {tmp_path}: not a run directory (no run.json)"


NO_WRK_RATES = "--rates: wrk has no open model; use --load-tool h2load (or k6) for arrival rates"
BAD_SWEEPS = [
    (
        ("--connections", "0,abc"),
        "--connections: '0' is not a whole number of at least 1 (in '0,abc')",
    ),
    (
        ("--connections", ""),
        "--connections: expected a comma-separated list such as 1,10,100, got ''",
    ),
    (("--load-tool", "wrk", "--rates", "1000,2000"), NO_WRK_RATES),
    (("--load-tool", "wrk", "--rates", "auto"), NO_WRK_RATES),
    (
        ("--load-tool", "k6", "--connections", "10", "--pipeline", "1,4"),
        "--pipeline: k6 does not pipeline requests; use --load-tool wrk",
    ),
    (
        ("--load-tool", "k6", "--connections", "10", "--profile", "sweep-short"),
        "--warmup: k6 holds a load point for at least 1 s, and profile sweep-short asks "
        "0.25 s (give 1s or more, or use wrk)",
    ),
    (
        ("--load-tool", "h2load", "--connections", "10", "--pipeline", "4"),
        "--pipeline: orch runs h2load one request at a time per connection (its late "
        "requests are counted that way); use --load-tool wrk-pipelined",
    ),
    (
        ("--load-tool", "h2load", "--rates", "5000,60000", "--connections", "100"),
        "--connections: h2load sends at most 100 req/s per connection (its rate timer ticks "
        "every 10 ms at most), so 60,000 req/s needs at least 600 connections, not 100 (or "
        "leave --connections out: orch then opens one per 100 req/s)",
    ),
    (
        ("--load-tool", "h2load", "--rates", "auto", "--connections", "100"),
        "--connections: with --rates auto, orch opens one h2load connection per 100 req/s",
    ),
    (
        ("--load-tool", "h2load", "--rates", "100000", "--warmup", "5ms"),
        "--warmup: 100,000 req/s on 1000 connections sends 500 requests in 0.005 s, fewer "
        "than its connections; h2load needs one per connection at least (give a longer "
        "--warmup)",
    ),
    (
        ("--rate", "100", "--rates", "200"),
        "--rate: give one rate with --rate or a list with --rates, not both",
    ),
    (
        ("--resume", "somewhere", "--connections", "10,100"),
        "--resume: --connections cannot be combined with it (a resumed run keeps the options "
        "recorded in its run.json)",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD_SWEEPS)
def test_bad_sweep_options(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    inventory = ["-i", str(write_loopback_inventory(tmp_path))] if "--resume" not in args else []
    done = orch("run", *inventory, *args, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"orch: error: {message}"]
