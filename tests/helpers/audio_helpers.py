"""Helpers for the audio engine's tests and benchmark: aiortc peers on loopback, test tracks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager
from fractions import Fraction
import threading
import time
from typing import TYPE_CHECKING, Self
from unittest.mock import patch

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
import av
import numpy as np

from custom_components.realtime_voice.audio.libpulse import Direction, PulseStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

RATE = 48000
FRAME = 960


def audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    """Wrap 960 mono int16 samples as a 48 kHz frame."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    frame.time_base = Fraction(1, RATE)
    frame.pts = pts
    return frame


def mono(frame: av.AudioFrame) -> np.ndarray:
    """Return a received frame's samples as mono int16 (first channel)."""
    data = frame.to_ndarray().reshape(-1)
    return data[:: len(frame.layout.channels)]


class ScriptedTrack(MediaStreamTrack):
    """Plays the sample arrays a test gives it, paced in real time, silence in between."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.int16)
        self._start: float | None = None
        self._pts = 0
        self.sent: list[tuple[float, int]] = []
        """(monotonic time, pts) of every frame that carried scripted audio."""

    def say(self, samples: np.ndarray) -> None:
        """Queue samples to send next."""
        self._pending = np.concatenate([self._pending, samples.astype(np.int16)])

    async def recv(self) -> av.AudioFrame:
        """Return the next 20 ms, paced by the sample counter."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._pts / RATE - time.monotonic()))
        chunk, self._pending = self._pending[:FRAME], self._pending[FRAME:]
        if chunk.size:
            self.sent.append((time.monotonic(), self._pts))
        chunk = np.pad(chunk, (0, FRAME - chunk.size))
        frame = audio_frame(chunk, self._pts)
        self._pts += FRAME
        return frame


class QueueTrack(MediaStreamTrack):
    """A stand-in for a remote track: returns the frames a test puts, as fast as they come."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[av.AudioFrame | None] = asyncio.Queue()

    async def recv(self) -> av.AudioFrame:
        """Return the next queued frame; None ends the track."""
        frame = await self.queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def put_samples(self, samples: np.ndarray) -> None:
        """Queue samples as 960-sample stereo frames, like aiortc's decoder gives."""
        for index in range(0, samples.size - FRAME + 1, FRAME):
            stereo = np.repeat(samples[index : index + FRAME], 2).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
            frame.sample_rate = RATE
            frame.pts = index
            frame.time_base = Fraction(1, RATE)
            self.queue.put_nowait(frame)


@asynccontextmanager
async def connected_peers(track: MediaStreamTrack) -> AsyncIterator[MediaStreamTrack]:
    """Send track from one aiortc peer to another over loopback; yield the received track."""
    # The harness hides the real adapters (mock_network); aioice would find no address.
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
            receiver.on("track", received.set_result)
            sender.addTrack(track)
            await sender.setLocalDescription(await sender.createOffer())
            await receiver.setRemoteDescription(sender.localDescription)
            await receiver.setLocalDescription(await receiver.createAnswer())
            await sender.setRemoteDescription(receiver.localDescription)
            async with asyncio.timeout(5):
                remote = await received
            yield remote
        finally:
            await sender.close()
            await receiver.close()


async def collect(track: MediaStreamTrack, into: list[tuple[float, np.ndarray]]) -> None:
    """Append (arrival time, mono samples) for every frame of track until it ends."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        into.append((time.monotonic(), mono(frame)))


class MonitorClock:
    """Records a PulseAudio source in 5 ms blocks on a thread, stamping each with its time.

    It tells when sound reached a device, on the same clock as the test: what parec cannot.
    """

    BLOCK = 240  # 5 ms at 48 kHz

    def __init__(self, device: str) -> None:
        self.blocks: list[tuple[float, float]] = []
        """(monotonic time the block was read, its RMS)."""
        self.samples: list[np.ndarray] = []
        self._device = device
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test monitor clock")

    def __enter__(self) -> Self:
        self._stream = PulseStream(Direction.RECORD, device=self._device, latency_ms=5)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._stream.close()

    def loud_times(self, threshold: float = 1000.0) -> list[float]:
        """Return the times of the blocks louder than threshold."""
        return [at for at, level in self.blocks if level > threshold]

    def _run(self) -> None:
        while not self._stop.is_set():
            data = np.frombuffer(self._stream.read(self.BLOCK * 2), dtype=np.int16)
            self.samples.append(data)
            self.blocks.append((time.monotonic(), rms(data)))


def rms(samples: np.ndarray) -> float:
    """Return the root mean square of int16 samples, 0 for none."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait, bounded, until condition() holds (polled every 10 ms)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the state is set by device threads
            await asyncio.sleep(0.01)
