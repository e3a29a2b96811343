"""``hub-rtc``: serve (what the hub runs), upgrade-db, demo, config-reference."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from traitlets.config import Config, PyFileConfigLoader

USAGE = """usage: hub-rtc COMMAND [options]

commands:
  serve             run the service (JupyterHub starts this; see the drop-in)
  upgrade-db        back up (SQLite) and migrate the service's database
  demo              start a complete local hub with demo users, a team and a session
  config-reference  print the reference of every configurable option (Markdown)

Run `hub-rtc COMMAND --help` for a command's options.
"""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command, rest = args[0], args[1:]
    if command == "serve":
        from .service.app import RTCService

        RTCService.launch_instance(rest)
    elif command == "upgrade-db":
        upgrade_db(rest)
    elif command == "demo":
        from .demo import main as demo_main

        demo_main(rest)
    elif command == "config-reference":
        from .docs import config_reference

        print(config_reference(), end="")
    else:
        sys.exit(f"hub-rtc: unknown command {command!r}\n\n{USAGE}")


def upgrade_db(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="hub-rtc upgrade-db",
        description="Migrate the hub_rtc database to the newest schema. SQLite files "
        "are copied aside first (<file>.<timestamp>.bak).",
    )
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: from --config, "
                        "$HUB_RTC_CONFIG, or sqlite:///hub_rtc.sqlite)")
    parser.add_argument("-f", "--config", help="a jupyterhub_config.py setting c.RTCService.db_url")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--no-backup", action="store_true", help="skip the SQLite backup")
    opts = parser.parse_args(argv)
    url = opts.db_url or _configured_db_url(opts.config)
    # alembic reports each migration step at INFO: show it, it is the progress
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from .records.database import upgrade

    backup = upgrade(url, opts.revision, backup=not opts.no_backup)
    if backup:
        print(f"Backed up the database to {backup}")
    print(f"The hub_rtc database is at revision {opts.revision}.")


def _configured_db_url(config_file: str | None) -> str:
    config = Config()
    if config_file:
        folder, name = os.path.split(os.path.abspath(config_file))
        config = PyFileConfigLoader(name, path=folder).load_config()
    elif os.environ.get("HUB_RTC_CONFIG"):
        config = Config(json.loads(os.environ["HUB_RTC_CONFIG"]))
    return str(config.RTCService.get("db_url", "sqlite:///hub_rtc.sqlite"))
