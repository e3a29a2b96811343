"""What the hub UI reads and changes, without servers: presence, joining
read-only, the dashboard overview, the admin status, and the charts.

Real databases (SQLite and PostgreSQL); the hub is :class:`StaticDirectory`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub_rtc.charts import bucket, timeline, timeline_svg
from hub_rtc.manager import Manager, StaticDirectory
from hub_rtc.manager.errors import Conflict, Forbidden, Invalid, NotFound
from hub_rtc.records import models
from hub_rtc.singleuser.presence import HEARTBEAT_SECONDS, PresenceReporter
from tests.unit.conftest import actor
from tests.unit.test_hosting import ADMIN, ALICE, BOB, owner_session, server_token

IDA = actor("ida", "cs101-staff")
CAROL = actor("carol", "cs101")


# -- presence, as the shared server counts it -----------------------------------------


def test_presence_reports_soon_after_a_change_and_then_as_a_heartbeat() -> None:
    p = PresenceReporter()
    assert not p.due(0)
    p.enter("s1", "bob")
    p.enter("s1", "bob")  # two tabs
    assert p.due(0) and p.report(0) == {"s1": {"bob": 2}}
    assert not p.due(1)
    assert p.due(HEARTBEAT_SECONDS + 1)  # nothing changed, but the service forgets silent servers
    p.leave("s1", "bob")
    assert p.report(20) == {"s1": {"bob": 1}}
    p.leave("s1", "bob")
    assert p.report(21) == {"s1": {}}  # the service is told they left
    assert not p.due(100)  # and then nothing more is said about s1
    p.leave("s1", "bob")  # a second close of the same socket changes nothing
    assert not p.due(100)


def test_presence_says_goodbye_and_retries() -> None:
    p = PresenceReporter()
    p.enter("s1", "bob")
    p.report(0)
    p.enter("s2", "cai")
    assert p.goodbye() == {"s1": {}, "s2": {}}
    p.enter("s3", "dee")
    p.report(0)
    p.retry()
    assert p.due(0)


# -- presence, as the service stores it -----------------------------------------------


async def test_a_server_reports_who_is_online_in_its_own_sessions_only(hosted: Manager, directory) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    body = {"server_name": "", "sessions": {s["id"]: {"bob": 2, "alice": 0}}}
    assert await hosted.presence.report(server_token("alice"), body) == 1
    assert (await hosted.sessions.get(ALICE, s["id"]))["online"] == ["bob"]
    with pytest.raises(Forbidden, match="not hosted on this server"):
        await hosted.presence.report(server_token("bob"), body)
    counts = await hosted.presence.counts()
    assert counts == {"people_online": 1, "live_sessions": 1, "room_connections": 2}
    await hosted.presence.report(server_token("alice"), {"server_name": "", "sessions": {s["id"]: {}}})
    assert (await hosted.sessions.get(ALICE, s["id"]))["online"] == []


async def test_last_seen_moves_with_presence_reports_and_events_pings(hosted: Manager, directory,
                                                                      monkeypatch) -> None:
    """The admin page's "last seen" moved only when a server (re)connected."""
    from hub_rtc.records import Server

    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])

    def last_seen() -> datetime:
        return hosted.ctx.db.transaction(lambda db: Server.find(db, "alice", "").last_seen)

    announced = last_seen()
    later = announced + timedelta(minutes=5)
    monkeypatch.setattr(models, "utcnow", lambda: later)
    await hosted.presence.report(server_token("alice"), {"server_name": "",
                                                         "sessions": {s["id"]: {"bob": 1}}})
    assert last_seen() == later
    later = later + timedelta(minutes=5)
    await hosted.servers.seen(("alice", ""))  # an events channel's pong
    assert last_seen() == later
    await hosted.servers.seen(("nobody", ""))  # a server never announced: nothing to move


async def test_presence_goes_stale_when_a_server_falls_silent(hosted: Manager, directory,
                                                              monkeypatch) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    report = {"server_name": "", "sessions": {s["id"]: {"bob": 1}}}
    await hosted.presence.report(server_token("alice"), report)
    later = datetime.now(UTC) + timedelta(seconds=31)
    monkeypatch.setattr(models, "utcnow", lambda: later)
    assert (await hosted.sessions.get(ALICE, s["id"]))["online"] == []
    assert (await hosted.presence.counts())["people_online"] == 0


# -- joining read-only -----------------------------------------------------------------


async def test_instructors_join_watched_sessions_read_only(hosted: Manager, directory, told) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    assert s["course"] == "cs101"
    rights = await hosted.servers.rights(server_token("alice"), {"user": "ida", "server_name": "",
                                                                "path": "x.ipynb"})
    assert rights["role"] == "observer" and not rights["read"] and "join" in rights["reason"]
    joined = await hosted.watching.join(IDA, s["id"])
    assert joined["watchers"] == ["ida"] and joined["my_role"] == "observer"
    assert ("user", "ida") in directory.shared_with("alice")
    rights = await hosted.servers.rights(server_token("alice"), {"user": "ida", "server_name": "",
                                                                "path": "x.ipynb"})
    assert rights["read"] and not rights["write"] and not rights["execute"]
    told.take()
    await hosted.watching.leave(IDA, s["id"])
    assert told.take() == [(s["id"], ("ida",), "instructor left")]
    assert ("user", "ida") not in directory.shared_with("alice")
    with pytest.raises(NotFound):
        await hosted.watching.leave(IDA, s["id"])


