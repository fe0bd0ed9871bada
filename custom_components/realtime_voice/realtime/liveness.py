"""Is the far peer still there? Judged by anything at all it sends, not by its audio.

aiortc never reports "disconnected": a vanished peer is noticed by ICE consent checks only after
about 30 s. A live peer sends RTCP receiver reports about our microphone's stream every second
or so even while it sends no audio itself (many WebRTC senders, pion's among them, send no RTP
while silent), so a silent peer is not a lost one; a silent conversation ends by the idle
timeout, above this package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time
from typing import Final

from aiortc import RTCPeerConnection

INTERVAL: Final = 1.0


class PeerWatchdog:
    """Calls on_lost once nothing came from the peer for `seconds`."""

    def __init__(
        self, pc: RTCPeerConnection, seconds: float, on_lost: Callable[[float], None]
    ) -> None:
        """Watch pc from now on."""
        self._pc = pc
        self._seconds = seconds
        self._on_lost = on_lost
        self._last_heard = time.monotonic()
        self._task = asyncio.create_task(self._watch(), name="realtime peer watchdog")

    def heard(self) -> None:
        """Something came from the peer (an event on the channel)."""
        self._last_heard = time.monotonic()

    async def stop(self) -> None:
        """Stop watching; safe from the watchdog's own callback too."""
        if self._task is not asyncio.current_task():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        signs: tuple[object, ...] | None = None
        while True:
            await asyncio.sleep(INTERVAL)
            now = await signs_of_life(self._pc)
            if now != signs:
                signs, self._last_heard = now, max(self._last_heard, time.monotonic())
            if (quiet := time.monotonic() - self._last_heard) > self._seconds:
                self._on_lost(quiet)
                return


async def signs_of_life(pc: RTCPeerConnection) -> tuple[object, ...]:
    """Return what changes whenever the peer sends anything on the media path.

    RTP packets received, and the time of the last RTCP report it sent (aiortc stamps its
    `remote-*` statistics when a report arrives).
    """
    signs: list[object] = []
    for transceiver in pc.getTransceivers():
        for stats in (
            *(await transceiver.receiver.getStats()).values(),
            *(await transceiver.sender.getStats()).values(),
        ):
            if stats.type == "inbound-rtp":
                signs.append(getattr(stats, "packetsReceived", 0))
            elif stats.type in ("remote-inbound-rtp", "remote-outbound-rtp"):
                signs.append(stats.timestamp)
    return tuple(signs)
