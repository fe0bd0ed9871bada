"""The `pulse` backend: PulseAudio through libpulse-simple (Home Assistant OS and Container).

libpulse-simple is blocking, so each stream gets one device thread that reads or writes 20 ms
blocks. A killed stream (device unloaded, server gone) makes the blocking call fail, which the
thread reports as AudioDeviceLostError before it ends.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import threading
from typing import Final, override

from .backend import (
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
from .libpulse import Direction, PulseError, PulseLibraryMissing, PulseStream, load_library
from .pulse_devices import list_pulse_devices
from .pulse_watch import DeviceWatch

_LOGGER = logging.getLogger(__name__)

BLOCK_SECONDS: Final = FRAME_SAMPLES / SAMPLE_RATE
"""Each read and write moves this much audio, in seconds."""
RECORD_LATENCY_MS: Final = 20
"""Fragment size of record streams: the server hands over audio this often."""
PLAYBACK_BLOCK_SECONDS: Final = 0.01
"""Each write plays this much: what waits in the sink before the write that takes it."""
PLAYBACK_LATENCY_MS: Final = 30
"""Target fill of the server's playback buffer. The device thread may be late by this minus one
block (20 ms: the loop holding the GIL, a busy core) before the sink underruns; a smaller block,
not a smaller margin, is what keeps the latency low. 25 ms took 5 to 7 ms off wire→speaker but
made the sink conceal a late frame inside speech in 2 of 4 loaded bench runs (0 of 3 at 30)."""
_JOIN_SECONDS: Final = 2.0


class PulseBackend:
    """Open PulseAudio sources and sinks by name; blocking calls, run them in an executor."""

    def __init__(self) -> None:
        try:
            load_library()
        except PulseLibraryMissing as err:
            raise AudioLibraryMissingError(
                BackendName.PULSE,
                f"{err}. Install libpulse (Debian: libpulse0, Alpine: libpulse) "
                "or choose the sounddevice backend.",
            ) from err
        self._streams: set[_PulseThreadStream] = set()

    @property
    def name(self) -> BackendName:
        """Return which backend this is."""
        return BackendName.PULSE

    def list_devices(self) -> list[AudioDevice]:
        """Return the server's sources and sinks (monitors included: they can be recorded)."""
        try:
            sources, sinks = list_pulse_devices()
        except PulseError as err:
            raise AudioDeviceError(f"cannot list PulseAudio devices: {err}") from err
        return [
            AudioDevice(name, text, is_input=True, is_output=False) for name, text in sources
        ] + [AudioDevice(name, text, is_input=False, is_output=True) for name, text in sinks]

    def open_input(
        self,
        device: str | None,
        audio_format: AudioFormat,
        on_block: BlockHandler,
        on_error: ErrorHandler,
    ) -> DeviceStream:
        """Start recording from a source; on_block gets 20 ms blocks."""
        pulse = _open(Direction.RECORD, device, audio_format, RECORD_LATENCY_MS)
        return self._track(_PulseInput(pulse, device, audio_format, on_block, on_error))

    def open_output(
        self,
        device: str | None,
        audio_format: AudioFormat,
        pull: BlockSource,
        on_error: ErrorHandler,
    ) -> OutputDeviceStream:
        """Start playing on a sink what pull returns, PLAYBACK_BLOCK_SECONDS at a time."""
        pulse = _open(Direction.PLAYBACK, device, audio_format, PLAYBACK_LATENCY_MS)
        return self._track(_PulseOutput(pulse, device, audio_format, pull, on_error))

    def close(self) -> None:
        """Close every stream still open."""
        for stream in list(self._streams):
            stream.close()

    def _track[S: _PulseThreadStream](self, stream: S) -> S:
        """Start a stream's thread, then remember the stream until it closes."""
        stream.start()
        self._streams.add(stream)
        stream.on_closed = self._streams.discard
        return stream


def _open(
    direction: Direction, device: str | None, audio_format: AudioFormat, latency_ms: int
) -> PulseStream:
    """Open a PulseStream, turning PulseAudio's refusal into AudioDeviceError."""
    try:
        return PulseStream(
            direction,
            device=None if is_default(device) else device,
            rate=audio_format.rate,
            channels=audio_format.channels,
            latency_ms=latency_ms,
        )
    except PulseError as err:
        raise AudioDeviceError(
            f"cannot open PulseAudio device {device or 'default'}: {err}"
        ) from err


