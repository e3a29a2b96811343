"""How long to wait between attempts to reach a server that went away."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Exponential delays from ``first`` up to ``cap`` seconds, each with up to 25% jitter
    so that the relayed clients of one restarted server do not knock all at once."""

    def __init__(self, first: float = 0.1, cap: float = 5.0, factor: float = 2.0,
                 jitter: Callable[[], float] = random.random) -> None:
        self.first = first
        self.cap = cap
        self.factor = factor
        self._jitter = jitter
        self._next = first

    def delay(self) -> float:
        """The next delay to wait; each call grows the one after."""
        base = self._next
        self._next = min(self.cap, self._next * self.factor)
        return base * (1.0 - 0.25 * self._jitter())

    def reset(self) -> None:
        self._next = self.first
