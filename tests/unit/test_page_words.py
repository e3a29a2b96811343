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
