"""Someone's standing in one session, as the service's operations read it."""

from __future__ import annotations

import pytest

from hub_rtc.decision import Principal, Role, Standing, may_manage, sees_activity_summary

ANA = Principal("ana")


@pytest.mark.parametrize(("role", "admin", "sees", "manages", "ends", "observes"), [
    (None, False, False, False, False, False),  # outside the session
    (None, True, True, True, True, False),  # an rtc admin outside it
    ("observer", False, True, False, False, True),
    ("viewer", False, True, False, False, False),
    ("editor", False, True, False, False, False),
    ("manager", False, True, True, False, False),  # managers change it, only owners end it
    ("owner", False, True, True, True, False),
])
def test_standing(role: Role | None, admin: bool, sees: bool, manages: bool, ends: bool,
                  observes: bool) -> None:
    standing = Standing(ANA, role, admin)
    assert (standing.sees, standing.can_manage, standing.may_end, standing.is_observer) == (
        sees, manages, ends, observes)
    assert standing.is_owner is (role == "owner")
    assert may_manage(role, admin) is manages
    # the session page's activity summary: managers, owners, admins and watching instructors
    assert sees_activity_summary(role, admin) is (manages or observes)


@pytest.mark.parametrize(("role", "joined", "opens"), [
    (None, True, False), ("viewer", False, True), ("owner", False, True),
    ("observer", False, False), ("observer", True, True),  # an instructor opens once joined
])
def test_who_may_open_the_documents(role: Role | None, joined: bool, opens: bool) -> None:
    assert Standing(ANA, role, False).may_open(joined) is opens


@pytest.mark.parametrize(("role", "scope", "reads"), [
    ("editor", False, False), ("manager", False, True), ("observer", True, True), (None, True, True),
])
def test_who_may_read_activity(role: Role | None, scope: bool, reads: bool) -> None:
    assert Standing(ANA, role, False).may_read_activity(scope) is reads
