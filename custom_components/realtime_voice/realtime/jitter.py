"""The receive jitter buffer of the assistant's audio: each Opus packet goes to the decoder at once.

aiortc 1.16's RTCRtpReceiver gives audio `JitterBuffer(capacity=16, prefetch=4)`. It releases a
frame only once four later packets have arrived, because it cannot tell a complete frame before
the next timestamp shows up: 80 ms of delay before the speaker, on every network. That delay buys
no smoothing (frames leave on packet arrival, not on a clock, so jitter passes straight through;
the speaker sink's buffer is what absorbs it), and a lost packet still stalls it until the
buffer overflows 16 packets later (aiortc issue #543).

In WebRTC audio one RTP packet is one Opus frame, so a packet can go to the decoder as soon as it
is the next in sequence. A missing packet is waited for until LOSS_PACKETS later ones are there
(a reordered packet usually is), then skipped: the speaker gets a short gap instead of a stall.
The trade-off: after a reorder or a skip, up to LOSS_PACKETS - 1 packets stay queued (one frame
leaves per packet that arrives, as in aiortc), i.e. at most 40 ms more latency, against 80 ms
always with the stock buffer.

Given a packet handler, the buffer also hands each packet straight to it, on the event loop, in
place of aiortc's path to the track: a queue to its decoder thread, then a task created on the
loop per frame (run_coroutine_threadsafe) to put the decoded frame in the track's queue. The
handler decodes where the audio goes (the speaker), the track only ends.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
from typing import Any, Final, override

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

type PacketHandler = Callable[[bytes], None]
"""Takes the assistant's Opus packets in order, on the event loop."""

_LOGGER = logging.getLogger(__name__)

CAPACITY: Final = 16
"""Packets the buffer can hold (a power of two, as aiortc asks); aiortc's audio default."""
LOSS_PACKETS: Final = 3
"""A missing packet counts as lost once a packet this many places after it has arrived."""
_RECEIVER_ATTRIBUTE: Final = "_RTCRtpReceiver__jitter_buffer"
"""Where aiortc 1.16's RTCRtpReceiver keeps its jitter buffer (a private attribute)."""


class ArrivalJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer for audio, releasing each packet as soon as it is next in order."""

    def __init__(self, on_packet: PacketHandler | None = None) -> None:
        super().__init__(capacity=CAPACITY)
        self._on_packet = on_packet

    @override
    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """Take a packet; return the next in order, or give it to the handler and return none."""
        pli, frame = super().add(packet)
        if frame is None or self._on_packet is None:
            return pli, frame
        self._on_packet(frame.data)
        return pli, None

    @property
    def _next(self) -> int:
        """Return the sequence number due next (add() has set it before it asks for a frame)."""
        origin: int = self._origin  # type: ignore[assignment]
        return origin

    @override
    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        """Return the next packet in order, if it is there; skip a hole that is too old."""
        packets: list[Any] = self._packets
        if uint16_add(sequence_number, -self._next) >= LOSS_PACKETS:
            while packets[self._next % self._capacity] is None:
                self.remove(1)
        packet = packets[self._next % self._capacity]
        if packet is None:
            return None
        self.remove(1)
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # noqa: SLF001


def play_audio_on_arrival(pc: RTCPeerConnection, on_packet: PacketHandler | None = None) -> None:
    """Give the peer's audio receivers an ArrivalJitterBuffer; call before connecting.

    With on_packet, packets go to it rather than to the remote track, which then only ends.
    aiortc has no option for this, so it replaces a private attribute; if a later aiortc moves
    it, the stock buffer stays (80 ms more latency, the track carries the audio; nothing breaks)
    and this logs why.
    """
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind != "audio":
            continue
        if not isinstance(getattr(receiver, _RECEIVER_ATTRIBUTE, None), JitterBuffer):
            _LOGGER.warning("aiortc's receiver has changed: keeping its jitter buffer (+80 ms)")
            continue
        setattr(receiver, _RECEIVER_ATTRIBUTE, ArrivalJitterBuffer(on_packet))
