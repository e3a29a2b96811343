"""The service's own tables (never the hub's).

Users are keyed by a persistent id the service hands out, because hub names
can be renamed; everything that points at a user points at that id, so a
rename touches one row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from .revision import REVISION_TABLE, create_triggers


def utcnow() -> datetime:
    """Module-level so tests can travel in time by patching it."""
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops tzinfo)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Base(DeclarativeBase):
    metadata = metadata


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    #: the hub's creation time of this user, which survives a rename
    hub_created: Mapped[datetime | None] = mapped_column(UTCDateTime())
    display_name: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<User {self.name} id={self.id}>"

    @classmethod
    def find(cls, db: Session, name: str) -> User | None:
        return db.scalar(select(cls).where(cls.name == name))


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    owner: Mapped[User] = relationship()
    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Team {self.name}>"

    @classmethod
    def find(cls, db: Session, name: str) -> Team | None:
        return db.scalar(select(cls).where(cls.name == name))


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    # indexed: "which teams is this user in" runs on every decision
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)

    team: Mapped[Team] = relationship(back_populates="members")
    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<TeamMember team={self.team_id} user={self.user_id}>"


#: Where a session's server stands (``RTCSession.hosting_state``):
#: starting (a collaboration account is being set up), ready (its server has
#: announced the extension in its current run and members are shared in),
#: waiting (not announced in the current run: nobody is let in), failed (the
#: account could not be set up), stopped (ended or expired: shares deleted),
#: unmanaged (the service does not manage hub access, see
#: ``RTCService.manage_hub_access``).
HOSTING_STATES = ("starting", "ready", "waiting", "failed", "stopped", "unmanaged")


class RTCSession(Base):
    """A collaboration session (named so it is not confused with an ORM Session)."""

    __tablename__ = "sessions"
    # "which sessions live on this server" runs on every rights question
    __table_args__ = (Index("ix_sessions_server", "server_user", "server_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id()[:12])
    title: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    host: Mapped[str] = mapped_column(String(16))  # "owner" | "account"
    server_user: Mapped[str] = mapped_column(String(255))
    server_name: Mapped[str] = mapped_column(String(255), default="")
    root: Mapped[str] = mapped_column(Text, default="")
    course: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="active")
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_activity: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hosting_state: Mapped[str] = mapped_column(String(16), default="waiting")
    hosting_message: Mapped[str] = mapped_column(Text, default="")

    owner: Mapped[User] = relationship()
    grants: Mapped[list[Grant]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="Grant.created"
    )
    cell_rules: Mapped[list[CellRule]] = relationship(
        back_populates="session", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<RTCSession {self.id} {self.title!r} {self.state}>"

    @classmethod
    def find(cls, db: Session, id: str) -> RTCSession | None:
        return db.get(cls, id)


class Grant(Base):
    """A role in a session for a user, a team or a hub group.

    ``principal`` is the user's persistent id, the team's id, or the hub
    group's name, so one unique constraint covers all three kinds.
    """

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("session_id", "kind", "principal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "team" | "group"
    principal: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    granted_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    session: Mapped[RTCSession] = relationship(back_populates="grants")
    granted_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<Grant {self.kind}:{self.principal} {self.role} in {self.session_id}>"


class CellRule(Base):
    __tablename__ = "cell_rules"
    __table_args__ = (UniqueConstraint("session_id", "path", "cell_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    cell_id: Mapped[str] = mapped_column(String(255))
    rule: Mapped[str] = mapped_column(String(16))  # "locked" | "assigned"
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    session: Mapped[RTCSession] = relationship(back_populates="cell_rules")
    writers: Mapped[list[CellRuleWriter]] = relationship(
        back_populates="rule_row", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<CellRule {self.rule} {self.path}#{self.cell_id}>"


class CellRuleWriter(Base):
    __tablename__ = "cell_rule_writers"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("cell_rules.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "user" | "team"
    principal: Mapped[str] = mapped_column(String(255), primary_key=True)

    rule_row: Mapped[CellRule] = relationship(back_populates="writers")

    def __repr__(self) -> str:
        return f"<CellRuleWriter {self.kind}:{self.principal}>"


class ActivityEvent(Base):
    """Aggregated activity: one row per session, user, kind, path, cell and minute."""

    __tablename__ = "activity_events"
    __table_args__ = (
        UniqueConstraint("session_id", "user_id", "kind", "path", "cell_id", "minute"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024), default="")
    cell_id: Mapped[str] = mapped_column(String(255), default="")
    minute: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer, default=0)

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<ActivityEvent {self.kind} x{self.count} {self.minute:%H:%M}>"


class ActivityBatch(Base):
    """A batch of activity a shared server sent, by the id it gave it: a server that
    was killed, or did not hear the answer, sends the batch again under the same id,
    and it is counted once."""

    __tablename__ = "activity_batches"
    __table_args__ = (UniqueConstraint("session_id", "batch_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HubShare(Base):
    """A JupyterHub share the service made, kept so it can be reconciled."""

    __tablename__ = "hub_shares"
    __table_args__ = (
        UniqueConstraint("session_id", "server_user", "server_name", "kind", "principal"),
        Index("ix_hub_shares_server", "server_user", "server_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    server_user: Mapped[str] = mapped_column(String(255))
    server_name: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "group"
    principal: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<HubShare {self.server_user}/{self.server_name} -> {self.kind}:{self.principal}>"


class Server(Base):
    """A single-user server that announced the hub_rtc extension to the service.

    ``run_started`` is the hub's own start time of the run that announced,
    so "announced in its current run" compares two hub timestamps, never the
    service's clock with the hub's.
    """

    __tablename__ = "servers"
    __table_args__ = (UniqueConstraint("user", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    base_url: Mapped[str] = mapped_column(String(1024), default="")
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    run_started: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: whether the server can run session kernels in a sandbox (None: it did not say)
    kernel_sandbox: Mapped[bool | None] = mapped_column(Boolean())
    #: why it cannot ("" where it can, or did not say)
    kernel_sandbox_missing: Mapped[str] = mapped_column(String(300), default="", server_default="")
    #: whether it can run them there as an account of their own (None: it did not say)
    kernel_account: Mapped[bool | None] = mapped_column(Boolean())
    kernel_account_missing: Mapped[str] = mapped_column(String(300), default="", server_default="")

    def __repr__(self) -> str:
        return f"<Server {self.user}/{self.name} {self.version}>"

    @classmethod
    def find(cls, db: Session, user: str, name: str = "") -> Server | None:
        return db.scalar(select(cls).where(cls.user == user, cls.name == name))


class Presence(Base):
    """Who has a document of a session open right now, as its server last reported.

    A row is only as fresh as ``seen_at``: servers report every few seconds,
    so a row older than that means the server stopped reporting (it stopped
    or lost the service), and nobody counts as online through it.
    """

    __tablename__ = "presence"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    rooms: Mapped[int] = mapped_column(Integer, default=0)  # open document connections
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<Presence {self.user_id} in {self.session_id} x{self.rooms}>"


class Watcher(Base):
    """An instructor who joined a session of a course they watch, read-only.

    Their standing comes from policy (the ``observer`` role), not from a
    grant; this row only asks for a JupyterHub share of the session's server,
    so they can open it in JupyterLab.  Members see who is watching.
    """

    __tablename__ = "watchers"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Watcher {self.user_id} of {self.session_id}>"


class CellBaseline(Base):
    """The last authorized content of a ruled cell, as its server's room last saved it.

    A room loading its notebook (after a restart, or an out-of-band change
    to the file) puts ruled cells back to this.  It is kept here, by the
    service, because everything on the shared server, its files and its
    update store included, is within reach of code run in the session's
    kernels.  ``cell`` is the nbformat cell as JSON; ``after`` the id of the
    cell before it (where to put it back); ``present`` False once someone
    allowed to deleted it in the room.
    """

    __tablename__ = "cell_baselines"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)  # below the session root
    cell_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    cell: Mapped[str] = mapped_column(Text, default="{}")
    after: Mapped[str | None] = mapped_column(String(255), nullable=True)
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<CellBaseline {self.path}#{self.cell_id}>"


class NotebookBaseline(Base):
    """The last authorized shape of a whole notebook, for sessions where someone may
    run code but not edit: a file their kernel wrote may then change only outputs and
    execution counts.  ``notebook`` is JSON: its ``metadata``, ``nbformat``,
    ``nbformat_minor`` and ``order`` (the cell ids in order).  The cells themselves
    are rows of :class:`CellBaseline`, without outputs unless ruled.
    """

    __tablename__ = "notebook_baselines"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)  # below the session root
    notebook: Mapped[str] = mapped_column(Text, default="{}")
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<NotebookBaseline {self.path}>"


class AccessRevision(Base):
    """One row whose number the database's own triggers move on every change a decision
    reads (see :mod:`hub_rtc.records.revision`): what the service's cache of loaded
    records checks instead of loading them again."""

    __tablename__ = REVISION_TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


@event.listens_for(metadata, "after_create")
def _revision_triggers(target: MetaData, connection: Connection, **kw: Any) -> None:
    """A fresh database gets the revision's row and triggers as the migration makes them."""
    if AccessRevision.__table__ in kw.get("tables", ()):
        create_triggers(connection)


def hold(db: Session, model: type[User] | type[RTCSession], row_id: str) -> None:
    """Lock one row until the transaction ends, before reading what a limit on it
    counts (a user's sessions, a session's members): a second transaction holding
    it waits, then reads what the first wrote.

    It writes a column no access-revision trigger watches to itself: PostgreSQL
    then locks the row as ``FOR UPDATE`` would, and SQLite, which ignores ``FOR
    UPDATE``, takes its write lock before the read instead of at the insert."""
    if model is User:
        db.execute(update(User).where(User.id == row_id).values(display_name=User.display_name))
    else:
        db.execute(update(RTCSession).where(RTCSession.id == row_id).values(title=RTCSession.title))
