"""Who may see and change a team: its owner and rtc admins change it, its members see it."""

from __future__ import annotations

import pytest

from hub_rtc.decision.teams import owns_team, sees_team


@pytest.mark.parametrize(("user", "admin", "owns", "sees"), [
    ("ana", False, True, True),  # the owner
    ("bo", False, False, True),  # a member
    ("cy", False, False, False),  # neither
    ("cy", True, True, True),  # an rtc admin
    (None, False, False, False),  # someone the service does not know yet
])
def test_team_rights(user: str | None, admin: bool, owns: bool, sees: bool) -> None:
    assert owns_team(user, "ana", admin) is owns
    assert sees_team(user, "ana", ["bo"], admin) is sees
