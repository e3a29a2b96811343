"""Who may be named in a session, with which role, and how many; records read as types."""

from __future__ import annotations

import pytest

from hub_rtc.decision import CellRuleView, GrantView, grants
from hub_rtc.policy import RTCPolicy


def test_grantable_roles_follow_policy_but_not_for_admins() -> None:
    policy = RTCPolicy(grantable_roles=["editor", "viewer"]).decision_view()
    assert grants.grantable_roles(False, policy) == ["viewer", "editor"]  # the table's order
    assert grants.grantable_roles(True, policy) == ["viewer", "runner", "editor", "manager"]
    assert grants.role_refusal("editor", False, policy) is None
    assert grants.role_refusal("manager", True, policy) is None
    # the allowed roles in the order the admin wrote them
    assert grants.role_refusal("manager", False, policy) == (
        "policy: role 'manager' may not be granted (allowed: editor, viewer)")
    nothing = RTCPolicy(grantable_roles=[]).decision_view()
    assert grants.role_refusal("viewer", False, nothing) == (
        "policy: role 'viewer' may not be granted (allowed: none)")


def test_member_limit_and_the_owner() -> None:
    policy = RTCPolicy(max_members_per_session=2).decision_view()
    assert grants.members_refusal(2, policy) is None
    assert grants.members_refusal(3, policy) == "policy: a session may have at most 2 members"
    assert grants.owner_grant_refusal("user", "olive", "olive") == (
        "olive owns the session and already has every right")
    assert grants.owner_grant_refusal("team", "olive", "olive") is None  # a team named like her
    assert grants.owner_grant_refusal("user", "ed", "olive") is None


def test_writers_of_a_cell_rule() -> None:
    assert grants.writers_refusal("locked", 0) is None
    assert grants.writers_refusal("locked", 1) == (
        "writers: a locked cell has no writers; use rule 'assigned'")
    assert grants.writers_refusal("assigned", 2) is None
    assert grants.writers_refusal("assigned", 0) == (
        "writers: an assigned cell needs at least one user or team")


def test_records_are_read_into_the_decisions_types() -> None:
    assert GrantView.from_record("team", "bees", "runner", None) == GrantView("team", "bees", "runner")
    rule = CellRuleView.from_record("assigned", [("user", "ed"), ("team", "bees")])
    assert rule == CellRuleView("assigned", frozenset({("user", "ed"), ("team", "bees")}))
    # the records hold only what the API let in: anything else is a broken record
    for broken in (lambda: GrantView.from_record("robot", "r2", "editor", None),
                   lambda: GrantView.from_record("user", "ed", "admin", None),
                   lambda: CellRuleView.from_record("hidden"),
                   lambda: CellRuleView.from_record("assigned", [("group", "cs101")])):
        with pytest.raises(ValueError):
            broken()
