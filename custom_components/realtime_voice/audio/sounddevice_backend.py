"""The `sounddevice` backend: PortAudio (HA Core in a venv on Raspberry Pi OS, desktops).

Streams run in PortAudio's callback mode, so no Python thread blocks in the driver. PortAudio
does not report a device that disappears: through ALSA's pulse plugin its callbacks just stop
(recording) or stall for about 2 s and then resume on another device (playback). A watchdog
thread per stream therefore treats DEVICE_TIMEOUT_SECONDS without a callback as a lost device,
and the stream goes silent from then on.
"""

from __future__ import annotations

from collections.abc import Buffer, Callable
from contextlib import suppress
import threading
import time
from types import ModuleType
from typing import Any, Final, Protocol, cast

from .backend import (
    DEVICE_START_TIMEOUT_SECONDS,
    DEVICE_TIMEOUT_SECONDS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioDevice,
    AudioDeviceError,
    AudioDeviceLostError,
    AudioFormat,
    AudioLibraryMissingError,
    BackendName,
    BlockHandler,
    BlockSource,
    DeviceStream,
    ErrorHandler,
    OutputDeviceStream,
    is_default,
)

LATENCY: Final = "low"
"""PortAudio's suggested latency: the device's low-latency setting (40 ms through pulse)."""
MAX_PLAUSIBLE_LATENCY_SECONDS: Final = 1.0
"""A latency PortAudio reports beyond this is a broken time stamp, not a device."""
_WATCH_INTERVAL_SECONDS: Final = 0.1
_RUNNING_AFTER_CALLBACKS: Final = 25
"""Callbacks before a stream counts as running. Through ALSA's pulse plugin a new stream makes a
few callbacks to prefill, then none for up to 2 s (seen on PulseAudio null sinks); only a stream
past that start is held to DEVICE_TIMEOUT_SECONDS."""


class _NativeStream(Protocol):
    """The part of a sounddevice stream used here."""

    latency: float

    def start(self) -> None: ...
    def close(self, ignore_errors: bool = True) -> None: ...


type _Factory = Callable[..., _NativeStream]
type _Callback = Callable[..., None]


def _import_sounddevice() -> ModuleType:
    """Import sounddevice, which loads PortAudio at import time and raises OSError without it."""
    try:
        import sounddevice  # noqa: PLC0415 - lazily: its import fails without PortAudio
    except OSError as err:
        raise AudioLibraryMissingError(
            BackendName.SOUNDDEVICE,
            f"PortAudio cannot be loaded ({err}). Install it (Debian and Raspberry Pi OS: "
            "apt install libportaudio2) or choose the pulse backend.",
        ) from err
    return cast("ModuleType", sounddevice)


class SoundDeviceBackend:
    """Open PortAudio devices by name or index; blocking calls, run them in an executor."""

    def __init__(self) -> None:
        self._sd = _import_sounddevice()
        self._streams: set[_PortAudioStream] = set()

    @property
    def name(self) -> BackendName:
        """Return which backend this is."""
        return BackendName.SOUNDDEVICE

    def list_devices(self) -> list[AudioDevice]:
        """Return PortAudio's devices."""
        try:
            devices = self._sd.query_devices()
        except self._sd.PortAudioError as err:
            raise AudioDeviceError(f"cannot list PortAudio devices: {err}") from err
        return [
            AudioDevice(
                str(info["name"]),
                f"{info['name']} ({self._sd.query_hostapis(info['hostapi'])['name']})",
                int(info["max_input_channels"]) > 0,
                int(info["max_output_channels"]) > 0,
            )
            for info in devices
        ]

    def open_input(
        self,
        device: str | None,
        audio_format: AudioFormat,
        on_block: BlockHandler,
        on_error: ErrorHandler,
    ) -> DeviceStream:
        """Start recording; on_block gets 20 ms blocks in the format the device opened with."""
        stream = _PortAudioStream(device, on_error, on_closed=self._streams.discard)

        def callback(indata: Buffer, _frames: int, timing: Any, _status: object) -> None:
            if stream.alive():
                stream.measure(timing.currentTime - timing.inputBufferAdcTime)
                on_block(bytes(indata))

        return self._start(
            stream,
            self._sd.RawInputStream,
            kind="input",
            device=device,
            audio_format=audio_format,
            callback=callback,
        )

    def open_output(
        self,
        device: str | None,
        audio_format: AudioFormat,
        pull: BlockSource,
        on_error: ErrorHandler,
    ) -> OutputDeviceStream:
        """Start playing what pull returns, from PortAudio's callback."""
        stream = _PortAudioStream(device, on_error, on_closed=self._streams.discard)

        def callback(outdata: memoryview, frames: int, timing: Any, _status: object) -> None:
            if stream.alive():
                stream.measure(timing.outputBufferDacTime - timing.currentTime)
                outdata[:] = pull(frames)
            else:
                outdata[:] = bytes(len(outdata))

        return self._start(
            stream,
            self._sd.RawOutputStream,
            kind="output",
            device=device,
            audio_format=audio_format,
            callback=callback,
        )

    def close(self) -> None:
        """Close every stream still open."""
        for stream in list(self._streams):
            stream.close()

    def _start(
        self,
        stream: _PortAudioStream,
        factory: _Factory,
        *,
        kind: str,
        device: str | None,
        audio_format: AudioFormat,
        callback: _Callback,
    ) -> _PortAudioStream:
        """Open the PortAudio stream (falling back to the device's own format) and start it."""
        name = None if is_default(device) else device
        try:
            native, opened = self._open(
                factory, kind, name, audio_format, stream.beat_then(callback)
            )
            stream.attach(native, opened)
        # sounddevice raises ValueError for a name that matches no device, or several.
        except (self._sd.PortAudioError, ValueError) as err:
            raise AudioDeviceError(
                f"cannot open PortAudio device {device or 'default'}: {err}"
            ) from err
        self._streams.add(stream)
        return stream

    def _open(
        self,
        factory: _Factory,
        kind: str,
        device: str | None,
        audio_format: AudioFormat,
        callback: _Callback,
    ) -> tuple[_NativeStream, AudioFormat]:
        """Open at the asked format or, if the device refuses it, at its default format."""
        info = self._sd.query_devices(device, kind)
        native = AudioFormat(
            int(info["default_samplerate"]), min(2, int(info[f"max_{kind}_channels"]))
        )
        formats = list(dict.fromkeys((audio_format, native)))  # the device's own, if other
        for candidate in formats[:-1]:
            with suppress(self._sd.PortAudioError):
                return self._open_as(factory, device, candidate, callback), candidate
        return self._open_as(factory, device, formats[-1], callback), formats[-1]

    def _open_as(
        self,
        factory: _Factory,
        device: str | None,
        audio_format: AudioFormat,
        callback: _Callback,
    ) -> _NativeStream:
        """Open and start one PortAudio stream."""
        native = factory(
            device=device,
            samplerate=audio_format.rate,
            channels=audio_format.channels,
            dtype="int16",
            blocksize=audio_format.rate * FRAME_SAMPLES // SAMPLE_RATE,
            latency=LATENCY,
            callback=callback,
        )
        try:
            native.start()
        except BaseException:
            native.close()
            raise
        return native


