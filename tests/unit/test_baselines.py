"""``/servers/baselines`` through the manager: the last authorized content of ruled
cells, readable and writable only by the server hosting the session.  Real databases."""

from __future__ import annotations

import pytest

from hub_rtc.manager import Manager
from hub_rtc.manager.baselines import MAX_CELL_BYTES
from hub_rtc.manager.errors import Forbidden, Invalid

from .conftest import actor
from .test_hosting import server_token

ALICE = actor("alice", "cs101")
CELL = {"id": "c1", "cell_type": "code", "source": "# c1\n", "metadata": {}, "outputs": [],
        "execution_count": None}


async def lab(manager: Manager) -> str:
    """alice's server hosts session lab1 (bob edits); c1 of nb.ipynb is locked."""
    s = await manager.sessions.create(ALICE, {"title": "lab", "host": "owner", "root": "lab1",
                                              "members": [{"user": "bob", "role": "editor"}]})
    await manager.cells.put(ALICE, s["id"], {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"})
    return str(s["id"])


def keep(cells: dict, path: str = "lab1/nb.ipynb") -> dict:
    return {"server_name": "", "path": path, "cells": cells}


async def test_a_server_keeps_and_reads_its_ruled_cells(manager: Manager) -> None:
    sid = await lab(manager)
    server = server_token("alice")
    empty = await manager.baselines.read(server, {"server_name": "", "path": "lab1/nb.ipynb"})
    assert empty == {"session": sid, "path": "nb.ipynb", "ruled": ["c1"], "cells": {}}
    kept = await manager.baselines.record(server, keep({
        "c1": {"cell": CELL, "after": "c0"}, "free": {"cell": {**CELL, "id": "free"}}}))
    assert kept == {"session": sid, "recorded": ["c1"]}  # no rule on "free": not kept
    found = await manager.baselines.read(server, {"server_name": "", "path": "lab1/nb.ipynb"})
    assert found["cells"]["c1"]["cell"] == CELL and found["cells"]["c1"]["after"] == "c0"
    assert found["cells"]["c1"]["present"] is True and "free" not in found["cells"]
    await manager.baselines.record(server, keep({"c1": {"cell": {}, "present": False}}))
    found = await manager.baselines.read(server, {"server_name": "", "path": "lab1/nb.ipynb"})
    assert found["cells"]["c1"]["present"] is False


async def test_only_the_hosting_server_and_only_ruled_notebooks(manager: Manager) -> None:
    await lab(manager)
    with pytest.raises(Forbidden):  # a user's own token is no server's
        await manager.baselines.record(ALICE, keep({"c1": {"cell": CELL}}))
    other = await manager.baselines.record(server_token("bob"), keep({"c1": {"cell": CELL}}))
    assert other == {"session": None, "recorded": []}  # bob's server hosts no such session
    outside = await manager.baselines.read(server_token("alice"), {"server_name": "", "path": "nb.ipynb"})
    assert outside["session"] is None and outside["ruled"] == []
    with pytest.raises(Invalid):
        await manager.baselines.read(server_token("alice"), {"server_name": "", "path": "../x"})


async def test_a_baseline_has_a_size_limit(manager: Manager) -> None:
    await lab(manager)
    huge = {**CELL, "source": "x" * (MAX_CELL_BYTES + 1)}
    with pytest.raises(Invalid, match="at most"):
        await manager.baselines.record(server_token("alice"), keep({"c1": {"cell": huge}}))


async def test_baselines_go_with_their_session(manager: Manager) -> None:
    sid = await lab(manager)
    await manager.baselines.record(server_token("alice"), keep({"c1": {"cell": CELL}}))
    await manager.sessions.end(ALICE, sid)
    gone = await manager.baselines.read(server_token("alice"), {"server_name": "", "path": "lab1/nb.ipynb"})
    assert gone["session"] is None


async def test_a_new_rule_starts_without_the_old_rules_baseline(manager: Manager) -> None:
    sid = await lab(manager)
    server = server_token("alice")
    await manager.baselines.record(server, keep({"c1": {"cell": CELL}}))
    await manager.cells.delete(ALICE, sid, "nb.ipynb", "c1")
    await manager.cells.put(ALICE, sid, {"path": "nb.ipynb", "cell_id": "c1", "rule": "locked"})
    found = await manager.baselines.read(server, {"server_name": "", "path": "lab1/nb.ipynb"})
    assert found["ruled"] == ["c1"] and found["cells"] == {}
