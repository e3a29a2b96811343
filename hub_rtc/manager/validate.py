"""Checks of request values that a JSON schema cannot express."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from posixpath import normpath

from .errors import Forbidden, Invalid


def parse_when(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC; naive input is read as UTC."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise Invalid(f"{field}: {value!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def check_expiry(
    when: datetime | None, now: datetime, limit: timedelta | None, field: str = "expires_at"
) -> None:
    if when is None:
        return
    if when <= now:
        raise Invalid(f"{field} must be in the future")
    if limit is not None and when - now > limit:
        hours = limit.total_seconds() / 3600
        raise Forbidden(f"policy: {field} may be at most {hours:g} hours from now")


def folder(value: str, field: str = "root") -> str:
    """A relative folder inside a server, normalised; no escaping upwards."""
    raw = value.strip().strip("/")
    if not raw:
        return ""
    if "\\" in raw or "\x00" in raw:
        raise Invalid(f"{field}: {value!r} is not a valid folder")
    clean = normpath(raw)
    if clean == ".." or clean.startswith("../") or clean.startswith("/"):
        raise Invalid(f"{field}: {value!r} points outside the server's files")
    return "" if clean == "." else clean