async def test_only_watchers_join_read_only(hosted: Manager, directory) -> None:
    s = await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    with pytest.raises(Conflict, match="as editor"):
        await hosted.watching.join(BOB, s["id"])
    with pytest.raises(Forbidden):
        await hosted.watching.join(actor("dave", "other"), s["id"])
    with pytest.raises(Forbidden, match="only instructors"):
        await hosted.watching.join(ADMIN, s["id"])
    await hosted.sessions.end(ALICE, s["id"])
    with pytest.raises(Conflict, match="ended"):
        await hosted.watching.join(IDA, s["id"])


# -- the dashboard and the admin status -------------------------------------------------


async def _edits(manager: Manager, session_id: str, user: str, n: int, minute: str) -> None:
    event = {"ts": minute, "user": user, "kind": "edit", "path": "nb.ipynb", "cell_id": "c1",
             "count": n}
    await manager.activity.record(server_token("alice"), session_id, [event])


async def test_the_dashboard_filters_and_sorts_watched_sessions(hosted: Manager, directory) -> None:
    quiet = await owner_session(hosted, directory, root="a")
    busy = await hosted.sessions.create(ALICE, {"title": "Busy", "host": "owner", "root": "b"})
    now = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    await _edits(hosted, busy["id"], "alice", 7, now)
    found = await hosted.overview.watched(IDA, sort="edit")
    assert [s["title"] for s in found["sessions"]] == ["Busy", "Lab"]
    assert found["sessions"][0]["edit"] == 7 and found["courses"] == ["cs101"]
    ascending = await hosted.overview.watched(IDA, sort="edit", descending=False)
    assert [s["id"] for s in ascending["sessions"]] == [quiet["id"], busy["id"]]
    assert (await hosted.overview.watched(IDA, course="nope"))["sessions"] == []
    hour = await hosted.overview.watched(IDA, activity="hour")
    assert {s["id"] for s in hour["sessions"]} == {quiet["id"], busy["id"]}  # both just made
    assert (await hosted.overview.watched(IDA, activity="idle"))["sessions"] == []
    with pytest.raises(Invalid):
        await hosted.overview.watched(IDA, sort="'; drop table")
    with pytest.raises(Invalid):
        await hosted.overview.watched(IDA, activity="year")
    with pytest.raises(Forbidden, match="courses you watch"):
        await hosted.overview.watched(CAROL)  # a student watches nothing


async def test_the_status_counts_and_checks_health(hosted: Manager, directory) -> None:
    await owner_session(hosted, directory, members=[{"user": "bob", "role": "editor"}])
    with pytest.raises(Forbidden):
        await hosted.status.report(ALICE)
    report = await hosted.status.report(ADMIN)
    assert report["database"]["ok"] and report["hub"]["ok"]
    assert report["hub"]["running_servers"] == 1
    counts = report["counts"]
    assert (counts["sessions_active"], counts["members"], counts["servers_announced"]) == (1, 1, 1)


async def test_members_are_counted_as_people_with_teams_expanded(hosted: Manager, directory) -> None:
    """"Members 2" was two grants: a team of three is three people (its owner's own
    membership aside), and a hub group, whose members only the hub knows, is shown beside."""
    await hosted.teams.create(ALICE, {"name": "trio", "members": ["alice", "bob", "carol"]})
    s = await owner_session(hosted, directory, members=[
        {"team": "trio", "role": "editor"}, {"user": "dave", "role": "viewer"},
        {"group": "cs101", "role": "viewer"}])
    assert s["people"] == ["bob", "carol", "dave"]
    team = next(m for m in s["members"] if m["kind"] == "team")
    assert team["people"] == ["alice", "bob", "carol"]  # the page lists the team's members
    assert all("people" not in m for m in s["members"] if m["kind"] != "team")
    row = next(r for r in (await hosted.overview.watched(IDA))["sessions"] if r["id"] == s["id"])
    assert (row["member_count"], row["group_count"]) == (3, 1)
    assert (await hosted.status.report(ADMIN))["counts"]["members"] == 3


async def test_a_failing_hub_shows_in_the_status(hosted: Manager, directory: StaticDirectory,
                                                 monkeypatch) -> None:
    from hub_rtc.manager.ports import HostingError

    async def down() -> dict:
        raise HostingError("hub API: connection refused")

    monkeypatch.setattr(directory, "active_servers", down)
    hub = (await hosted.status.report(ADMIN))["hub"]
    assert hub == {"ok": False, "error": "hub API: connection refused"}


# -- charts ----------------------------------------------------------------------------


