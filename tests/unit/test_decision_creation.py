"""Who may create a session, where, for how long and how many: pure rules on policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub_rtc.decision import creation
from hub_rtc.decision.model import PolicyView
from hub_rtc.policy import RTCPolicy

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
NOBODY = frozenset[str]()


def view(**traits: object) -> PolicyView:
    return RTCPolicy(**traits).decision_view()


def test_policy_reaches_the_decision_as_configured() -> None:
    policy = view(allow_all_to_create=False, creator_users={"ana"}, creator_groups={"staff"},
                  max_members_per_session=3, max_sessions_per_user=2, allowed_hosts=["owner"],
                  default_host="owner", default_lifetime_hours=0, max_lifetime_hours=48,
                  grantable_roles=["editor", "viewer"])
    assert policy == PolicyView(
        allow_all_to_create=False, creator_users=frozenset({"ana"}),
        creator_groups=frozenset({"staff"}), max_members_per_session=3, max_sessions_per_user=2,
        allowed_hosts=frozenset({"owner"}), default_host="owner", default_lifetime=None,
        max_lifetime=timedelta(hours=48), grantable_roles=("editor", "viewer"))
    assert view() == PolicyView()  # the defaults agree


def test_who_may_create() -> None:
    open_ = view()
    closed = view(allow_all_to_create=False, creator_users={"ana"}, creator_groups={"staff"})
    assert creation.may_create("bo", NOBODY, False, open_)
    assert creation.may_create("ana", NOBODY, False, closed)
    assert creation.may_create("cy", frozenset({"staff"}), False, closed)
    assert not creation.may_create("bo", frozenset({"students"}), False, closed)
    assert creation.may_create("bo", NOBODY, True, closed)  # an rtc admin may, always
    assert creation.creation_refusal("ana", NOBODY, False, closed) is None
    assert creation.creation_refusal("bo", NOBODY, False, closed) == (
        "policy: bo may not create sessions")


def test_where_a_session_lives() -> None:
    policy = view(allowed_hosts=["account"])
    assert creation.chosen_host(None, policy) == "account"
    assert creation.chosen_host("owner", policy) == "owner"
    assert creation.host_refusal("account", False, policy) is None
    assert creation.host_refusal("owner", False, policy) == (
        "policy: sessions may not be hosted on 'owner'")
    assert creation.host_refusal("owner", True, policy) is None


def test_how_many_sessions_one_may_own() -> None:
    policy = view(max_sessions_per_user=2)
    assert creation.owned_refusal(1, False, policy) is None
    assert creation.owned_refusal(2, False, policy) == (
        "policy: a user may own at most 2 active sessions")
    assert creation.owned_refusal(5, True, policy) is None
    assert creation.owned_refusal(0, False, view(max_sessions_per_user=0)) is not None


def test_how_long_a_session_lives() -> None:
    policy = view(default_lifetime_hours=24, max_lifetime_hours=48)
    assert creation.lifetime_limit(False, policy) == timedelta(hours=48)
    assert creation.lifetime_limit(True, policy) is None
    assert creation.default_expiry(NOW, policy) == NOW + timedelta(hours=24)
    assert creation.default_expiry(NOW, view(default_lifetime_hours=0)) is None
    assert creation.lifetime_limit(False, view(max_lifetime_hours=0)) is None


def test_which_course_watches_a_session() -> None:
    courses = frozenset({"cs101", "cs102"})
    assert creation.default_course(frozenset({"cs101", "students"}), courses) == "cs101"
    assert creation.default_course(frozenset({"cs101", "cs102"}), courses) is None  # which one?
    assert creation.default_course(frozenset({"students"}), courses) is None
    assert creation.course_refusal("cs101", "ana", frozenset({"cs101"}), False) is None
    assert creation.course_refusal("cs102", "ana", frozenset({"cs101"}), False) == (
        "course: ana is not in hub group 'cs102'")
    assert creation.course_refusal("cs102", "ana", NOBODY, True) is None
