"""Bounded work per update: the pre-scanner, the size and nesting limits.

pycrdt sizes buffers from the counts an update declares; the fuzz-found inputs below
(random mutations of small valid updates, run through ``Doc().apply_update`` in a
child process with a memory limit) make it ask the allocator for gigabytes or more.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pycrdt import Array, Doc, Map, Text

from hub_rtc.guard import DocumentGuard, Rights
from hub_rtc.guard._scan import ContentKind, ScanError, scan, strip
from hub_rtc.guard._updates import decode_state_vector
from hub_rtc.guard.rights import Limits
from tests.unit.test_guard import EDITOR, FULL, VIEWER, cell, content, edit, notebook_net

HUGE = "ffffffff0f"  # 2**32 - 1 as a varuint
ONE_ITEM = "01010500"  # one client, one struct, client 5, clock 0
IN_ROOT_M = "0101" + "6d"  # parent: the root named "m"

#: updates of a few bytes that declare billions of entries
ALLOCATING = {
    "values in an item": ONE_ITEM + "08" + IN_ROOT_M + HUGE + "7e",
    "JSON strings in an item": ONE_ITEM + "02" + IN_ROOT_M + HUGE,
    "array value length": ONE_ITEM + "08" + IN_ROOT_M + "0175" + HUGE,
    "object value length": ONE_ITEM + "08" + IN_ROOT_M + "0176" + HUGE,
    "structs of a client": "01" + HUGE + "0500",
    "clients": HUGE + "010500",
    # found by the fuzzer
    "fuzz 4 bytes": "a4898f0b",
    "fuzz 5 bytes": "e8bde8cf2a",
    "fuzz 6 bytes": "9ddd92906fa3",
    "fuzz 9 bytes": "c497fdb9482a4f398b",
    "fuzz 12 bytes": "6cf4f8e2ba5fc6e5e7577d37",
    "fuzz 18 bytes": "88cb12e8a590bfcbc3e06c606f64812ae839",
    "fuzz 24 bytes": "b5eb8485a2c305000101016101000301f1b5eb8485a20004",
}

_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from pycrdt import Doc
out = {}
for name, data in json.loads(sys.stdin.read()).items():
    try:
        Doc().apply_update(bytes.fromhex(data))
        out[name] = "decoded"
    except BaseException as e:
        out[name] = str(e)
print(json.dumps(out))
"""


def test_pycrdt_asks_for_huge_allocations_on_these_inputs() -> None:
    """The hazard is real: under a 1 GiB address-space limit each one fails to allocate."""
    result = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(ALLOCATING),
                            capture_output=True, text=True, timeout=60, check=True)
    errors = json.loads(result.stdout)
    assert {name: "allocat" in error for name, error in errors.items()} == dict.fromkeys(ALLOCATING, True)


@pytest.mark.parametrize("name", sorted(ALLOCATING))
def test_the_guard_refuses_them_before_pycrdt_decodes(name: str) -> None:
    update = bytes.fromhex(ALLOCATING[name])
    with pytest.raises(ScanError, match="exceeds the update"):
        scan(update)
    net = notebook_net()
    before = net.guard.state()
    for rights in (FULL, EDITOR, VIEWER):
        verdict = net.guard.check(update, rights)
        assert verdict.pending and verdict.forward is None and not verdict.limit
        assert "exceeds the update" in verdict.reason
    assert not net.guard.stale and net.guard.state() == before


def some_updates() -> list[bytes]:
    """Updates with every content kind pycrdt writes."""
    doc: Doc = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=Text)
    text.insert(0, "héllo wörld ✓ 𝄞")
    text.format(1, 4, {"bold": True})
    text.insert(3, "x", {"italic": {"deep": [1, 2.5, None, "s"]}})
    text.insert_embed(2, {"image": "data"})
    del text[0:2]
    root = doc.get("m", type=Map)
    root["n"] = Map({"a": Array([1, Text("t"), Map({"b": b"\x00\x01"})]), "big": 2**40, "f": 1.5})
    root["n"]["a"].append(True)
    del root["n"]["a"][0]
    root["x"] = "y"
    root["x"] = "z"
    updates.append(doc.get_update())
    return updates


def test_the_scanner_reads_what_pycrdt_writes() -> None:
    updates = some_updates()
    for update in updates:
        scan(update)
    full = updates[-1]
    fresh: Doc = Doc()
    fresh.apply_update(full)
    state = decode_state_vector(fresh.get_state())
    for client, start, structs in scan(full).structs:
        assert start + sum(struct.length for struct in structs) == state[client]
    assert {ContentKind.FORMAT, ContentKind.EMBED, ContentKind.STRING, ContentKind.ANY,
            ContentKind.TYPE} <= scan(full).kinds


