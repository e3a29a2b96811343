"""What every manager shares: the database, the hub directory and the policy."""

from __future__ import annotations

from dataclasses import dataclass

from ..policy import RTCPolicy
from ..records import Database
from .directory import HubDirectory


@dataclass
class Context:
    db: Database
    directory: HubDirectory
    policy: RTCPolicy
    #: the hub's base URL, for links that open a session in JupyterLab
    hub_base_url: str = "/"
