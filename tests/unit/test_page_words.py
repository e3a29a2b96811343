"""What the hub pages say, rendered from the templates without a server: the
hosting state in plain words, and times marked for the reader's time zone."""

from __future__ import annotations

from typing import Any

import pytest

from hub_rtc.records.models import HOSTING_STATES
from hub_rtc.service.pages.base import environment, hosting_words

ANNOUNCED = "hub_rtc 0.1.0 announced itself at 2026-11-21 10:00 UTC"


def session(state: str, *, host: str = "account", owner: str = "bea", message: str = ANNOUNCED,
            ended: bool = False) -> dict[str, Any]:
    return {"id": "s1", "state": "ended" if ended else "active", "host": host, "owner": owner,
            "hosting": {"state": state, "message": message}}


def render(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)


def test_every_hosting_state_has_its_own_plain_words() -> None:
    words = {state: hosting_words(session(state)) for state in HOSTING_STATES}
    assert words["ready"].sentence == "Ready: the session's server is running with collaboration enabled"
    assert words["starting"].sentence.startswith("Starting: the session's server is being started")
    assert words["waiting"].badge == "waiting" and words["failed"].badge == "could not start"
    for state, said in words.items():
        assert "announced" not in said.sentence and "hub_rtc" not in said.sentence, state
    assert hosting_words(session("waiting", host="owner")).detail.startswith("bea's server is not running")


def test_an_ended_session_and_an_unknown_state_cannot_be_opened() -> None:
    assert hosting_words(session("ready", ended=True)).badge == "ended"
    later = hosting_words(session("migrating"))  # a state added later fails closed, as serves() does
    assert later.badge == "not open" and later.tone == "warning"


@pytest.mark.parametrize("state", HOSTING_STATES)
def test_the_badge_leads_with_the_words_and_escapes_them(state: str) -> None:
    page = render("hosting.html", s=session(state, host="owner", owner='<img src=x onerror="x()">'))
    said = hosting_words(session(state))
    assert f">{said.badge}</span>" in page and f'data-hosting="{state}"' in page
    assert "<img" not in page and "announced" not in page  # the message is not the badge


def test_times_keep_the_moment_for_the_readers_zone_and_utc_without_script() -> None:
    when = environment().from_string('{% from "macros.html" import when %}{{ when(value) }}')
    assert when.render(value="2026-11-21T10:05:00Z") == \
        '<time datetime="2026-11-21T10:05:00Z">2026-11-21 10:05 UTC</time>'
    assert when.render(value=None) == "–"


def session_page(online: list[str]) -> str:
    """session.html for bea's session: team "trio" (bea, cy, dee) and eve, as its owner."""
    from hub_rtc.decision import Principal, Standing

    s = {**session("ready", host="owner", message=""), "title": "Lab", "root": "lab1",
         "server": {"user": "bea", "name": ""}, "course": None, "created": "2026-11-21T10:00:00Z",
         "expires_at": None, "last_activity": None, "ended_at": None, "url": "/user/bea/lab",
         "kernels": {"mode": "unknown", "why": ""}, "my_role": "owner", "watchers": [],
         "people": ["cy", "dee", "eve"], "online": online,
         "members": [{"kind": "team", "name": "trio", "role": "editor", "expires_at": None,
                      "granted_by": "bea", "people": ["bea", "cy", "dee"]},
                     {"kind": "user", "name": "eve", "role": "viewer", "expires_at": None,
                      "granted_by": "bea"}]}
    return render("session.html", s=s, manage=True, active=True,
                  standing=Standing(Principal("bea"), "owner", False), notebooks=[], reading=None,
                  rules={}, unapplied=[], summary=[], errors={}, values={}, kinds=["user", "team"],
                  pending=[], roles=["viewer", "editor"], writers=[], xsrf="x", hub="/hub/",
                  api="/api", home="/rtc/", version="0", nav=[], notice=None,
                  me={"name": "bea", "admin": False, "watches": [], "can_create": True},
                  url=lambda *parts: "/".join(parts), static=lambda name: name)


def badge(page: str, person: str) -> str:
    """The "online" badge beside ``person`` (the first one, if they show twice)."""
    start = page.index(f'data-person="{person}"')
    return page[start:page.index("</span>", start)]


def test_the_session_page_lists_a_teams_members_and_badges_them_online() -> None:
    page = session_page(online=["bea", "dee"])
    team = page[page.index('aria-label="Members of team trio"'):]
    team = team[:team.index("</ul>")]
    assert [p for p in ("bea", "cy", "dee") if f'data-team-member="{p}"' in team] == ["bea", "cy", "dee"]
    # online: the owner and dee (through the team); cy and eve are drawn hidden, for live.js
    assert " hidden" not in badge(page, "bea") and " hidden" not in badge(page, "dee")
    assert " hidden" in badge(page, "cy") and " hidden" in badge(page, "eve")
    assert 'data-online-of="s1" data-person="dee"' in page  # the session live.js refreshes