@pytest.mark.parametrize("roots", [[], ["t", "m"]], ids=["new roots", "known roots"])
def test_strip_keeps_the_clocks_and_drops_every_byte_of_content(roots: list[str]) -> None:
    full = some_updates()[-1]
    bare = strip(full, scan(full), roots, lambda key: False)
    one: Doc = Doc()
    two: Doc = Doc()
    one.apply_update(full)
    two.apply_update(bare)
    assert decode_state_vector(two.get_state()) == decode_state_vector(one.get_state())
    for word in (b"rld", b"bold", b"italic", b"image", b"deep", b"big"):
        assert word in full and word not in bare and word not in two.get_update()
    # a known root keeps its (content-less) items; a new map key is a bare range
    assert ("t" in two.keys()) == bool(roots) and "m" not in two.keys()


@pytest.mark.parametrize(("update", "why"), [
    (b"\x01\x01\x05\x00\x08\x01\x01m\x01\x75\x01\x75\x01\x7e", "nested deeper than 2"),
    (b"\x01\x01\x05\x00\x0c\x01\x01m\x00", "unsupported content kind 12"),
    (b"\x01\x01\x05\x00\x07\x01\x01m\x08", "unsupported shared type 8"),
    (b"\x00\x00\x00", "trailing bytes"),
    (b"\x01\x01\x05\x00\x04\x01\x01m\x02\xff\xfe", "not UTF-8"),
    (b"\x01\x01\x05\x00\x08\x01\x01m\x01\x70", "unknown value tag"),
    (b"\x01\x01\x05\xff\xff\xff\xff\x0f\x00\x02\x00", "beyond 32 bits"),
])
def test_the_scanner_refuses_malformed_and_deep_updates(update: bytes, why: str) -> None:
    with pytest.raises(ScanError, match=why):
        scan(update, max_depth=2)


def test_an_update_larger_than_the_limit_is_refused_unread() -> None:
    net = notebook_net()
    net.guard.limits = Limits(max_update=100)
    update = edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "x" * 200))
    verdict = net.guard.check(update, FULL)
    assert verdict.pending and verdict.limit and "exceeds 100" in verdict.reason
    assert not net.guard.stale


def nest(doc: Doc, levels: int) -> None:
    with doc.transaction():
        level = cell(doc, "free")["metadata"]
        for _ in range(levels):
            level["deeper"] = Map()
            level = level["deeper"]


@pytest.mark.parametrize("rights", [FULL, EDITOR], ids=["owner", "editor"])
def test_deep_shared_types_are_refused_and_the_guard_keeps_working(rights: Rights) -> None:
    """600 nested maps in one's own cell: refused whole (the mirror is rebuilt)."""
    net = notebook_net()
    before = content(net.room_doc)
    verdict = net.guard.check(edit(net.sender, lambda d: nest(d, 600)), rights)
    assert verdict.pending and verdict.limit and "nested deeper than 32" in verdict.reason
    assert verdict.forward is None and net.guard.stale
    net.guard.reset(net.room_doc.get_update())
    assert content(net.guard.doc) == before
    # the sender reconnects with a fresh replica and works again
    net.sender = net.client()
    ok = net.send(edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "# ok\n")), rights)
    assert ok.accepted


def test_depth_built_one_level_per_update_is_refused_at_the_limit() -> None:
    net = notebook_net()
    net.guard.limits = Limits(max_depth=8)
    verdicts = []
    for _ in range(8):
        update = edit(net.sender, lambda d: nest_deepest(d))
        verdicts.append(net.send(update, EDITOR))
        if verdicts[-1].pending:
            break
    # cells (1) > cell (2) > metadata (3) > deeper (4) ... refused once past 8
    assert [v.accepted for v in verdicts] == [True] * 5 + [False]
    assert verdicts[-1].limit


def nest_deepest(doc: Doc) -> None:
    level = cell(doc, "free")["metadata"]
    while "deeper" in level:
        level = level["deeper"]
    level["deeper"] = Map()


def test_a_document_may_not_grow_past_its_limit() -> None:
    net = notebook_net()
    size = len(net.room_doc.get_update())
    net.guard = DocumentGuard(net.room_doc.get_update(), limits=Limits(max_document=size + 1000))
    typed = edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "a" * 500))
    assert net.send(typed, EDITOR).accepted
    more = edit(net.sender, lambda d: cell(d, "free")["source"].insert(0, "b" * 600))
    verdict = net.guard.check(more, EDITOR)
    assert verdict.pending and verdict.limit and "would exceed" in verdict.reason
