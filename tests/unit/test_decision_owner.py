"""The server's owner may do everything on their own server: the one rule, pure."""

from __future__ import annotations

from hub_rtc.decision import Access, owner_access, owns_server
from hub_rtc.decision.access import relayed
from hub_rtc.decision.owner import OWNER


def test_the_owner_is_the_server_user_signed_in_themselves() -> None:
    assert owns_server("olive", "olive")
    assert not owns_server("ed", "olive")
    # the hub_rtc service acting for the owner (relay, document API): no shortcut
    assert not owns_server("olive", "olive", via_service=True)


def test_the_owner_gets_everything_whatever_the_answer_says() -> None:
    narrow = Access(read=True, role="viewer", session_id="s1", root="lab1",
                    protected=frozenset({"c1"}), identity={"id": "u-1", "name": "olive"},
                    expose_identity=True, reason="role viewer in session s1")
    mine = owner_access(narrow)
    assert (mine.read, mine.write, mine.execute, mine.terminal, mine.manage) == (True,) * 5
    assert mine.role == "owner" and mine.server_owner and mine.reason == "the server's owner"
    # no session folder, no cell rule narrows the owner ...
    assert mine.root == "" and mine.protected == frozenset() and mine.rights().unrestricted
    # ... and from the answer only who they are and which session the path is in
    assert mine.session_id == "s1" and mine.identity == {"id": "u-1", "name": "olive"}
    assert mine.expose_identity


def test_the_owner_keeps_everything_when_the_service_cannot_be_asked() -> None:
    mine = owner_access(Access.none("the hub_rtc service could not be reached"))
    assert mine == OWNER and mine.write and mine.terminal and mine.identity == {}


def test_the_service_acting_for_a_user_gets_what_sessions_give_and_no_more() -> None:
    member = Access(read=True, write=True, execute=True, terminal=True, manage=True,
                    session_id="s1", server_owner=True)
    got = relayed(member, read_only=False)
    assert (got.read, got.write, got.execute, got.terminal, got.server_owner) == (
        True, True, True, False, False)
    reading = relayed(member, read_only=True)
    assert (reading.read, reading.write, reading.execute, reading.manage) == (True, False, False, False)
    assert not relayed(Access(read=True, write=True), read_only=False).read  # outside every session
