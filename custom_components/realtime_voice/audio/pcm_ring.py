"""A bounded FIFO of PCM bytes between the event loop and a device thread.

Threadsafe: one lock guards every call, and no call waits for anything but that lock.
"""

from __future__ import annotations

import threading


class PcmRing:
    """Keeps at most a limit of bytes; writing more drops the oldest, reading short pads zeros."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._data = bytearray()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def write(self, data: bytes, limit: int | None = None) -> int:
        """Append data; return how many of the oldest bytes were dropped to keep within limit.

        The limit is the capacity unless given: the owner may allow more for a while.
        """
        with self._lock:
            self._data += data
            excess = max(0, len(self._data) - (self._capacity if limit is None else limit))
            del self._data[:excess]
            return excess

    def read(self, size: int) -> tuple[bytes, int]:
        """Take size bytes, padded with zeros; return them and how many were missing."""
        with self._lock:
            chunk = bytes(self._data[:size])
            del self._data[:size]
        missing = size - len(chunk)
        return chunk + bytes(missing), missing

    def peek(self) -> bytes:
        """Return a copy of everything queued, leaving it queued."""
        with self._lock:
            return bytes(self._data)

    def trim(self, keep: int) -> int:
        """Drop the oldest bytes beyond keep; return how many were dropped."""
        with self._lock:
            excess = max(0, len(self._data) - keep)
            del self._data[:excess]
            return excess

    def clear(self) -> int:
        """Drop everything; return how many bytes were dropped."""
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
            return dropped
