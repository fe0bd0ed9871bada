"""What the microphone and the speaker share: frames, and how device threads reach the loop.

Frames towards and from aiortc are 20 ms of 48 kHz s16; device threads hand data to the loop only
through call_soon (or a locked PcmRing); devices open and close in the executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from fractions import Fraction
import logging
from typing import TYPE_CHECKING, Final, Self

import av
import numpy as np

from .backend import FRAME_SAMPLES, SAMPLE_RATE, AudioDeviceError, AudioFormat

if TYPE_CHECKING:
    from types import TracebackType

_LOGGER = logging.getLogger(__name__)

FRAME_SECONDS: Final = FRAME_SAMPLES / SAMPLE_RATE
"""Duration of one frame, in seconds."""
AUDIBLE_PEAK: Final = 256
"""A block whose peak reaches this (-42 dBFS) counts as audible output."""
TIME_BASE: Final = Fraction(1, SAMPLE_RATE)
SILENCE: Final = bytes(FRAME_SAMPLES * 2)
"""One frame of mono digital silence."""

type DeviceLostHandler = Callable[[AudioDeviceError], None]


def call_soon[*Ts](
    loop: asyncio.AbstractEventLoop, callback: Callable[[*Ts], object], *args: *Ts
) -> None:
    """Run callback on the loop from a device thread; a closed loop means nobody listens."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        _LOGGER.debug("event loop closed; audio callback dropped")


def peak(samples: np.ndarray) -> int:
    """Return the largest magnitude of int16 samples."""
    if not samples.size:
        return 0
    # No widened copy: the extremes are enough, and -(-32768) is a Python int.
    return max(int(samples.max()), -int(samples.min()))


def layout(channels: int) -> str:
    """Return PyAV's layout name for a channel count."""
    return "mono" if channels == 1 else "stereo"


class Reframer:
    """Turns device blocks of any format into 20 ms of 48 kHz mono s16. Not threadsafe."""

    def __init__(self, source: AudioFormat) -> None:
        self._source = source
        self._resampler = (
            None
            if source == AudioFormat()
            else av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        )
        self._pending = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        """Add a device block; return the whole frames now available."""
        self._pending += self._resample(data)
        size = len(SILENCE)
        count = len(self._pending) // size
        frames = [bytes(self._pending[i * size : (i + 1) * size]) for i in range(count)]
        del self._pending[: count * size]
        return frames

    @property
    def pending_seconds(self) -> float:
        """Return how much audio waits for the next frame: the newest the device gave."""
        return len(self._pending) / 2 / SAMPLE_RATE

    def _resample(self, data: bytes) -> bytes:
        """Convert one block to 48 kHz mono."""
        if self._resampler is None:
            return data
        samples = np.frombuffer(data, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            samples, format="s16", layout=layout(self._source.channels)
        )
        frame.sample_rate = self._source.rate
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))


class ClosedOnExit:
    """`async with` closes the device: aclose() on the way out, whatever happened."""

    async def aclose(self) -> None:
        """Release the device."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
