"""The audio backend protocol, its errors, and detection of the backends this system can load.

A backend opens device streams and moves raw s16le PCM between a device and two plain callables:
input streams push blocks to `on_block`, output streams pull blocks from `pull`. Both run on the
backend's own threads and report a failed device through `on_error`. Nothing here touches asyncio:
`microphone.py` and `speaker.py` bridge these threads to the event loop; `factory.py` loads a
backend by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

SAMPLE_RATE: Final = 48000
"""The rate of every frame exchanged with aiortc, in Hz."""
FRAME_SAMPLES: Final = 960
"""Samples per 20 ms frame at SAMPLE_RATE."""
DEFAULT_DEVICE: Final = "default"
"""Device name that means the system's default device, for every backend."""

DEVICE_TIMEOUT_SECONDS: Final = 1.0
"""A running device that moves no audio for this long is lost (PortAudio only stalls)."""
DEVICE_START_TIMEOUT_SECONDS: Final = 5.0
"""The first block may take this long: a PulseAudio source idle since start needs about 2 s."""


class BackendName(StrEnum):
    """The audio backends, as chosen in the config flow."""

    SOUNDDEVICE = "sounddevice"
    PULSE = "pulse"


class AudioError(Exception):
    """Base of every error of the audio engine."""


class AudioLibraryMissingError(AudioError):
    """The backend's native library cannot be loaded; the message names the fix."""

    def __init__(self, backend: BackendName, message: str) -> None:
        super().__init__(message)
        self.backend = backend


class AudioDeviceError(AudioError):
    """A device could not be opened, or failed while open."""


class AudioDeviceLostError(AudioDeviceError):
    """A device disappeared or stopped moving audio while a stream was open."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """The PCM format of a device stream: always interleaved signed 16-bit little endian."""

    rate: int = SAMPLE_RATE
    """Sample rate in Hz."""
    channels: int = 1
    """Interleaved channels per sample frame."""

    @property
    def bytes_per_second(self) -> int:
        """Return how many bytes one second of this format takes."""
        return self.rate * self.channels * 2


@dataclass(frozen=True, slots=True)
class AudioDevice:
    """One device a backend can open."""

    name: str
    """The name to pass as `device` when opening a stream."""
    description: str
    """What the system calls it, for people."""
    is_input: bool
    """Whether it can record."""
    is_output: bool
    """Whether it can play."""


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """What detection found out about one backend on this system."""

    name: BackendName
    """The backend."""
    devices: tuple[AudioDevice, ...] = ()
    """The devices it sees; empty when it is unavailable."""
    error: AudioError | None = None
    """Why it cannot be used here, or None when it can."""

    @property
    def available(self) -> bool:
        """Return whether the backend loads and reaches its sound server."""
        return self.error is None


type BlockHandler = Callable[[bytes], None]
"""Receives recorded s16le blocks on a device thread; must not block."""
type BlockSource = Callable[[int], bytes]
"""Returns exactly the requested number of sample frames to play, on a device thread."""
type ErrorHandler = Callable[[AudioDeviceError], None]
"""Told once, on a device thread, that the device failed; the stream then stops moving audio."""


class DeviceStream(Protocol):
    """An open device stream; close() is blocking and joins the stream's threads."""

    @property
    def format(self) -> AudioFormat:
        """Return the format the device was actually opened with."""
        ...

    @property
    def latency(self) -> float | None:
        """Return the device's latency as it last reported it, in seconds; None if unknown.

        Updated by the device thread just before each block it hands over: for playback, how
        long until the block pull returns now is heard; for recording, how long ago the first
        sample of the block given to on_block was recorded.
        """
        ...

    def close(self) -> None:
        """Stop the stream and release the device; safe to call more than once."""
        ...


class OutputDeviceStream(DeviceStream, Protocol):
    """An open playback stream."""

    def flush(self) -> None:
        """Drop what the device has queued but not played yet, soon; never blocks."""
        ...


class AudioBackend(Protocol):
    """A way to reach sound devices: PortAudio or PulseAudio. Every method blocks."""

    @property
    def name(self) -> BackendName:
        """Return which backend this is."""
        ...

    def list_devices(self) -> list[AudioDevice]:
        """Return the devices this backend can open."""
        ...

    def open_input(
        self,
        device: str | None,
        audio_format: AudioFormat,
        on_block: BlockHandler,
        on_error: ErrorHandler,
    ) -> DeviceStream:
        """Start recording; blocks of 20 ms (or what the device gives) go to on_block."""
        ...

    def open_output(
        self,
        device: str | None,
        audio_format: AudioFormat,
        pull: BlockSource,
        on_error: ErrorHandler,
    ) -> OutputDeviceStream:
        """Start playing whatever pull returns."""
        ...

    def close(self) -> None:
        """Close every stream this backend still has open."""
        ...


def is_default(device: str | None) -> bool:
    """Return whether a device name means the system default."""
    return device in {None, "", DEFAULT_DEVICE}
