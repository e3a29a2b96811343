#!/usr/bin/env python3
"""Export the activity of hub_rtc collaboration sessions as CSV.

One row per session, user, kind, notebook, cell and minute, with how many
times it happened: who edited which cell when, who ran code, who was refused.

    session_id,title,ts,user,kind,path,cell_id,count
    3f2a…,cs101 team-a,2026-11-21T10:04:00Z,alice,edit,lab.ipynb,intro,12

Which sessions: the ones named with --session, else every session you may
see (yours, shared with you, and those of the courses you teach), narrowed
with --course.  --summary writes one row per session and member instead
(edits, executions, refusals, cells edited, last active).

The token (--token, or $JUPYTERHUB_API_TOKEN) needs
`access:services!service=rtc` and `custom:rtc:sessions`; reading a session's
activity also needs manager rights in it, or `custom:rtc:activity:read`
(instructors of a course have it).

Example:

    export JUPYTERHUB_API_TOKEN=...
    python3 export_activity.py --course cs101 --since 2026-11-01 -o activity.csv

Only the Python standard library is needed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import urllib.parse
from typing import IO, Any

from rtc_api import Api, add_hub_arguments, api_from, message

EVENT_COLUMNS = ["session_id", "title", "ts", "user", "kind", "path", "cell_id", "count"]
SUMMARY_COLUMNS = ["session_id", "title", "user", "edit", "execute", "refused", "join", "leave",
                   "save", "cells_edited", "last_active"]
#: the API's largest page of events
PAGE = 100_000


def events(api: Api, session_id: str, since: str | None) -> tuple[int, Any]:
    """All of a session's events, oldest first, a page at a time."""
    out: list[dict[str, Any]] = []
    while True:
        query = {"limit": str(PAGE), **({"since": since} if since else {})}
        status, reply = api.call("GET", f"/sessions/{session_id}/activity?{urllib.parse.urlencode(query)}")
        if status != 200:
            return status, reply
        page = reply["events"]
        out += page
        if len(page) < PAGE:
            return 200, out
        if page[0]["ts"] == page[-1]["ts"]:
            return 200, out  # one minute fills a page: nothing more to gain by asking again
        # events are per minute: go on from the last minute, dropping what was already read
        since = page[-1]["ts"]
        out = [e for e in out if e["ts"] < since]


def export(api: Api, args: argparse.Namespace, out: IO[str]) -> int:
    columns = SUMMARY_COLUMNS if args.summary else EVENT_COLUMNS
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    failed = 0
    for session in api.sessions(args.session, args.course):
        sid, title = session["id"], session["title"]
        if args.summary:
            status, reply = api.call("GET", f"/sessions/{sid}/activity/summary")
            rows = reply["members"] if status == 200 else reply
        else:
            status, rows = events(api, sid, args.since)
        if status != 200:
            failed += 1
            print(f"FAILED   {title} ({sid}): {status} {message(rows)}", file=sys.stderr)
            continue
        for row in rows:
            writer.writerow({"session_id": sid, "title": title, **row})
        print(f"exported {title} ({sid}): {len(rows)} rows", file=sys.stderr)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--session", action="append", metavar="ID", help="a session to export (repeatable)")
    p.add_argument("--course", help="only the sessions of this course (hub group)")
    p.add_argument("--since", help="only activity from this ISO 8601 time on")
    p.add_argument("--summary", action="store_true", help="one row per session and member")
    p.add_argument("-o", "--output", help="CSV file to write (default: standard output)")
    add_hub_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    api = api_from(p, args)
    if not args.output:
        return export(api, args, sys.stdout)
    with open(args.output, "w", newline="", encoding="utf-8") as out:
        return export(api, args, out)


if __name__ == "__main__":
    sys.exit(main())
