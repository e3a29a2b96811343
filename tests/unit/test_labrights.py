"""What the JupyterLab extension is told (hub_rtc.singleuser.labrights): the reader's own
rights in words, and the cells they may not edit; and the long poll's wake-up."""

from __future__ import annotations

import asyncio
import logging

from hub_rtc.decision.access import Access
from hub_rtc.singleuser.cache import AccessCache
from hub_rtc.singleuser.gate import Gate
from hub_rtc.singleuser.labrights import rights_json


def test_an_editor_is_told_their_role_and_the_cells_they_may_not_edit() -> None:
    access = Access(read=True, write=True, execute=True, role="editor", session_id="s1",
                    protected=frozenset({"c2", "c1"}))
    said = rights_json(access, owner=False, version=3)
    assert (said["role"], said["label"], said["write"], said["protected"]) == (
        "editor", "editor", True, ["c1", "c2"])
    assert "except those locked" in said["says"] and said["version"] == 3


def test_a_viewer_an_observer_and_the_owner() -> None:
    viewer = rights_json(Access(read=True, role="viewer"), owner=False, version=0)
    assert (viewer["label"], viewer["write"], viewer["execute"]) == ("viewer", False, False)
    watching = rights_json(Access(read=True, role="observer"), owner=False, version=0)
    assert watching["label"] == "watching read-only" and not watching["write"]
    owner = rights_json(Access(), owner=True, version=0)
    assert (owner["role"], owner["write"], owner["protected"]) == ("owner", True, [])
    nobody = rights_json(Access.none("not a member"), owner=False, version=0)
    assert (nobody["role"], nobody["read"], nobody["says"]) == ("none", False, "not a member")


async def test_a_long_poll_wakes_when_a_push_moves_the_epoch() -> None:
    gate = Gate(None, "olive", AccessCache(5.0), logging.getLogger("test"))
    assert await gate.changed_since(gate.epoch, 0.05) is False  # nothing happened
    waiting = asyncio.ensure_future(gate.changed_since(gate.epoch, 5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await gate.invalidate("s1", ["ed"])
    assert await asyncio.wait_for(waiting, 1) is True
    assert await gate.changed_since(gate.epoch - 1, 5) is True  # already past: at once