#: the charts' "now" in these tests: half an hour after the first event
START = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
NOW = START + timedelta(minutes=30)


def _event(minute: int, user: str, kind: str = "edit", count: int = 1) -> dict:
    ts = START + timedelta(minutes=minute)
    return {"ts": ts.isoformat().replace("+00:00", "Z"), "user": user, "kind": kind,
            "path": "nb.ipynb", "cell_id": "c", "count": count}


def test_buckets_fit_the_span_and_keep_every_count() -> None:
    events = [_event(0, "bea", count=3), _event(0, "cai", "execute"), _event(299, "bea", count=2),
              _event(5, "bea", "refused")]
    data = bucket(events, ["bea", "cai", "dee"], now=START + timedelta(minutes=299, seconds=30))
    assert data is not None
    assert data.step == timedelta(minutes=10) and data.buckets == 30
    assert sum(data.counts["bea"]["edit"]) == 5 and data.counts["bea"]["edit"][-1] == 2
    assert sum(data.counts["cai"]["execute"]) == 1
    assert data.counts["dee"] == {"edit": [0] * 30, "execute": [0] * 30}  # members without activity show
    assert bucket([_event(0, "bea", "refused")], now=NOW) is None


def test_the_timeline_is_readable_without_colour_and_escapes_names() -> None:
    svg = timeline_svg(bucket([_event(0, "<b>bea", count=4), _event(3, "cai", "execute", 2)], now=NOW),
                       "Lab </title><script>x()</script>")
    assert "<script" not in svg and "<b>" not in svg
    assert "&lt;b&gt;bea: 4 edits, 10:00 UTC" in svg and "cai: 2 runs, 10:03 UTC" in svg
    assert 'role="img"' in svg and "<desc" in svg  # a text alternative for screen readers
    assert "hatched" in svg and "above the line" in svg  # the legend names shapes, not colours
    assert "4 edits · 0 runs" in svg and "0 edits · 2 runs" in svg
    one = timeline_svg(bucket([_event(0, "bea"), _event(1, "bea", "execute")], now=NOW), "t")
    assert "1 edit · 1 run<" in one


def test_a_short_burst_of_work_spans_half_an_hour_up_to_now() -> None:
    data = bucket([_event(0, "bea"), _event(2, "cai")], now=START + timedelta(minutes=2, seconds=5))
    assert data is not None and data.step == timedelta(minutes=1) and data.buckets == 30
    # padded into the past: the bars sit at the right, where "now" is (the minute 10:02)
    assert data.bucket_start(data.buckets) == START + timedelta(minutes=3)
    assert data.counts["cai"]["edit"][-1] == 1 and data.counts["bea"]["edit"][-3] == 1


@pytest.mark.parametrize("minutes_after", [0, 0.5, 3, 29, 31, 90, 60 * 24 * 3])
def test_the_time_axis_ends_now_not_in_the_future(minutes_after: float) -> None:
    now = START + timedelta(minutes=2 + minutes_after, seconds=17)
    data = bucket([_event(0, "bea"), _event(2, "cai", "execute")], now=now)
    assert data is not None
    end = data.bucket_start(data.buckets)
    assert timedelta(0) < end - now <= timedelta(minutes=1)  # the close of the current minute
    assert data.start <= START  # and the first event is on it
    assert data.buckets <= 48 and sum(data.counts["bea"]["edit"]) == 1
    assert sum(data.counts["cai"]["execute"]) == 1


def test_the_axis_ends_now_and_marks_times_for_the_readers_zone() -> None:
    now = START + timedelta(minutes=5, seconds=40)
    svg = timeline_svg(bucket([_event(0, "bea"), _event(2, "<i>cai")], now=now), "t")
    # the end tick is now (the minute 10:05 closes at 10:06), not half an hour after 10:00
    assert ('text-anchor="end" data-datetime="2026-11-21T10:06:00+00:00" data-time-only>'
            "10:06 UTC</text>") in svg
    assert 'data-datetime="2026-11-21T09:36:00+00:00">2026-11-21 09:36 UTC</text>' in svg
    # each bar's tooltip too; the name in its label attribute is escaped like the text
    assert ('<title data-datetime="2026-11-21T10:02:00+00:00" data-label="&lt;i&gt;cai: 1 edit, "'
            ' data-time-only>&lt;i&gt;cai: 1 edit, 10:02 UTC</title>') in svg
    assert "<i>" not in svg


def test_an_event_ahead_of_the_clock_is_on_the_last_bar() -> None:
    data = bucket([_event(0, "bea"), _event(31, "cai")], now=NOW)  # cai's clock runs ahead
    assert data is not None and data.counts["cai"]["edit"][-1] == 1
    assert data.bucket_start(data.buckets) == START + timedelta(minutes=32)


def test_the_chart_ends_at_the_current_time_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline, "utcnow", lambda: START + timedelta(minutes=45))
    data = bucket([_event(0, "bea")])
    assert data is not None and data.bucket_start(data.buckets) == START + timedelta(minutes=46)
