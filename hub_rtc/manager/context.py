"""What every manager shares: the database, the hub, the policy and the notifier."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..policy import RTCPolicy
from ..records import Database
from .notify import Notifier, NullNotifier
from .ports import Hub


@dataclass(frozen=True)
class HostingSettings:
    """The service's hosting options (``RTCService`` traits of the same names)."""

    #: create collaboration accounts, start their servers and share servers;
    #: off: keep records and answer decisions only, let nobody in through the hub
    manage_hub_access: bool = False
    #: how long a server may reuse a rights answer
    rights_cache_seconds: float = 10.0
    #: how long a collaboration account's server may take to become ready
    server_start_timeout: float = 120.0
    #: how long after it is ready the extension has to announce itself
    announce_timeout: float = 60.0
    #: how long a change of rights waits for the servers hosting the session to
    #: confirm it is in force, before answering that it is not yet
    push_ack_seconds: float = 2.0
    #: how long a restarted server may run unannounced before shares are withdrawn
    announce_grace: float = 60.0


@dataclass
class Context:
    db: Database
    directory: Hub
    policy: RTCPolicy
    #: the hub's base URL, for links that open a session in JupyterLab
    hub_base_url: str = "/"
    hosting: HostingSettings = field(default_factory=HostingSettings)
    notifier: Notifier = field(default_factory=NullNotifier)
