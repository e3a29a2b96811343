#!/usr/bin/env python3
"""Lock the instructions cells of a notebook in every hub_rtc session of a course.

For each session (every session of --course you may see, or the ones named
with --session) it reads the live notebook through the document API and locks
the cells that are instructions, so students can edit everything else but not
those: every markdown cell (--markdown), and/or every cell whose source starts
with a marker (--marker, e.g. "# INSTRUCTIONS").  Locked cells can still be
changed by the session's owner and managers.  Running it again is harmless:
locking a locked cell changes nothing.

    python3 lock_cells.py --course cs101 --notebook lab1.ipynb --markdown
    python3 lock_cells.py --session 3f2a… --notebook week2/lab.ipynb --marker "# TASK"

--notebook is relative to each session's folder.  A session whose notebook is
missing, or whose server is not running, is reported and skipped.

You must own or manage the sessions.  The token (--token, or
$JUPYTERHUB_API_TOKEN) needs `access:services!service=rtc`,
`custom:rtc:sessions` (to set cell rules) and `custom:rtc:documents:read`
(to read the notebooks):

    curl -X POST -H "Authorization: token $TOKEN" <hub>/hub/api/users/<you>/tokens \\
         -d '{"scopes": ["access:services!service=rtc", "custom:rtc:sessions", "custom:rtc:documents:read"]}'

Only the Python standard library is needed.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any

from rtc_api import Api, add_hub_arguments, api_from, message


def is_instructions(cell: dict[str, Any], args: argparse.Namespace) -> bool:
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    if args.markdown and cell.get("cell_type") == "markdown":
        return True
    return any(source.lstrip().startswith(marker) for marker in args.marker or ())


def lock_in(api: Api, session: dict[str, Any], args: argparse.Namespace) -> bool:
    """Lock the instructions cells of the notebook in one session; False if it failed."""
    sid, title = session["id"], session["title"]
    notebook = urllib.parse.quote(args.notebook)
    status, doc = api.call("GET", f"/sessions/{sid}/documents/{notebook}")
    if status != 200:
        print(f"skipped  {title} ({sid}): {status} {message(doc)}", file=sys.stderr)
        return False
    cells = [c for c in doc["cells"] if c.get("id") and is_instructions(c, args)]
    for cell in cells:
        if args.dry_run:
            continue
        api.must("PUT", f"/sessions/{sid}/cells",
                 {"path": args.notebook, "cell_id": cell["id"], "rule": "locked"})
    verb = "would lock" if args.dry_run else "locked"
    print(f"{verb} {len(cells)} of {len(doc['cells'])} cells in {title} ({sid}): "
          f"{', '.join(c['id'] for c in cells) or '-'}")
    return True


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--course", help="every session of this course (hub group) you may see")
    which.add_argument("--session", action="append", metavar="ID", help="a session (repeatable)")
    p.add_argument("--notebook", required=True, help="the notebook, relative to each session's folder")
    p.add_argument("--markdown", action="store_true", help="lock every markdown cell")
    p.add_argument("--marker", action="append",
                   help="lock every cell whose source starts with this text (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="say what would be locked, lock nothing")
    add_hub_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not (args.markdown or args.marker):
        p.error("say which cells are instructions: --markdown and/or --marker TEXT")
    api = api_from(p, args)
    found = api.sessions(args.session, args.course, "&state=active")
    failed = sum(not lock_in(api, session, args) for session in found)
    print(f"{len(found)} sessions, {failed} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
