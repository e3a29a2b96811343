"""Client frames held while the upstream room is being reconnected: bounded by bytes."""

from __future__ import annotations

from collections import deque


class HeldOverflow(Exception):
    """Holding one more frame would pass the byte limit."""


class HeldFrames:
    """A FIFO of frames whose total size never passes ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._frames: deque[bytes] = deque()
        self.size = 0

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, frame: bytes) -> None:
        """Hold ``frame``; raises :class:`HeldOverflow` (holding nothing more) past the limit."""
        if self.size + len(frame) > self.limit:
            raise HeldOverflow(f"{self.size + len(frame)} bytes held, more than {self.limit}")
        self._frames.append(frame)
        self.size += len(frame)

    def take(self) -> list[bytes]:
        """Every held frame, oldest first; the buffer is empty afterwards."""
        out = list(self._frames)
        self._frames.clear()
        self.size = 0
        return out
