"""``/servers/baselines`` through the manager: the last authorized content of ruled
cells, readable and writable only by the server hosting the session.  Real databases."""

from __future__ import annotations

import pytest

from hub_rtc.manager import Manager
from hub_rtc.manager.errors import Forbidden, Invalid
from hub_rtc.manager.hosting.baselines import MAX_CELL_BYTES
from tests.unit.conftest import actor
from tests.unit.test_hosting import server_token

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
    assert empty == {"session": sid, "path": "nb.ipynb", "ruled": ["c1"], "cells": {},
                     "file_may": "write", "notebook": None}
    kept = await manager.baselines.record(server, keep({
        "c1": {"cell": CELL, "after": "c0"}, "free": {"cell": {**CELL, "id": "free"}}}))
    # no rule on "free", nobody runs code without editing: not kept
    assert kept == {"session": sid, "recorded": ["c1"], "file_may": "write", "notebook": "none"}
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
    assert other["session"] is None and other["recorded"] == []  # bob's server hosts no such session
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


# -- where someone may run code but not edit: the whole notebook -------------------------

RAN = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]


def code(cell_id: str, source: str = "", outputs: list | None = None) -> dict:
    return {"id": cell_id, "cell_type": "code", "source": source or f"# {cell_id}\n",
            "metadata": {}, "outputs": outputs or [], "execution_count": 3 if outputs else None}


def shape(*order: str, metadata: dict | None = None) -> dict:
    return {"metadata": metadata or {"kernelspec": {"name": "python3"}}, "nbformat": 4,
            "nbformat_minor": 5, "order": list(order)}


async def read(manager: Manager) -> dict:
    return await manager.baselines.read(server_token("alice"), {"server_name": "",
                                                               "path": "lab1/nb.ipynb"})


async def with_runner(manager: Manager) -> str:
    sid = await lab(manager)
    await manager.members.put(ALICE, sid, "user", "carol", {"role": "runner"})
    return sid


async def test_with_a_runner_every_cell_is_kept_without_outputs(manager: Manager) -> None:
    sid = await with_runner(manager)
    first = await read(manager)
    assert first["file_may"] == "run" and first["notebook"] is None  # nothing kept yet
    kept = await manager.baselines.record(server_token("alice"), {**keep({
        "c1": {"cell": code("c1", outputs=RAN), "after": None},
        "free": {"cell": code("free", outputs=RAN)}}), "notebook": shape("c1", "free")})
    assert kept == {"session": sid, "recorded": ["c1", "free"], "file_may": "run", "notebook": "kept"}
    found = await read(manager)
    assert found["notebook"] == {"metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
                                 "nbformat_minor": 5, "order": ["c1", "free"], "cells": [
                                     {k: v for k, v in code("c1").items()
                                      if k not in ("outputs", "execution_count")},
                                     {k: v for k, v in code("free").items()
                                      if k not in ("outputs", "execution_count")}]}
    # a ruled cell's outputs are still kept as its own baseline: the file may not change them
    assert found["cells"]["c1"]["cell"]["outputs"] == RAN


async def test_a_cell_deleted_in_the_room_goes_and_half_a_notebook_is_none(manager: Manager) -> None:
    await with_runner(manager)
    server = server_token("alice")
    await manager.baselines.record(server, {**keep({"a": {"cell": code("a")}, "b": {"cell": code("b")}}),
                                            "notebook": shape("a", "b")})
    await manager.baselines.record(server, {**keep({"a": {"cell": {}, "present": False}}),
                                            "notebook": shape("b")})
    assert [c["id"] for c in (await read(manager))["notebook"]["cells"]] == ["b"]
    # the shape names a cell nobody sent: never half a notebook
    await manager.baselines.record(server, {**keep({}), "notebook": shape("b", "nowhere")})
    assert (await read(manager))["notebook"] is None


async def test_without_a_runner_the_whole_notebook_is_forgotten(manager: Manager) -> None:
    """A baseline kept while someone was a runner, then left while nobody was, would
    later put back whatever writers changed meanwhile."""
    sid = await with_runner(manager)
    server = server_token("alice")
    await manager.baselines.record(server, {**keep({"c1": {"cell": code("c1")},
                                                    "free": {"cell": code("free")}}),
                                            "notebook": shape("c1", "free")})
    await manager.members.put(ALICE, sid, "user", "carol", {"role": "editor"})
    now = await read(manager)
    assert now["file_may"] == "write" and now["notebook"] is None
    assert now["cells"]["c1"]["cell"] == code("c1")  # ruled cells are kept whoever runs code
    # a server still believing in a runner sends the rest: not kept
    sent = await manager.baselines.record(server, {**keep({"free": {"cell": code("free")}}),
                                                   "notebook": shape("c1", "free")})
    assert sent["recorded"] == [] and sent["notebook"] == "none"
    await manager.members.put(ALICE, sid, "user", "carol", {"role": "runner"})
    assert (await read(manager))["notebook"] is None  # nothing stale comes back


async def test_a_team_or_group_of_runners_counts(manager: Manager) -> None:
    sid = await lab(manager)
    await manager.members.put(ALICE, sid, "group", "cs101", {"role": "runner"})
    assert (await read(manager))["file_may"] == "run"


async def test_a_whole_notebook_above_the_limit_is_not_kept(manager: Manager,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from hub_rtc.manager.hosting import baselines

    monkeypatch.setattr(baselines, "MAX_NOTEBOOK_BYTES", 2000)
    await with_runner(manager)
    server = server_token("alice")
    big = {f"c{i}": {"cell": code(f"c{i}", "x" * 300)} for i in range(2, 10)}
    sent = await manager.baselines.record(server, {**keep({"c1": {"cell": code("c1")}, **big}),
                                                   "notebook": shape("c1", *big)})
    assert sent["notebook"] == "too_large"
    found = await read(manager)
    assert found["notebook"] is None and "c1" in found["cells"]  # the ruled cell stays kept
    # outputs do not count: they are never kept for unruled cells
    huge = {"c2": {"cell": code("c2", outputs=[{**RAN[0], "text": "x" * 5000}])}}
    sent = await manager.baselines.record(server, {**keep(huge), "notebook": shape("c1", "c2")})
    assert sent["notebook"] == "kept" and (await read(manager))["notebook"] is not None


def test_the_server_and_the_service_share_the_limits() -> None:
    from hub_rtc.manager.hosting import baselines
    from hub_rtc.singleuser import disk

    assert (disk.MAX_CELL_BYTES, disk.MAX_NOTEBOOK_BYTES) == (baselines.MAX_CELL_BYTES,
                                                              baselines.MAX_NOTEBOOK_BYTES)
