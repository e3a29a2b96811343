"""Reading pycrdt's deep events: the shape of what changed, its keys, its arrays' deltas.

Events are typed ``Any``: a deep event is a TextEvent, MapEvent or ArrayEvent, and
which attributes it has (``keys`` or ``delta``) is read from :func:`kind` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycrdt import ArrayEvent, MapEvent, TextEvent

from ._content import Delta

__all__ = ["Arrays", "adds_keys", "array_deltas", "keys", "kind"]

#: the deltas of the arrays an update changed, by path (``()``: the root itself)
Arrays = Mapping[tuple[Any, ...], Delta]
_EVENT_KINDS: dict[type, str] = {TextEvent: "text", MapEvent: "map", ArrayEvent: "array"}


def kind(event: Any) -> str:
    """"text", "map" or "array": the shape of the content an event changed."""
    return _EVENT_KINDS.get(type(event), "")


def keys(event: Any) -> list[str]:
    """The map keys ``event`` changed (none unless it is a map event)."""
    return list(event.keys) if kind(event) == "map" else []


def adds_keys(event: Any, keys: list[str]) -> bool:
    """Whether the map event ``event`` added any of ``keys``."""
    return any(event.keys[key].get("action") == "add" for key in keys)


def array_deltas(events: list[Any]) -> Arrays:
    """Deltas of the arrays an update changed, by path (``()``: the root itself)."""
    return {tuple(event.path): event.delta for event in events if kind(event) == "array"}
