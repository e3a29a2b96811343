"""What one user may do on one shared server (the ``/servers/rights`` rules), pure."""

from __future__ import annotations

from datetime import UTC, datetime

from hub_rtc.decision import (
    ACTIONS,
    CellRuleView,
    GrantView,
    Placed,
    PolicyView,
    Principal,
    ServerRights,
    SessionView,
    server_rights,
    strongest_session,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OPEN = PolicyView(collaborators_may_open_terminals=True)
RULES = {("nb.ipynb", "locked"): CellRuleView("locked"),
         ("nb.ipynb", "mine"): CellRuleView("assigned", frozenset({("user", "ed")})),
         ("nb.ipynb", "theirs"): CellRuleView("assigned", frozenset({("user", "max")}))}
LAB = SessionView("s1", "olive", course="cs101", cell_rules=RULES, grants=(
    GrantView("user", "ed", "editor"), GrantView("user", "vic", "viewer")))
ED, VIC = Principal("ed"), Principal("vic")
IDA = Principal("ida", watches=frozenset({"cs101"}))


def allowed(rights: ServerRights) -> tuple[bool, ...]:
    return tuple(rights.allowed[a] for a in ACTIONS)


def test_no_session_there_means_nothing() -> None:
    anywhere = server_rights(ED, "olive", None, None, OPEN, NOW)
    assert allowed(anywhere) == (False,) * 5 and anywhere.role is None
    assert anywhere.reason == "ed is not a member of any session on this server"
    there = server_rights(ED, "olive", "x/nb.ipynb", None, OPEN, NOW)
    assert there.reason == "no session on this server holds 'x/nb.ipynb'"


def test_each_action_is_the_decisions() -> None:
    rights = server_rights(ED, "rtc-s1", "nb.ipynb", Placed(LAB, "account", "nb.ipynb"), OPEN, NOW)
    assert rights.role == "editor" and rights.reason == "role editor in session s1"
    assert allowed(rights) == (True, True, True, False, True)  # read write execute manage terminal
    assert rights.protected_cells == ("locked", "theirs")  # never "mine": it is assigned to ed
    viewer = server_rights(VIC, "rtc-s1", "nb.ipynb", Placed(LAB, "account", "nb.ipynb"), OPEN, NOW)
    assert allowed(viewer) == (True, False, False, False, False)
    assert viewer.protected_cells == ("locked", "mine", "theirs")  # a viewer changes no cell


def test_on_the_owners_server_a_collaborators_terminal_stays_closed() -> None:
    rights = server_rights(ED, "olive", "lab/nb.ipynb", Placed(LAB, "owner", "nb.ipynb"), OPEN, NOW)
    assert rights.allowed["write"] and not rights.allowed["terminal"]


def test_an_observer_gets_the_server_only_once_joined() -> None:
    outside = server_rights(IDA, "rtc-s1", None, Placed(LAB, "account"), OPEN, NOW)
    assert outside.role == "observer" and allowed(outside) == (False,) * 5
    assert outside.reason == ("ida watches session s1's course but has not joined it;"
                              " join it read-only from the dashboard")
    joined = server_rights(IDA, "rtc-s1", None, Placed(LAB, "account", joined=True), OPEN, NOW)
    assert allowed(joined) == (True, False, False, False, False)


def test_the_servers_owner_may_do_everything() -> None:
    alone = server_rights(Principal("olive"), "olive", "elsewhere.txt", None, PolicyView(), NOW)
    assert allowed(alone) == (True,) * 5 and alone.role == "owner"
    assert alone.reason == "olive owns this server"
    # a viewer in a session on their own server is still its owner; the role says which grant
    guest = SessionView("s2", "ana", grants=(GrantView("user", "olive", "viewer"),), cell_rules=RULES)
    there = server_rights(Principal("olive"), "olive", "nb.ipynb", Placed(guest, "owner", "nb.ipynb"),
                          PolicyView(), NOW)
    assert allowed(there) == (True,) * 5 and there.role == "viewer"


def test_the_strongest_session_answers_for_anywhere() -> None:
    other = SessionView("s0", "olive", grants=(GrantView("user", "vic", "editor"),))
    same = SessionView("s3", "olive", grants=(GrantView("user", "vic", "editor"),))
    assert strongest_session(VIC, [LAB, other, same], OPEN, NOW) is other  # the first of equals
    assert strongest_session(Principal("zed"), [LAB, other], OPEN, NOW) is None
