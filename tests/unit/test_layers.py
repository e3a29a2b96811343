"""The layers of the tree, as its imports say them (read from the source, nothing imported).

docs/architecture.md promises these ("the layers depend only downwards"); a
change that breaks one fails here rather than in review.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "hub_rtc"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

#: manager's sub-domains, lowest first: each may import only those before it
SUB_DOMAINS = ("access", "hosting", "sessions", "activity", "documents")


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, absolute (relative imports resolved)."""
    package = _module(path) if path.name == "__init__.py" else _module(path)[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                yield node.module or ""
                continue
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module:
                yield target
            else:  # from . import x: x may be a module
                yield from (f"{target}.{alias.name}" for alias in node.names)


def files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def offending(folder: str, allowed: tuple[str, ...]) -> list[str]:
    """``file: module`` for each import under ``folder`` that is not in ``allowed``
    (a top-level name, or a dotted prefix) nor the standard library."""
    bad = []
    for path in files(folder):
        for name in imports(path):
            top = name.partition(".")[0]
            if top in STDLIB or any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{path.relative_to(ROOT)}: {name}")
    return bad


def test_the_checker_sees_imports() -> None:
    """The checks below pass vacuously if imports() reads nothing: make sure it reads."""
    seen = set(imports(PACKAGE / "manager" / "sessions" / "members.py"))
    assert {"hub_rtc.manager.access.people", "hub_rtc.records", "sqlalchemy"} <= seen
    assert offending("relay", ()) != []  # the relay does import hub_rtc modules


def test_the_guard_imports_only_pycrdt() -> None:
    assert offending("guard", ("pycrdt", "hub_rtc.guard")) == []


def test_the_decision_imports_only_itself_and_the_guards_rights() -> None:
    assert offending("decision", ("hub_rtc.decision", "hub_rtc.guard.rights")) == []


def test_the_relay_imports_no_manager_and_no_tornado() -> None:
    assert offending("relay", ("hub_rtc.relay", "hub_rtc.guard", "hub_rtc.protocol")) == []


@pytest.mark.parametrize("folder", ["decision", "records", "manager", "documents", "charts"])
def test_no_domain_module_imports_tornado(folder: str) -> None:
    assert [f"{path.relative_to(ROOT)}: {name}" for path in files(folder)
            for name in imports(path) if name.partition(".")[0] == "tornado"] == []


@pytest.mark.parametrize("index", range(len(SUB_DOMAINS)))
def test_a_sub_domain_imports_only_those_below_it(index: int) -> None:
    sub = SUB_DOMAINS[index]
    above = [f"hub_rtc.manager.{name}" for name in SUB_DOMAINS[index + 1:]]
    bad = [f"{path.relative_to(ROOT)}: {name}"
           for path in files(f"manager/{sub}") for name in imports(path)
           if any(name == a or name.startswith(a + ".") for a in above)]
    assert bad == []
