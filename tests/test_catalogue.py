"""The server catalogue: the shipped entries and matrices, generated files, and every kind of
bad entry as one line naming the file and key, exit status 2."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from orch_helpers import orch
from server_helpers import REPO, SERVER_NAMES

from orchestrator.catalogue.entry import ServerEntry, fill
from orchestrator.catalogue.read import load_catalogue, read_catalogue_file
from orchestrator.errors import UserError

SHIPPED = REPO / "servers.yaml"
SIX = list(SERVER_NAMES)
HOSTS = (
    "hosts:\n  local: {connection: local}\n"
    "target: {host: local, cpus: [0], listen: {port: 8000}}\n"
    "load: {host: local, cpus: [1]}\n"
)
ENTRY = "    api: epoll\n    language: go\n    start: ./serve --host {host} --port {port}\n"


def names(servers: object) -> list[str]:
    return [s.name for s in servers]  # type: ignore[attr-defined]


def test_the_six_and_nginx_are_entries_with_matrices() -> None:
    catalogue = load_catalogue()
    assert names(catalogue.servers) == [*SIX, "nginx"]
    matrices = catalogue.matrices
    assert list(matrices) == ["full", "reference", "epoll", "io_uring", "c", "rust", "zig"]
    assert names(matrices["full"]) == SIX
    assert names(matrices["reference"]) == [*SIX, "nginx"]
    assert names(matrices["epoll"]) == ["c-epoll", "rust-epoll", "zig-epoll"]  # not nginx
    assert names(catalogue.select(None, [])) == SIX
    assert names(catalogue.select("c", ["nginx"])) == ["c-epoll", "c-io_uring", "nginx"]
    nginx = catalogue.by_name("nginx")
    assert (nginx.api, nginx.language_label) == ("epoll", "nginx")
    assert catalogue.by_name("rust-io_uring").language_label == "Rust"


def test_nginx_config_is_generated_with_only_orchs_placeholders_filled() -> None:
    entry = load_catalogue().by_name("nginx").entry
    template = Path(entry.files["nginx.conf"]).read_text(encoding="utf-8")
    text = fill(template, {"host": "127.0.0.1", "port": "8123", "dir": "/w/d", "sources": ""})
    assert "listen 127.0.0.1:8123 backlog=4096;" in text
    assert "pid /w/d/nginx.pid;" in text and "access_log off;" in text
    assert 'return 200 "Have a nice day!\\n";' in text and "default_type text/html;" in text
    assert "events {" in text and "{dir}" not in text
    assert "master_process off" in entry.start and entry.ready.line is None


def test_stop_statuses_a_server_may_end_with() -> None:
    foreign = ServerEntry.model_validate(
        {"api": "other", "language": "go", "start": "s {host} {port}", "stop_signal": "sigint"}
    )
    assert foreign.stop_signal == "INT"
    assert foreign.stopped_cleanly(0) and foreign.stopped_cleanly(-signal.SIGINT)
    assert foreign.stopped_cleanly(128 + signal.SIGINT) and not foreign.stopped_cleanly(1)
    exact = load_catalogue().by_name("c-epoll").entry
    assert exact.stopped_cleanly(0) and not exact.stopped_cleanly(-signal.SIGTERM)


def test_a_fixed_port_needs_no_placeholders() -> None:
    entry = ServerEntry.model_validate(
        {"api": "epoll", "language": "c", "start": "./legacy", "port": 8001, "ready": "tcp"}
    )
    assert entry.port == 8001 and entry.ready.line is None


BAD_ENTRIES = [
    pytest.param(
        ENTRY + "    colour: blue\n", "servers.mine: unknown key 'colour'", id="unknown-key"
    ),
    pytest.param(
        ENTRY.replace("--host {host} ", ""),
        "servers.mine.start: no {host} placeholder: the start command must say where to listen "
        "with {host} and {port}, or the entry must give its fixed port",
        id="missing-placeholder",
    ),
    pytest.param(
        ENTRY.replace("{host}", "{address}"),
        "servers.mine.start: unknown placeholder {address} (known: host, port, dir, sources)",
        id="unknown-placeholder",
    ),
    pytest.param(
        ENTRY + "    port: 8000\n",
        "servers.mine.port: 8000 is also target.listen.port, where the other servers are told "
        "to listen; a fixed port must differ",
        id="fixed-port-clash",
    ),
    pytest.param(
        "    api: epoll\n    language: go\n",
        "servers.mine.start: required key is missing",
        id="missing-key",
    ),
    pytest.param(
        ENTRY.replace("api: epoll", "api: kqueue"),
        "servers.mine.api: Input should be 'epoll', 'io_uring' or 'other'",
        id="unknown-api",
    ),
    pytest.param(
        ENTRY + "    stop_signal: STOPPLEASE\n",
        "servers.mine.stop_signal: unknown signal 'STOPPLEASE' (e.g. TERM, INT, QUIT)",
        id="unknown-signal",
    ),
    pytest.param(
        ENTRY + "    ready: soon\n",
        "servers.mine.ready: expected tcp or {line: PATTERN}",
        id="bad-ready",
    ),
    pytest.param(
        ENTRY + "    ready: {line: 'listening (on'}\n",
        "servers.mine.ready.line: bad regular expression: missing ), unterminated subpattern "
        "at position 10",
        id="bad-pattern",
    ),
    pytest.param(
        ENTRY + "    fresh: make -q\n",
        "servers.mine.fresh: a freshness probe needs a build command",
        id="fresh-without-build",
    ),
]


@pytest.mark.parametrize(("entry", "message"), BAD_ENTRIES)
def test_bad_entry_in_the_inventory(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(HOSTS + "servers:\n  mine:\n" + entry, encoding="utf-8")
    done = orch("check", "-i", str(path), timeout=60)
    assert done.returncode == 2, done.stdout
    assert done.stderr.splitlines() == [f"orch: error: {path}: {message}"], done.stderr


@pytest.mark.parametrize("command", ["check", "deploy", "run"])
def test_a_name_used_twice(tmp_path: Path, command: str) -> None:
    """In one file (a YAML key given twice), or in the inventory and the shipped catalogue."""
    twice = tmp_path / "twice.yaml"
    twice.write_text(HOSTS + "servers:\n  mine:\n" + ENTRY + "  mine:\n" + ENTRY, encoding="utf-8")
    done = orch(command, "-i", str(twice), timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"orch: error: {twice}: servers.mine: given twice (lines 6 and 10)"
    ]
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text(HOSTS + "servers:\n  nginx:\n" + ENTRY, encoding="utf-8")
    done = orch(command, "-i", str(shipped), timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"orch: error: {shipped}: servers.nginx: the name is already used in {SHIPPED}; give "
        "this server another name"
    ]


def test_check_lists_the_catalogue_with_the_inventorys_entries(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    path = tmp_path / "hosts.yaml"
    path.write_text(
        HOSTS + "servers:\n  mine:\n" + ENTRY + "    sources: mine\n    matrices: [own]\n",
        encoding="utf-8",
    )
    done = orch("check", "-i", str(path), timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"  servers: 8 from {SHIPPED} (7), {path} (1)" in done.stdout
    assert "  server nginx: epoll, nginx; start `nginx -p {dir}" in done.stdout
    assert "  server mine: epoll, go; start `./serve --host {host} --port {port}`" in done.stdout
    assert "own (mine)" in done.stdout and "reference (c-epoll, " in done.stdout


def test_bad_catalogue_files(tmp_path: Path) -> None:
    path = tmp_path / "servers.yaml"
    path.write_text("servers: {}\nserver: {}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"servers.yaml: server: unknown key 'server'$"):
        read_catalogue_file(path)
    path.write_text("servers:\n  a:\n" + ENTRY + "  b:\n" + ENTRY + "  a:\n" + ENTRY)
    with pytest.raises(UserError, match=r"servers.yaml: servers.a: given twice \(lines 2 and 10\)"):
        read_catalogue_file(path)
    path.write_text("servers:\n  a:\n" + ENTRY + "    sources: gone\n")
    with pytest.raises(UserError, match=f"servers.a.sources: no folder {tmp_path}/gone$"):
        read_catalogue_file(path)
    path.write_text("servers:\n  'a b':\n" + ENTRY)
    with pytest.raises(UserError, match=r"servers\.a b: a name is letters, digits"):
        read_catalogue_file(path)
