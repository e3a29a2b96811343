"""What a notebook file may change on its own: as much as the least trusted member
who could have written it (pure; expected values written out by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub_rtc.decision import FileRights, GrantView, SessionView, file_may
from hub_rtc.policy import RTCPolicy

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def session(*grants: GrantView, **fields: object) -> SessionView:
    return SessionView("s1", "olive", grants=grants, **fields)  # type: ignore[arg-type]


def may(view: SessionView, **policy: object) -> str:
    return file_may(view, RTCPolicy(**policy).decision_view(), NOW).may


@pytest.mark.parametrize(("grants", "expected"), [
    ((), "write"),  # the owner alone
    ((GrantView("user", "ed", "editor"), GrantView("user", "vi", "viewer")), "write"),
    ((GrantView("user", "mo", "manager"),), "write"),
    ((GrantView("user", "ru", "runner"),), "run"),
    ((GrantView("user", "ed", "editor"), GrantView("user", "ru", "runner")), "run"),
    ((GrantView("team", "tigers", "runner"),), "run"),
    ((GrantView("group", "cs101", "runner"),), "run"),
    ((GrantView("team", "tigers", "editor"), GrantView("group", "cs101", "viewer")), "write"),
])
def test_a_runner_anywhere_makes_the_file_a_runners(grants: tuple[GrantView, ...],
                                                    expected: str) -> None:
    assert may(session(*grants)) == expected


def test_a_user_counts_with_their_strongest_grant() -> None:
    both = session(GrantView("user", "ru", "runner"), GrantView("user", "ru", "editor"))
    assert may(both) == "write"
    # a team's members may hold nothing else: the team's grant is what counts
    team = session(GrantView("team", "tigers", "runner"), GrantView("user", "tess", "editor"))
    assert may(team) == "run"


def test_the_owner_granted_runner_is_still_the_owner() -> None:
    assert may(session(GrantView("user", "olive", "runner"))) == "write"


def test_expired_grants_run_nothing() -> None:
    gone = GrantView("user", "ru", "runner", expires_at=NOW - timedelta(seconds=1))
    assert may(session(gone)) == "write"
    later = GrantView("user", "ru", "runner", expires_at=NOW + timedelta(hours=1))
    assert may(session(later)) == "run"


def test_policy_narrows_who_runs_code() -> None:
    runner = session(GrantView("user", "ru", "runner"))
    assert may(runner, collaborators_may_execute=False) == "write"  # only the owner runs code
    # runner no longer grantable: the grant acts as viewer, which runs nothing
    assert may(runner, grantable_roles=["viewer", "editor", "manager"]) == "write"
    # editor no longer grantable: an editor grant acts as runner
    editor = session(GrantView("user", "ed", "editor"))
    assert may(editor, grantable_roles=["viewer", "runner", "manager"]) == "run"


def test_a_closed_session_has_nobody_running_code() -> None:
    runner = GrantView("user", "ru", "runner")
    assert may(session(runner, state="ended")) == "write"
    assert may(session(runner, expires_at=NOW - timedelta(minutes=1))) == "write"


def test_the_reason_names_who_runs_code() -> None:
    rights = file_may(session(GrantView("group", "cs101", "runner")),
                      RTCPolicy().decision_view(), NOW)
    assert rights == FileRights("run", "group cs101 may run code as runner but not edit")
