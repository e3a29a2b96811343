"""The pure decision against the hand-written table in tests/decision_cases.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub_rtc.decision import (
    CellRuleView,
    GrantView,
    PolicyView,
    Principal,
    Resource,
    SessionView,
    decide,
)
from hub_rtc.policy import RTCPolicy
from tests import decision_cases as W

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SID = "s1"


def world(**policy_traits: object) -> tuple[SessionView, PolicyView]:
    grants = [GrantView("user", u, r) for u, r in W.USER_GRANTS.items()]
    grants += [
        GrantView("team", W.TEAM[0], W.TEAM[2]),
        GrantView("group", W.GROUP[0], W.GROUP[2]),
        GrantView("user", W.EXPIRED[0], W.EXPIRED[1], expires_at=NOW - timedelta(seconds=1)),
    ]
    rules = {
        (W.NOTEBOOK, W.CELLS["locked"]): CellRuleView("locked"),
        (W.NOTEBOOK, W.CELLS["assigned"]): CellRuleView("assigned", frozenset(W.ASSIGNED_TO)),
    }
    session = SessionView(SID, W.OWNER, course=W.COURSE, grants=tuple(grants), cell_rules=rules)
    policy = RTCPolicy(**policy_traits)
    return session, policy.decision_view()


def principal(name: str) -> Principal:
    teams = frozenset({W.TEAM[0]}) if name in W.TEAM[1] else frozenset()
    groups = frozenset({W.GROUP[0]}) if name in W.GROUP[1] else frozenset()
    policy = RTCPolicy(instructor_groups={W.WATCHER[1]: [W.COURSE]})
    if name == W.WATCHER[0]:
        groups = frozenset({W.WATCHER[1]})
    return Principal(name, groups, teams, policy.watched_groups(groups))


def resource(case: W.Case) -> Resource:
    if case.cell is None:
        return Resource(SID)
    return Resource(SID, W.NOTEBOOK, W.CELLS[case.cell])


@pytest.mark.parametrize("case", W.cases(), ids=lambda c: c.id)
def test_default_policy(case: W.Case) -> None:
    session, policy = world()
    decision = decide(principal(case.user), case.action, resource(case), session, policy, NOW)
    assert decision.allowed is case.allowed, decision.reason
    assert decision.reason


@pytest.mark.parametrize("case", W.other_policy_cases(), ids=lambda c: c.id)
def test_other_policy(case: W.Case) -> None:
    session, policy = world(**W.OTHER_POLICY)
    decision = decide(principal(case.user), case.action, resource(case), session, policy, NOW)
    assert decision.allowed is case.allowed, decision.reason


def test_ended_session_refuses_even_the_owner() -> None:
    session, policy = world()
    ended = replace(session, state="ended")
    decision = decide(principal(W.OWNER), "read", Resource(SID), ended, policy, NOW)
    assert not decision.allowed
    assert "ended" in decision.reason


def test_expired_session_refuses_everyone() -> None:
    session, policy = world()
    expired = replace(session, expires_at=NOW)
    for user in (W.OWNER, "eddie"):
        decision = decide(principal(user), "read", Resource(SID), expired, policy, NOW)
        assert not decision.allowed and "expired" in decision.reason


def test_grant_still_valid_until_its_expiry() -> None:
    session, policy = world()
    later = replace(session, grants=(GrantView("user", "exp", "editor", NOW + timedelta(minutes=1)),))
    assert decide(principal("exp"), "write", Resource(SID), later, policy, NOW).allowed
    after = NOW + timedelta(minutes=1)
    assert not decide(principal("exp"), "write", Resource(SID), later, policy, after).allowed


def test_strongest_grant_wins() -> None:
    session, policy = world()
    grants = (GrantView("user", "tess", "viewer"), GrantView("team", "tigers", "manager"))
    both = replace(session, grants=grants)
    decision = decide(principal("tess"), "manage", Resource(SID), both, policy, NOW)
    assert decision.allowed and decision.role == "manager"


def test_unknown_action_and_wrong_session_are_refused() -> None:
    session, policy = world()
    assert not decide(principal(W.OWNER), "delete", Resource(SID), session, policy, NOW).allowed
    assert not decide(principal(W.OWNER), "read", Resource("other"), session, policy, NOW).allowed
    assert not decide(principal(W.OWNER), "read", Resource(SID), None, policy, NOW).allowed


def test_cell_rule_on_another_notebook_does_not_apply() -> None:
    session, policy = world()
    elsewhere = Resource(SID, "other.ipynb", W.CELLS["locked"])
    assert decide(principal("eddie"), "write", elsewhere, session, policy, NOW).allowed


def test_the_policy_view_is_kept_until_a_trait_is_set() -> None:
    """The decision reads a copy made once (not a dozen traits per request), and a
    trait set later (an admin's reloaded config, a test) is in the next copy."""
    policy = RTCPolicy()
    first = policy.decision_view()
    assert policy.decision_view() is first
    policy.max_members_per_session = 3
    policy.creator_groups = {"staff"}
    later = policy.decision_view()
    assert later is not first
    assert later.max_members_per_session == 3 and later.creator_groups == frozenset({"staff"})
