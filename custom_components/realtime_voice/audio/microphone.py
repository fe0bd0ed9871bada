"""The microphone as an aiortc track: what a device records, or silence when it must not send.

The device thread hands blocks to the loop through call_soon; opening and closing run in the
executor. What recv() gives aiortc is 20 ms of 48 kHz mono with pts from a sample counter: an
av.AudioFrame of s16, or, opened with encode=True as a session does, an av.Packet of Opus that
the device thread encoded (opus.py says why).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
import logging
import time
from typing import TYPE_CHECKING, Final, Self, override

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
import av
import numpy as np

from .backend import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioBackend,
    AudioDeviceError,
    AudioFormat,
    DeviceStream,
)
from .frames import (
    FRAME_SECONDS,
    SILENCE,
    TIME_BASE,
    ClosedOnExit,
    DeviceLostHandler,
    Reframer,
    call_soon,
)
from .opus import OpusPacket, VoiceEncoder, packet, silent_packet

if TYPE_CHECKING:
    from .echo import MicrophoneProcessor
    from .gate import EchoGate

_LOGGER = logging.getLogger(__name__)

MIC_QUEUE_FRAMES: Final = 5
"""Frames (20 ms each) the microphone keeps while nobody reads; the oldest go first."""
MIC_STALL_GRACE_SECONDS: Final = 0.04
"""How late a device block may be before the track sends silence in its place."""


@dataclass(frozen=True, slots=True)
class MicrophoneStats:
    """What the microphone track did so far, for diagnostics."""

    frames: int
    """Frames (20 ms) returned to aiortc."""
    stalled_frames: int
    """Frames of silence sent because the device was late."""
    gated_frames: int
    """Frames of silence sent because the echo gate was closed."""
    dropped_blocks: int
    """20 ms blocks dropped, oldest first, because nobody read them in time."""


class MicrophoneTrack(ClosedOnExit, MediaStreamTrack):
    """An aiortc audio track that sends what a device records, or silence when it must not.

    Open with `await MicrophoneTrack.open(backend, device)`, close with `await aclose()` (or use
    `async with`). recv() returns a device block as soon as one is there; when the device is late
    by more than MIC_STALL_GRACE_SECONDS it returns silence instead, paced by the sample counter
    like aiortc's AudioStreamTrack, so RTP never stalls.
    """

    kind = "audio"

    def __init__(
        self,
        *,
        gate: EchoGate | None = None,
        processor: MicrophoneProcessor | None = None,
        on_device_lost: DeviceLostHandler | None = None,
        encode: bool = False,
    ) -> None:
        super().__init__()
        self.gate = gate
        self.processor = processor
        """Echo cancellation and the rest, run on the device thread as frames come."""
        self._encoder = VoiceEncoder() if encode else None
        self._silence = silent_packet() if encode else SILENCE
        self.error: AudioDeviceError | None = None
        """Why the device stopped, once it has."""
        self._on_device_lost = on_device_lost
        self._event_loop = asyncio.get_running_loop()
        self._blocks: deque[bytes] = deque()
        self._arrived = asyncio.Event()
        self._stream: DeviceStream | None = None
        self._start: float | None = None
        self._pts = 0
        self._frames = self._stalled = self._gated = self._dropped = 0

    @classmethod
    async def open(
        cls,
        backend: AudioBackend,
        device: str | None = None,
        *,
        device_format: AudioFormat = AudioFormat(),  # noqa: B008 - frozen value object
        gate: EchoGate | None = None,
        processor: MicrophoneProcessor | None = None,
        on_device_lost: DeviceLostHandler | None = None,
        encode: bool = False,
    ) -> Self:
        """Open the input device in the executor and return the running track.

        With encode, recv() returns Opus packets encoded on the device thread, not frames.
        """
        track = cls(gate=gate, processor=processor, on_device_lost=on_device_lost, encode=encode)
        track._stream = await track._event_loop.run_in_executor(
            None, track._open, backend, device, device_format
        )
        return track

    @property
    def stats(self) -> MicrophoneStats:
        """Return the counters so far."""
        return MicrophoneStats(self._frames, self._stalled, self._gated, self._dropped)

    @override
    async def recv(self) -> av.AudioFrame | OpusPacket:
        """Return the next 20 ms frame: the device's, or silence if it is late or gated."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        block = await self._next_block(self._start + self._pts / SAMPLE_RATE)
        if self.readyState != "live":
            raise MediaStreamError
        if block is None:
            self._stalled += 1
            block = self._silence
        elif self.gate is not None and not self.gate.is_open:
            self._gated += 1
            block = self._silence
        return self._frame(block) if self._encoder is None else self._packet(block)

    async def aclose(self) -> None:
        """End the track and close the device (in the executor); safe to call more than once."""
        self.stop()
        stream, self._stream = self._stream, None
        if stream is not None:
            await self._event_loop.run_in_executor(None, stream.close)

    @override
    def stop(self) -> None:
        """End the track (aiortc stops sending); aclose() also releases the device."""
        super().stop()
        self._arrived.set()

    def _open(self, backend: AudioBackend, device: str | None, fmt: AudioFormat) -> DeviceStream:
        """Open the device stream; runs in the executor."""
        # The reframer needs the format the device really opened with, known only once
        # open_input returns; blocks before that (there should be none) are dropped.
        opened: list[tuple[DeviceStream, Reframer]] = []

        def on_block(data: bytes) -> None:
            for stream, reframer in opened:
                recorded_at = time.monotonic() - (stream.latency or 0.0)
                block_end = recorded_at + len(data) / stream.format.bytes_per_second
                for frame in self._processed(reframer.push(data), block_end, reframer):
                    encoded = frame if self._encoder is None else self._encoder.encode(frame)
                    call_soon(self._event_loop, self._deliver, encoded)

        def on_error(err: AudioDeviceError) -> None:
            call_soon(self._event_loop, self._device_failed, err)

        stream = backend.open_input(device, fmt, on_block, on_error)
        opened.append((stream, Reframer(stream.format)))
        return stream

    def _processed(self, frames: list[bytes], block_end: float, reframer: Reframer) -> list[bytes]:
        """Run the processor on new frames (device thread), given when the block ended."""
        if self.processor is None or not frames:
            return frames
        # The frames are the oldest of what was recorded up to block_end; the newest waits.
        first = block_end - reframer.pending_seconds - len(frames) * FRAME_SECONDS
        return [
            self.processor.process(frame, first + index * FRAME_SECONDS)
            for index, frame in enumerate(frames)
        ]

    async def _next_block(self, due: float) -> bytes | None:
        """Wait for the device's next block until due plus the grace; None if it did not come."""
        deadline = due + MIC_STALL_GRACE_SECONDS
        while not self._blocks and self.readyState == "live":
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return None
        if not self._blocks:
            return None
        # The device is the clock: when a block comes early, move the schedule with it, so a
        # later stall is noticed after the grace, not after the head start plus the grace.
        self._start = min(self._start or 0.0, time.monotonic() - self._pts / SAMPLE_RATE)
        return self._blocks.popleft()

    def _frame(self, block: bytes) -> av.AudioFrame:
        """Wrap a block as the next frame and advance the sample counter."""
        samples = np.frombuffer(block, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = TIME_BASE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        self._frames += 1
        return frame

    def _packet(self, payload: bytes) -> OpusPacket:
        """Wrap an Opus payload as the next packet and advance the sample counter."""
        wrapped = packet(payload, self._pts)
        self._pts += FRAME_SAMPLES
        self._frames += 1
        return wrapped

    def _deliver(self, block: bytes) -> None:
        """Queue a block from the device (loop thread), dropping the oldest when full."""
        if len(self._blocks) >= MIC_QUEUE_FRAMES:
            self._blocks.popleft()
            self._dropped += 1
        self._blocks.append(block)
        self._arrived.set()

    def _device_failed(self, err: AudioDeviceError) -> None:
        """End the track because the device failed, and tell the owner."""
        if self.error is not None:
            return
        self.error = err
        _LOGGER.warning("Microphone lost: %s", err)
        self.stop()
        if self._on_device_lost is not None:
            self._on_device_lost(err)