class _PulseThreadStream:
    """A PulseStream driven by one device thread until close() or a device failure."""

    def __init__(
        self,
        pulse: PulseStream,
        device: str | None,
        audio_format: AudioFormat,
        on_error: ErrorHandler,
    ) -> None:
        self.on_closed: Callable[[_PulseThreadStream], None] | None = None
        self._pulse = pulse
        self._device = device or "default"
        self._named = not is_default(device)
        self._format = audio_format
        self._on_error = on_error
        self._stopping = threading.Event()
        # PulseAudio moves the streams of a removed device to the fallback device, and
        # libpulse-simple cannot ask it not to, so a removed speaker would go on playing into
        # whatever is left: the watch says when a named device goes. The default device is
        # followed wherever it goes.
        self._watch: DeviceWatch | None = None
        self._block_frames = int(audio_format.rate * BLOCK_SECONDS)
        self._thread = threading.Thread(target=self._run, name=self._thread_name(), daemon=True)
        self.latency: float | None = self._server_latency()
        """See DeviceStream.latency; the device thread updates it."""

    @property
    def format(self) -> AudioFormat:
        """Return the format the stream was opened with (the server converts)."""
        return self._format

    def start(self) -> None:
        """Watch a named device, then start the device thread; raise AudioDeviceError."""
        if self._named:
            watch = DeviceWatch()
            try:
                watch.start()
            except PulseError as err:
                self._pulse.close()
                raise AudioDeviceError(
                    f"cannot watch PulseAudio device {self._device}: {err}"
                ) from err
            self._watch = watch
        self._thread.start()

    def close(self) -> None:
        """Stop the thread, wait for it, and free the stream; safe to call more than once."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_SECONDS)
        if self._thread.is_alive():
            # A stalled server blocks the thread in libpulse: freeing the stream under it would
            # crash, so leave both to the daemon thread rather than hang the caller.
            _LOGGER.warning("PulseAudio device %s did not stop in time", self._device)
            return
        self._pulse.close()
        if self._watch is not None:
            self._watch.close()
        if self.on_closed is not None:
            self.on_closed(self)

    def _run(self) -> None:
        """Move blocks until stopped; report a failure of the device once."""
        try:
            while not self._stopping.is_set():
                self._step()
                if self._watch is not None:
                    self._check_present(self._watch)
        except PulseError as err:
            if not self._stopping.is_set():
                self._on_error(
                    AudioDeviceLostError(f"PulseAudio device {self._device} failed: {err}")
                )

    def _check_present(self, watch: DeviceWatch) -> None:
        """Raise PulseError if the named device is gone (its stream was moved elsewhere)."""
        if not watch.is_present(is_source=isinstance(self, _PulseInput), name=self._device):
            raise PulseError("the device was removed")

    def _step(self) -> None:
        """Move one block."""
        raise NotImplementedError

    def _server_latency(self) -> float | None:
        """Return the server's latency of this stream in seconds, None if it cannot tell.

        For playback, how long until a sample written now is heard; for recording, how long
        ago the newest sample not yet read was recorded. libpulse interpolates it locally.
        """
        try:
            return self._pulse.latency_us() / 1_000_000
        except PulseError:
            return None

    def _thread_name(self) -> str:
        return f"realtime_voice pulse {type(self).__name__.lower()}"


class _PulseInput(_PulseThreadStream):
    """Reads 20 ms blocks and hands them to on_block."""

    def __init__(
        self,
        pulse: PulseStream,
        device: str | None,
        audio_format: AudioFormat,
        on_block: BlockHandler,
        on_error: ErrorHandler,
    ) -> None:
        super().__init__(pulse, device, audio_format, on_error)
        self._on_block = on_block
        self._block_bytes = self._block_frames * audio_format.channels * 2

    @override
    def _step(self) -> None:
        """Read one block."""
        data = self._pulse.read(self._block_bytes)
        if (server := self._server_latency()) is not None:
            self.latency = server + BLOCK_SECONDS  # the block's first sample, not its last
        self._on_block(data)


class _PulseOutput(_PulseThreadStream):
    """Writes what pull returns, 10 ms at a time; flush() drops the server's queue."""

    def __init__(
        self,
        pulse: PulseStream,
        device: str | None,
        audio_format: AudioFormat,
        pull: BlockSource,
        on_error: ErrorHandler,
    ) -> None:
        super().__init__(pulse, device, audio_format, on_error)
        self._pull = pull
        self._flush = threading.Event()
        self._block_frames = int(audio_format.rate * PLAYBACK_BLOCK_SECONDS)

    def flush(self) -> None:
        """Ask the device thread to drop the server's queue before its next write."""
        self._flush.set()

    @override
    def _step(self) -> None:
        """Write one block, flushing first if asked to."""
        if self._flush.is_set():
            self._flush.clear()
            self._pulse.flush()
        self.latency = self._server_latency()
        self._pulse.write(self._pull(self._block_frames))
