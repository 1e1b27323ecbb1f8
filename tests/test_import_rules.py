"""ARCHITECTURE.md's code map is the import rule: each unit of `orchestrator/` (a package or a
top-level module) imports only the units its row names, every unit has a row, and the
rules have no cycle (the floors stand on each other, never on what is above)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest
from server_helpers import REPO

PACKAGE = REPO / "orchestrator"
NOTHING = "—"
_NAME = re.compile(r"`([^`]+)`")


def unit_name(text: str) -> str:
    """`run/`, `cli.py` or `run` -> run, cli; `__init__.py` stays itself (the package)."""
    return text if text == "__init__.py" else text.removesuffix("/").removesuffix(".py")


def code_map(architecture: str) -> dict[str, set[str]]:
    """{unit: units it may import} from the Code map table of ARCHITECTURE.md."""
    section = architecture.split("## Code map", 1)[1].split("\n## ", 1)[0]
    rules: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        allowed = set() if cells[2] == NOTHING else {unit_name(n) for n in _NAME.findall(cells[2])}
        for name in _NAME.findall(cells[0]):
            assert unit_name(name) not in rules, f"the code map has two rows for {name}"
            rules[unit_name(name)] = allowed
    return rules


def unit_of(path: Path, root: Path = PACKAGE) -> str:
    """The unit a source file belongs to: its top-level package, or itself."""
    relative = path.relative_to(root)
    if relative == Path("__init__.py"):
        return "__init__.py"
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_units(source: str, root: Path = PACKAGE) -> Iterator[tuple[int, str, str]]:
    """(line, module as written, unit) for every import of orch's own code in `source`,
    lazy and TYPE_CHECKING imports included."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [(alias.name, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "orchestrator":
                modules = [(f"orchestrator.{a.name}", f"orchestrator.{a.name}") for a in node.names]
            else:
                modules = [(node.module, node.module)]
        else:
            continue
        for written, module in modules:
            parts = module.split(".")
            if parts[0] != "orchestrator":
                continue
            if len(parts) == 1 or not (
                (root / parts[1]).is_dir() or (root / f"{parts[1]}.py").is_file()
            ):
                yield node.lineno, written, "__init__.py"
            else:
                yield node.lineno, written, parts[1]


def units_on_disk(root: Path = PACKAGE) -> set[str]:
    """Every unit under `root`: packages, top-level modules and the package's __init__."""
    return {unit_of(path, root) for path in root.rglob("*.py")}


def violations(rules: dict[str, set[str]], root: Path = PACKAGE) -> list[str]:
    """Each import that crosses the rules, as `file:line imports M: U may not import V`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        unit = unit_of(path, root)
        for line, module, target in imported_units(path.read_text(encoding="utf-8"), root):
            if target != unit and target not in rules.get(unit, set()):
                found.append(
                    f"{path.relative_to(root.parent)}:{line} imports {module}: {unit} may not "
                    f"import {target} (ARCHITECTURE.md, Code map)"
                )
    return found


@pytest.fixture(scope="module")
def rules() -> dict[str, set[str]]:
    return code_map((REPO / "ARCHITECTURE.md").read_text(encoding="utf-8"))


def test_every_unit_has_exactly_one_row(rules: dict[str, set[str]]) -> None:
    on_disk = units_on_disk()
    assert sorted(on_disk - rules.keys()) == [], "units missing from the code map"
    assert sorted(rules.keys() - on_disk) == [], "code map rows for units that do not exist"
    named = set().union(*rules.values())
    assert sorted(named - on_disk) == [], "may-import names that are no unit"


def test_no_import_crosses_the_code_map(rules: dict[str, set[str]]) -> None:
    assert violations(rules) == []


def test_the_rules_have_no_cycle(rules: dict[str, set[str]]) -> None:
    try:
        tuple(TopologicalSorter(rules).static_order())
    except CycleError as cycle:
        pytest.fail(f"the code map's rules form a cycle: {' -> '.join(cycle.args[1])}")


def test_a_wrong_import_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "orchestrator"
    (root / "results").mkdir(parents=True)
    (root / "run").mkdir()
    (root / "errors.py").write_text("")
    (root / "run" / "plan.py").write_text("")
    (root / "results" / "rows.py").write_text(
        "from orchestrator.errors import UserError\n"
        "def late() -> None:\n"
        "    from orchestrator.run.plan import build_plan\n"
    )
    rules = {"results": {"errors"}, "run": {"results", "errors"}, "errors": set()}
    assert violations(rules, root) == [
        "orchestrator/results/rows.py:3 imports orchestrator.run.plan: results may not import "
        "run (ARCHITECTURE.md, Code map)"
    ]


def test_the_table_is_read_as_written() -> None:
    table = (
        "## Code map\n\n| unit | owns | may import |\n| --- | --- | --- |\n"
        "| `cli.py` | commands | `commands`, `run` (signals) |\n"
        "| `errors.py`, `log.py` | errors | — |\n\n## Invariants\n| `x.py` | y | `z` |\n"
    )
    assert code_map(table) == {"cli": {"commands", "run"}, "errors": set(), "log": set()}
