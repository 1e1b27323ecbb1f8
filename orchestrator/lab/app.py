"""`orch lab up|down|status`: the two-namespace SSH lab from the command line."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.lab.lab import DEFAULT_DIR, DEFAULT_HOSTS_FILE, lab_down, lab_status, lab_up

lab_app = typer.Typer(
    no_args_is_help=True,
    help="A target and load machines as network namespaces on this one, over SSH (root).",
)

DirOption = Annotated[Path, typer.Option("--dir", help="The lab's folder (keys, configs, work).")]
InventoryOption = Annotated[
    Path, typer.Option("--inventory", "-i", help="The inventory file the lab writes.")
]


@lab_app.command()
def up(
    lab_dir: DirOption = DEFAULT_DIR,
    inventory: InventoryOption = DEFAULT_HOSTS_FILE,
    load_hosts: Annotated[
        int,
        typer.Option(
            "--load-hosts",
            help="Load machines to build (each its own namespace and sshd); the inventory "
            "splits every cell's load across them.",
        ),
    ] = 1,
) -> None:
    """Create the namespaces, bridge and sshds, and write the lab's inventory."""
    status = lab_up(lab_dir, inventory, log=typer.echo, load_hosts=load_hosts)
    for line in status.lines():
        typer.echo(line)
    hosts = shlex.quote(str(inventory))
    typer.echo(f"next: orch deploy -i {hosts} && orch run -i {hosts} --profile quick")


@lab_app.command()
def down(
    lab_dir: DirOption = DEFAULT_DIR,
    inventory: InventoryOption = DEFAULT_HOSTS_FILE,
    keep_work: Annotated[
        bool,
        typer.Option(
            "--keep-work", help="Keep the hosts' work folders (synced sources, built servers)."
        ),
    ] = False,
) -> None:
    """Stop the sshds and remove namespaces, bridge, veths and the lab's files."""
    lab_down(lab_dir, inventory, keep_work=keep_work, log=typer.echo)
    typer.echo("lab: down")


@lab_app.command()
def status(lab_dir: DirOption = DEFAULT_DIR) -> None:
    """Show what of the lab exists; exit status 0 only when it is fully up."""
    current = lab_status(lab_dir)
    for line in current.lines():
        typer.echo(line)
    if not current.up:
        raise typer.Exit(1)
