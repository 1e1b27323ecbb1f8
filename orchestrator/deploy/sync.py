"""Copy a local directory tree to a host, skipping files whose content is already there."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.hosts.base import Host

# Build outputs are made on the host itself; they are never copied or deleted. A server's
# catalogue entry names its own (`outputs`); these are the default.
EXCLUDED_DIRS = ("bin", "rust/target", "zig/zig-out", "zig/.zig-cache", "zig/zig-cache")
EXCLUDED_SUFFIXES = (".o", ".pyc")


@dataclass(frozen=True)
class SyncReport:
    """What a sync changed."""

    copied: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int


def _excluded(relative: str, dirs: Sequence[str] = EXCLUDED_DIRS) -> bool:
    return relative.endswith(EXCLUDED_SUFFIXES) or any(
        relative == d or relative.startswith(d + "/") for d in dirs
    )


def local_hashes(root: Path, excluded: Sequence[str] = EXCLUDED_DIRS) -> dict[str, str]:
    """sha256 of every file under root that is synced, keyed by relative path."""
    hashes = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not _excluded(relative, excluded):
            hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def remote_hashes(host: Host, root: str, excluded: Sequence[str] = EXCLUDED_DIRS) -> dict[str, str]:
    """sha256 of the files under a host's directory (build outputs pruned), in one command."""
    prunes = " -o ".join(f"-path ./{shlex.quote(d)}" for d in excluded) or "-false"
    script = (
        f"mkdir -p {shlex.quote(root)} && cd {shlex.quote(root)} && "
        f"find . \\( {prunes} \\) -prune -o -type f -print0 | xargs -0 -r sha256sum"
    )
    out = host.run(["sh", "-c", script], timeout=60).stdout
    hashes = {}
    for line in out.splitlines():
        digest, _, name = line.partition("  ")
        if name:
            hashes[name.removeprefix("./")] = digest
    return hashes


def sync_tree(
    host: Host, local_root: Path, remote_root: str, excluded: Sequence[str] = EXCLUDED_DIRS
) -> SyncReport:
    """Make remote_root hold the same synced files as local_root, copying only changes;
    `excluded` folders (build outputs) are neither copied nor removed.

    Copied files get a fresh modification time, so make rebuilds exactly what changed.
    """
    remote_root = host.expand(remote_root)
    wanted = local_hashes(local_root, excluded)
    present = remote_hashes(host, remote_root, excluded)
    changed = [name for name, digest in wanted.items() if present.get(name) != digest]
    stale = [name for name in present if name not in wanted and not _excluded(name, excluded)]
    for name in changed:
        host.put_file(local_root / name, f"{remote_root}/{name}")
    if stale:
        _remove(host, remote_root, stale)
    return SyncReport(tuple(changed), tuple(stale), len(wanted) - len(changed))


def _remove(host: Host, root: str, names: Iterable[str]) -> None:
    host.run(["rm", "-f", "--", *(f"{root}/{name}" for name in names)], timeout=60)
