"""Fill a hub_rtc database with many sessions and grants, fast (bulk inserts)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from sqlalchemy import insert

from hub_rtc.records import Database, Grant, RTCSession, Team, TeamMember, User


def populate(url: str, sessions: int = 10_000, grants: int = 100_000, users: int = 2_000,
             seed: int = 7) -> dict[str, list[str]]:
    """Create users ``u0…``, teams, sessions and grants; returns names and ids used."""
    rng = random.Random(seed)
    db = Database(url)
    db.check()
    now = datetime.now(UTC)
    user_ids = [f"{i:032x}" for i in range(users)]
    session_ids = [f"s{i:011d}" for i in range(sessions)]
    team_ids = [f"t{i:031d}" for i in range(users // 10)]
    started = time.perf_counter()
    with db.sessions.begin() as s:
        s.execute(insert(User), [{"id": uid, "name": f"u{i}", "created": now, "display_name": ""}
                                 for i, uid in enumerate(user_ids)])
        s.execute(insert(Team), [{"id": tid, "name": f"team{i}", "owner_id": user_ids[0], "created": now}
                                 for i, tid in enumerate(team_ids)])
        s.execute(insert(TeamMember), [{"team_id": tid, "user_id": user_ids[(i * 10 + k) % users]}
                                       for i, tid in enumerate(team_ids) for k in range(5)])
        s.execute(insert(RTCSession), [
            {"id": sid, "title": f"Session {i}", "owner_id": rng.choice(user_ids), "host": "account",
             "server_user": f"rtc-{sid}", "server_name": "", "root": "", "state": "active",
             "created": now, "course": "cs101"}
            for i, sid in enumerate(session_ids)])
        rows, seen = [], set()
        while len(rows) < grants:
            sid, uid = rng.choice(session_ids), rng.choice(user_ids)
            if (sid, uid) in seen:
                continue
            seen.add((sid, uid))
            rows.append({"session_id": sid, "kind": "user", "principal": uid,
                         "role": rng.choice(["viewer", "runner", "editor", "manager"]), "created": now})
        for start in range(0, len(rows), 10_000):
            s.execute(insert(Grant), rows[start:start + 10_000])
    print(f"  populated {sessions} sessions, {grants} grants, {users} users "
          f"in {time.perf_counter() - started:.1f}s")
    db.dispose()
    granted = sorted(seen)
    return {"sessions": session_ids, "pairs": [f"{s}:{u}" for s, u in granted[:5000]],
            "user_ids": user_ids}
