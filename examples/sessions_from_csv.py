#!/usr/bin/env python3
"""Create one hub_rtc collaboration session per project group, from a CSV file.

The CSV has a `user,group` header and one line per student:

    user,group
    alice,team-a
    bob,team-a
    carol,team-b

Each group gets a session titled "<course> <group>" (see --title) with its
students as editors (see --role); the course (a hub group you are in) lets
its instructors watch the sessions.  Running it again is safe: a group whose
session already exists (one of your active sessions with that title) is
skipped, so you can add lines to the CSV and run it again.

The token (--token, or $JUPYTERHUB_API_TOKEN) needs the scopes
`access:services!service=rtc` and `custom:rtc:sessions`.  Create one at
<hub>/hub/token, or:

    curl -X POST -H "Authorization: token $TOKEN" <hub>/hub/api/users/<you>/tokens \\
         -d '{"note": "course scripts", "scopes": ["access:services!service=rtc", "custom:rtc:sessions"]}'

Example:

    export JUPYTERHUB_API_TOKEN=...
    python3 sessions_from_csv.py groups.csv --course cs101 --hub-url https://hub.example.edu

Only the Python standard library is needed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from typing import Any

from rtc_api import Api, add_hub_arguments, api_from, message


def read_groups(path: str) -> dict[str, list[str]]:
    """group -> its users, in file order, from a `user,group` CSV."""
    groups: dict[str, list[str]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            user, group = (row.get("user") or "").strip(), (row.get("group") or "").strip()
            if not user or not group:
                continue  # blank or partial lines
            if user not in groups[group]:
                groups[group].append(user)
    if not groups:
        raise SystemExit(f"{path}: no `user,group` lines found (is the header there?)")
    return dict(groups)


def my_sessions(api: Api) -> dict[str, str]:
    """Title -> id of the caller's active sessions."""
    found: dict[str, str] = {}
    offset = 0
    while True:
        page = api.must("GET", f"/sessions?which=mine&state=active&limit=1000&offset={offset}")
        for session in page["sessions"]:
            found.setdefault(session["title"], session["id"])
        if len(page["sessions"]) < 1000:
            return found
        offset += 1000


def session_body(args: argparse.Namespace, group: str, users: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": args.title.format(course=args.course, group=group),
        "course": args.course,
        "members": [{"user": user, "role": args.role} for user in users],
    }
    if args.host:
        body["host"] = args.host
    if args.root:
        body["root"] = args.root.format(course=args.course, group=group)
    if args.expires_at:
        body["expires_at"] = args.expires_at
    return body


def run(api: Api, args: argparse.Namespace) -> int:
    groups = read_groups(args.csv)
    existing = my_sessions(api)
    failed = 0
    for group, users in groups.items():
        body = session_body(args, group, users)
        title = body["title"]
        if title in existing:
            print(f"skipped  {title}: session {existing[title]} exists")
            continue
        if args.dry_run:
            print(f"would create {title} with {', '.join(users)}")
            continue
        status, reply = api.call("POST", "/sessions", body)
        if status == 201:
            existing[title] = reply["id"]
            print(f"created  {title}: session {reply['id']} with {len(users)} members")
        else:
            failed += 1
            print(f"FAILED   {title}: {status} {message(reply)}", file=sys.stderr)
    print(f"{len(groups)} groups, {failed} failed")
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", help="CSV file with a `user,group` header")
    p.add_argument("--course", required=True,
                   help="hub group of the course (you must be in it); its instructors watch the sessions")
    p.add_argument("--title", default="{course} {group}",
                   help="session title; {course} and {group} are filled in (default: %(default)r)")
    p.add_argument("--role", default="editor", choices=["viewer", "runner", "editor", "manager"],
                   help="role of the students in their session (default: %(default)s)")
    p.add_argument("--host", choices=["account", "owner"],
                   help="account: a dedicated session server each; owner: a folder of your server "
                        "(default: the hub's policy)")
    p.add_argument("--root", help="with --host owner: the session folder, e.g. 'projects/{group}'")
    p.add_argument("--expires-at", help="ISO 8601 end of the sessions (default: the hub's policy)")
    p.add_argument("--dry-run", action="store_true", help="say what would be created, create nothing")
    add_hub_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    return run(api_from(p, args), args)


if __name__ == "__main__":
    sys.exit(main())
