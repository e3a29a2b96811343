"""The folder tables of README.md and docs/architecture.md name every package of
hub_rtc, and nothing that is gone: a new package left out, or a folder moved
away, fails here rather than misleading the next reader."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: one line of the architecture's tree: the guides of its depth, a branch, a name
_BRANCH = re.compile(r"^((?:│   |    )*)(?:├── |└── )(\S+)")


def packages() -> set[str]:
    """Every folder under hub_rtc/ with an ``__init__.py``, as ``hub_rtc/a/b/``."""
    inits = (ROOT / "hub_rtc").rglob("__init__.py")
    return {f"{init.parent.relative_to(ROOT).as_posix()}/" for init in inits} - {"hub_rtc/"}


def _section(text: str, heading: str) -> str:
    """The text under ``heading``, up to the next heading of the same level or above."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", text[start:], re.MULTILINE)]
    return text[start:start + ends[0]] if ends else text[start:]


def readme_table(text: str) -> set[str]:
    """The hub_rtc paths in the first column of the README's "Where things are"."""
    rows = [line for line in _section(text, "## Where things are").splitlines() if line.startswith("| `")]
    return {path for row in rows for path in re.findall(r"`(hub_rtc/[^`]*)`", row.split("|")[1])}


def architecture_tree(text: str) -> set[str]:
    """The paths of the ``hub_rtc/`` tree in the architecture's "Where the code is"."""
    section = _section(text, "## Where the code is")
    block = section[section.index("```\nhub_rtc/\n") + len("```\nhub_rtc/\n"):].split("```", 1)[0]
    found: set[str] = set()
    parents = ["hub_rtc/"]
    for line in block.splitlines():
        match = _BRANCH.match(line)
        if not match:  # a description carried over to the next line, or past the tree
            continue
        depth = len(match.group(1)) // 4
        parents = parents[: depth + 1]
        path = parents[-1] + match.group(2)
        found.add(path)
        if path.endswith("/"):
            parents.append(path)
    return found


def architecture_parts(text: str) -> set[str]:
    """The first column of the architecture's "part | runs in | what it owns" table."""
    rows = re.findall(r"^\| ([a-z_]+) \| (?:service|shared server|both) \|", text, flags=re.MULTILINE)
    return set(rows)


TABLES: dict[str, tuple[Path, Callable[[str], set[str]]]] = {
    "README.md, Where things are": (README, readme_table),
    "docs/architecture.md, Where the code is": (ARCHITECTURE, architecture_tree),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_package_is_in_the_table(table: str) -> None:
    path, read = TABLES[table]
    missing = sorted(packages() - read(path.read_text(encoding="utf-8")))
    assert missing == [], f"{table} does not name these packages: {missing}"


@pytest.mark.parametrize("table", sorted(TABLES))
def test_the_table_names_only_what_exists(table: str) -> None:
    path, read = TABLES[table]
    named = read(path.read_text(encoding="utf-8"))
    gone = sorted(p for p in named if not ((ROOT / p).is_dir() if p.endswith("/") else (ROOT / p).is_file()))
    assert gone == [], f"{table} names what is not in the tree: {gone}"


def test_the_parts_table_names_every_top_level_package_and_no_other() -> None:
    top = {p.split("/")[1] for p in packages()}
    parts = architecture_parts(ARCHITECTURE.read_text(encoding="utf-8"))
    assert sorted(top - parts) == [], "docs/architecture.md's parts table misses these packages"
    assert sorted(parts - top) == [], "docs/architecture.md's parts table names packages that are gone"


def test_the_tree_reader_follows_nesting() -> None:
    tree = "\n".join(["", "## Where the code is", "", "```", "hub_rtc/", "├── a/   x", "│   └── b/   y",
                      "│                z", "└── c.py", "```", "## Next", "├── d/"])
    assert architecture_tree(tree) == {"hub_rtc/a/", "hub_rtc/a/b/", "hub_rtc/c.py"}
