"""`python -m orchestrator` is the `orch` command."""

from orchestrator.cli import main

main()