class _PortAudioStream:
    """A started PortAudio stream plus the watchdog that notices when it stops calling back."""

    def __init__(
        self,
        device: str | None,
        on_error: ErrorHandler,
        *,
        on_closed: Callable[[_PortAudioStream], None],
    ) -> None:
        self._on_closed = on_closed
        self._device = device or "default"
        self._on_error = on_error
        self._native: _NativeStream | None = None
        self._format = AudioFormat()
        self._last_beat: float | None = None
        self.latency: float | None = None
        """See DeviceStream.latency: PortAudio's time stamps, or the latency it opened with."""
        self._beats = 0
        self._failed = False
        self._stopping = threading.Event()
        self._watchdog = threading.Thread(
            target=self._watch, name="realtime_voice portaudio watchdog", daemon=True
        )

    @property
    def format(self) -> AudioFormat:
        """Return the format the device was opened with."""
        return self._format

    def beat_then(self, callback: _Callback) -> _Callback:
        """Wrap a PortAudio callback so each call proves the device alive."""

        def beating(*args: object) -> None:
            self._last_beat = time.monotonic()
            self._beats += 1
            callback(*args)

        return beating

    def measure(self, seconds: float) -> None:
        """Take the latency from a callback's time stamps, when the host API gives real ones.

        Through ALSA's pulse plugin the stamps may be zero: the stream keeps the latency it
        opened with then.
        """
        if 0.0 < seconds < MAX_PLAUSIBLE_LATENCY_SECONDS:
            self.latency = seconds

    def alive(self) -> bool:
        """Return whether audio should still move (no failure was reported)."""
        return not self._failed

    def attach(self, native: _NativeStream, audio_format: AudioFormat) -> None:
        """Take the opened stream and start watching it."""
        self._native = native
        self._format = audio_format
        if self.latency is None and 0.0 < native.latency < MAX_PLAUSIBLE_LATENCY_SECONDS:
            self.latency = native.latency
        self._watchdog.start()

    def flush(self) -> None:
        """Nothing to do: the caller empties the ring the callback reads from.

        PortAudio's own buffer (LATENCY) still plays out; abort() and start() would drop it but
        block, and take longer than the audio they save.
        """

    def close(self) -> None:
        """Stop the watchdog, then stop and close the PortAudio stream; idempotent."""
        self._stopping.set()
        if self._watchdog.is_alive():
            self._watchdog.join()
        if self._native is not None:
            self._native.close(ignore_errors=True)
            self._native = None
            self._on_closed(self)

    def _watch(self) -> None:
        """Report the device lost when callbacks stop for longer than the timeout."""
        started = time.monotonic()
        while not self._stopping.wait(_WATCH_INTERVAL_SECONDS):
            last = self._last_beat
            silent = time.monotonic() - (started if last is None else last)
            running = self._beats >= _RUNNING_AFTER_CALLBACKS
            if silent > (DEVICE_TIMEOUT_SECONDS if running else DEVICE_START_TIMEOUT_SECONDS):
                self._failed = True
                self._on_error(
                    AudioDeviceLostError(
                        f"PortAudio device {self._device} moved no audio for {silent:.1f} s"
                    )
                )
                return
