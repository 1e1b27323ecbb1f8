"""Reading orch's YAML files (the inventory, the server catalogue) with one-line errors: a
syntax error names its line and column, and a key given twice in one mapping (which PyYAML
would silently keep the last of) names the key and both lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import UserError


@dataclass(frozen=True)
class DuplicateKey:
    """Where a mapping holds one key twice."""

    path: str  # the key's path, e.g. servers.nginx
    first_line: int
    second_line: int


def _walk(node: yaml.Node, path: str, seen: set[int]) -> DuplicateKey | None:
    if id(node) in seen:  # an alias of a node already walked
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in lines and key != "<<":
                return DuplicateKey(here, lines[key], line)
            lines[key] = line
            found = _walk(value_node, here, seen)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _walk(item, f"{path}.{index}" if path else str(index), seen)
            if found:
                return found
    return None


def duplicate_key(text: str) -> DuplicateKey | None:
    """The first key given twice in a mapping of `text` (valid YAML), or None."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return None if root is None else _walk(root, "", set())


def refuse_duplicate_keys(text: str, source: str) -> None:
    """Raise UserError naming `source`, the key and both lines when a key is given twice."""
    found = duplicate_key(text)
    if found is not None:
        raise UserError(
            f"{source}: {found.path}: given twice (lines {found.first_line} and "
            f"{found.second_line})"
        )


def read_yaml(path: Path, what: str) -> Any:
    """The data of the YAML file `path`; UserError (`PATH: ...`) when it is missing,
    unreadable, not YAML, or gives a key twice. `what` names the file's kind in messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise UserError(f"{path}: YAML syntax error at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: YAML error: {exc}") from None
    refuse_duplicate_keys(text, str(path))
    return data
