"""Opus where the audio is: encoded on the microphone's thread, decoded for the speaker.

Given an av.AudioFrame, aiortc's sender encodes it in the loop's executor (a thread hand-off
each 20 ms) and measures its level for the RTP header in a pure-Python loop over the samples on
the event loop. Given an av.Packet it only wraps it in RTP. The device thread is awake anyway
when a block arrives, so encoding there removes both from the loop and one thread from the path.
The other way, aiortc decodes in a thread of its own and hands each frame back to the loop as a
new task; decoding on the loop as the packet arrives (0.1 ms) costs less than that hand-off.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import av

from .backend import FRAME_SAMPLES, SAMPLE_RATE
from .frames import SILENCE, TIME_BASE, layout

type OpusPacket = av.Packet[Any]
"""An Opus packet outside any container stream, as aiortc's sender takes it."""

BIT_RATE: Final = 96_000
"""aiortc's own Opus bit rate: the model hears what it heard when aiortc encoded."""


class VoiceEncoder:
    """Encodes 20 ms frames of 48 kHz mono s16 into Opus packets. One thread at a time."""

    def __init__(self) -> None:
        codec = av.CodecContext.create("libopus", "w")
        codec.bit_rate = BIT_RATE
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = SAMPLE_RATE
        codec.time_base = TIME_BASE
        codec.options = {"application": "voip"}
        self._codec = codec

    def encode(self, frame: bytes) -> bytes:
        """Return the Opus packet for one frame (libopus gives it at once, one per frame)."""
        audio = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        audio.planes[0].update(frame)
        audio.sample_rate = SAMPLE_RATE
        return b"".join(bytes(packet) for packet in self._codec.encode(audio))


@functools.cache
def silent_packet() -> bytes:
    """Return an Opus packet of 20 ms of silence, sent when the device is late or gated.

    Any Opus decoder takes it: a packet does not depend on the encoder that made it.
    """
    encoder = VoiceEncoder()
    # The first packets of a fresh encoder carry its start-up; a later one is plain silence.
    return [encoder.encode(SILENCE) for _ in range(3)][-1]


def opus_decoder(channels: int) -> av.AudioCodecContext:
    """Return a decoder of 48 kHz Opus into s16 with the given number of channels."""
    codec = av.CodecContext.create("libopus", "r")
    codec.format = "s16"
    codec.layout = layout(channels)
    codec.sample_rate = SAMPLE_RATE
    return codec


def packet(payload: bytes, pts: int) -> OpusPacket:
    """Wrap an Opus payload for aiortc's sender, stamped with its first sample's number."""
    wrapped = av.Packet(payload)
    wrapped.pts = pts
    wrapped.time_base = TIME_BASE
    return wrapped
