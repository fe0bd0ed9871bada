"""The microphone as an aiortc track, and the sink that plays the remote track on the speaker.

Device threads (the backends') hand data to the loop only through call_soon_threadsafe
(microphone) or a locked PcmRing (speaker); opening and closing devices runs in the executor.
Frames towards aiortc are 20 ms of 48 kHz mono s16 with pts from a sample counter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Final, Self, override

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
    OutputDeviceStream,
)
from .pcm_ring import PcmRing

if TYPE_CHECKING:
    from types import TracebackType

    from .echo import EchoReference, MicrophoneProcessor
    from .gate import EchoGate

_LOGGER = logging.getLogger(__name__)

FRAME_SECONDS: Final = FRAME_SAMPLES / SAMPLE_RATE
"""Duration of one frame, in seconds."""
MIC_QUEUE_FRAMES: Final = 5
"""Frames (20 ms each) the microphone keeps while nobody reads; the oldest go first."""
MIC_STALL_GRACE_SECONDS: Final = 0.04
"""How late a device block may be before the track sends silence in its place."""
SPEAKER_BUFFER_SECONDS: Final = 0.2
"""Audio the speaker sink holds ahead of the device at most; the oldest goes first."""
SPEAKER_TARGET_SECONDS: Final = 0.02
"""Backlog above this is trimmed by skipping silent frames: the remote sends silence between
turns, so a backlog left by a device that started late or a burst goes away without a sound.

The backlog settles at this level, so it is latency the speaker always has; it is also the
network jitter absorbed without a gap once the remote has been silent (a late frame leaves a
20 ms gap and raises the backlog until the next silence). One frame: scripts/bench measured
40 ms of the 80 ms from decoded to heard here with 0.04."""
STEADY_NETWORK_SECONDS: Final = 10.0
"""Speech that starts behind queued silence skips that silence, unless a frame came late this
recently: on a steady network the backlog only delays the answer, on a jittery one it is the
cushion that keeps speech free of gaps."""
STALE_AUDIO_SECONDS: Final = 0.1
"""After flush(), audible frames still arriving are dropped until the remote's silence comes, for
at most this long: they were on their way before the server cleared its audio (barge-in)."""
AUDIBLE_PEAK: Final = 256
"""A block whose peak reaches this (-42 dBFS) counts as audible output."""
PLAYOUT_HANGOVER_SECONDS: Final = 0.15
"""Inaudible output for this long ends "playing", so pauses between words do not."""

_TIME_BASE: Final = Fraction(1, SAMPLE_RATE)
_SILENCE: Final = bytes(FRAME_SAMPLES * 2)

type DeviceLostHandler = Callable[[AudioDeviceError], None]
type PlayoutListener = Callable[[bool], None]


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


@dataclass(frozen=True, slots=True)
class SpeakerStats:
    """What the speaker sink did so far, for diagnostics."""

    frames: int
    """Frames (20 ms) received from the remote track."""
    played_ms: float
    """Audio the device has taken from the sink so far, silence included, in milliseconds."""
    underruns: int
    """Times the device asked for audio the sink did not have yet, after having had some."""
    dropped_ms: float
    """Audio dropped, oldest first, because the buffer was full, in milliseconds."""
    skipped_silence_ms: float
    """Silence skipped to catch up with a backlog or to start speech sooner, in milliseconds."""
    flushes: int
    """Times flush() emptied the buffer."""
    stale_ms: float = 0.0
    """Audio dropped after a flush because it was sent before it, in milliseconds."""


def _call_soon[*Ts](
    loop: asyncio.AbstractEventLoop, callback: Callable[[*Ts], object], *args: *Ts
) -> None:
    """Run callback on the loop from a device thread; a closed loop means nobody listens."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        _LOGGER.debug("event loop closed; audio callback dropped")


def _peak(samples: np.ndarray) -> int:
    """Return the largest magnitude of int16 samples."""
    return int(np.abs(samples.astype(np.int32)).max(initial=0))


def _layout(channels: int) -> str:
    """Return PyAV's layout name for a channel count."""
    return "mono" if channels == 1 else "stereo"


class _Reframer:
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
        size = len(_SILENCE)
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
            samples, format="s16", layout=_layout(self._source.channels)
        )
        frame.sample_rate = self._source.rate
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))


class _ClosedOnExit:
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


class MicrophoneTrack(_ClosedOnExit, MediaStreamTrack):
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
    ) -> None:
        super().__init__()
        self.gate = gate
        self.processor = processor
        """Echo cancellation and the rest, run on the device thread as frames come."""
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
    ) -> Self:
        """Open the input device in the executor and return the running track."""
        track = cls(gate=gate, processor=processor, on_device_lost=on_device_lost)
        track._stream = await track._event_loop.run_in_executor(
            None, track._open, backend, device, device_format
        )
        return track

    @property
    def stats(self) -> MicrophoneStats:
        """Return the counters so far."""
        return MicrophoneStats(self._frames, self._stalled, self._gated, self._dropped)

    @override
    async def recv(self) -> av.AudioFrame:
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
            block = _SILENCE
        elif self.gate is not None and not self.gate.is_open:
            self._gated += 1
            block = _SILENCE
        return self._frame(block)

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
        opened: list[tuple[DeviceStream, _Reframer]] = []

        def on_block(data: bytes) -> None:
            for stream, reframer in opened:
                recorded_at = time.monotonic() - (stream.latency or 0.0)
                block_end = recorded_at + len(data) / stream.format.bytes_per_second
                for frame in self._processed(reframer.push(data), block_end, reframer):
                    _call_soon(self._event_loop, self._deliver, frame)

        def on_error(err: AudioDeviceError) -> None:
            _call_soon(self._event_loop, self._device_failed, err)

        stream = backend.open_input(device, fmt, on_block, on_error)
        opened.append((stream, _Reframer(stream.format)))
        return stream

    def _processed(self, frames: list[bytes], block_end: float, reframer: _Reframer) -> list[bytes]:
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
        frame.time_base = _TIME_BASE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        self._frames += 1
        return frame

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


class SpeakerSink(_ClosedOnExit):
    """Plays a remote aiortc audio track on a device through a small bounded buffer.

    Open with `await SpeakerSink.open(backend, device)`, run `await sink.play(track)` as a task
    (it returns when the track ends and raises AudioDeviceError if the device fails), call
    flush() on barge-in, and `await aclose()` at the end.
    """

    def __init__(
        self,
        *,
        echo_reference: EchoReference | None = None,
        on_device_lost: DeviceLostHandler | None = None,
    ) -> None:
        self.error: AudioDeviceError | None = None
        """Why the device stopped, once it has."""
        self._echo_reference = echo_reference
        self._on_device_lost = on_device_lost
        self._event_loop = asyncio.get_running_loop()
        self._listeners: list[PlayoutListener] = []
        self._stream: OutputDeviceStream | None = None
        self._format = AudioFormat()
        self._ring = PcmRing(0)
        self._player: asyncio.Task[Any] | None = None
        self._player_interrupted = False
        self._playing = False
        self._stale_until = 0.0
        # Written by the device thread only.
        self._fed = False
        self._late_at = -STEADY_NETWORK_SECONDS
        self._audible_at = 0.0
        self._thread_playing = False
        self._frames = self._underruns = self._dropped_bytes = self._flushes = 0
        self._pulled_bytes = self._skipped_bytes = self._stale_bytes = 0

    @classmethod
    async def open(
        cls,
        backend: AudioBackend,
        device: str | None = None,
        *,
        device_format: AudioFormat = AudioFormat(),  # noqa: B008 - frozen value object
        echo_reference: EchoReference | None = None,
        on_device_lost: DeviceLostHandler | None = None,
    ) -> Self:
        """Open the output device in the executor and return the sink, playing silence.

        With an echo reference, every block the device takes is added to it as the far end.
        """
        sink = cls(echo_reference=echo_reference, on_device_lost=on_device_lost)
        sink._stream = await sink._event_loop.run_in_executor(
            None, sink._open, backend, device, device_format
        )
        return sink

    @property
    def is_playing(self) -> bool:
        """Return whether audible output is reaching the device."""
        return self._playing

    @property
    def latency(self) -> float | None:
        """Return the device's output latency in seconds, None if it cannot tell."""
        return self._stream.latency if self._stream is not None else None

    @property
    def queued_seconds(self) -> float:
        """Return how much audio waits in the sink for the device."""
        return len(self._ring) / self._format.bytes_per_second

    @property
    def stats(self) -> SpeakerStats:
        """Return the counters so far."""
        rate = self._format.bytes_per_second / 1000
        return SpeakerStats(
            self._frames,
            self._pulled_bytes / rate,
            self._underruns,
            self._dropped_bytes / rate,
            self._skipped_bytes / rate,
            self._flushes,
            self._stale_bytes / rate,
        )

    def add_playout_listener(self, listener: PlayoutListener) -> Callable[[], None]:
        """Call listener(playing) on the loop when audible output starts or stops."""
        self._listeners.append(listener)
        return functools.partial(self._listeners.remove, listener)

    async def play(self, track: MediaStreamTrack) -> None:
        """Consume the remote track until it ends, as soon as each frame is decoded.

        A device failure interrupts the wait for the next frame by cancelling this task, which
        then raises the device's error. recv() is awaited here, never in a task of its own: a
        track that ends as the device fails leaves no exception that nobody retrieves.
        """
        if self.error is not None:
            raise self.error
        resampler = av.AudioResampler(
            format="s16", layout=_layout(self._format.channels), rate=self._format.rate
        )
        self._player = asyncio.current_task()
        try:
            while (frame := await self._next_frame(track)) is not None:
                if isinstance(frame, av.AudioFrame):
                    self._write(resampler.resample(frame))
        finally:
            self._player = None

    async def _next_frame(self, track: MediaStreamTrack) -> object:
        """Return the track's next frame, None once it ends; raise if the device fails first."""
        try:
            return await track.recv()
        except MediaStreamError:
            return None
        except asyncio.CancelledError:
            if (error := self.error) is not None and self._only_interrupted():
                raise error from None
            raise

    def _only_interrupted(self) -> bool:
        """Return whether the device failure alone cancelled the player, not its owner too."""
        player = asyncio.current_task()
        if not self._player_interrupted or player is None:
            return False
        self._player_interrupted = False
        return player.uncancel() == 0

    def flush(self) -> None:
        """Drop everything queued for the speaker, in the sink and in the device: silence now.

        Audio already on its way (in the network, the receiver, the decoder) is dropped as it
        arrives, until the remote's silence or for at most STALE_AUDIO_SECONDS.
        """
        self._ring.clear()
        self._stale_until = time.monotonic() + STALE_AUDIO_SECONDS
        self._flushes += 1
        if self._stream is not None:
            self._stream.flush()

    async def aclose(self) -> None:
        """Close the device (in the executor); safe to call more than once."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await self._event_loop.run_in_executor(None, stream.close)
        self._set_playing(playing=False)

    def _open(
        self, backend: AudioBackend, device: str | None, fmt: AudioFormat
    ) -> OutputDeviceStream:
        """Open the device stream; runs in the executor."""
        self._format = fmt
        self._ring = PcmRing(int(fmt.bytes_per_second * SPEAKER_BUFFER_SECONDS))

        def on_error(err: AudioDeviceError) -> None:
            _call_soon(self._event_loop, self._device_failed, err)

        stream = backend.open_output(device, fmt, self._pull, on_error)
        self._format = stream.format
        return stream

    def _write(self, frames: list[av.AudioFrame]) -> None:
        """Queue converted frames for the device, skipping silence while behind."""
        target = self._format.bytes_per_second * SPEAKER_TARGET_SECONDS
        for frame in frames:
            self._frames += 1
            samples = frame.to_ndarray()
            if self._stale_until and self._drop_stale(samples):
                continue
            if _peak(samples) < AUDIBLE_PEAK:
                if len(self._ring) > target:
                    self._skipped_bytes += samples.nbytes
                    continue
            elif self._ring and time.monotonic() - self._late_at > STEADY_NETWORK_SECONDS:
                self._skip_queued_silence()
            self._dropped_bytes += self._ring.write(samples.tobytes())

    def _skip_queued_silence(self) -> None:
        """Let speech start now rather than behind the silence queued before it."""
        if _peak(np.frombuffer(self._ring.peek(), dtype=np.int16)) < AUDIBLE_PEAK:
            # Only the device thread takes from the ring meanwhile, so no speech is lost.
            self._skipped_bytes += self._ring.clear()

    def _drop_stale(self, samples: np.ndarray) -> bool:
        """Return whether a frame after a flush is stale; silence or time ends the dropping."""
        if _peak(samples) < AUDIBLE_PEAK or time.monotonic() >= self._stale_until:
            self._stale_until = 0.0
            return False
        self._stale_bytes += samples.nbytes
        return True

    def _pull(self, sample_frames: int) -> bytes:
        """Give the device its next block (device thread): queued audio, or silence."""
        data, missing = self._ring.read(sample_frames * self._format.channels * 2)
        if missing and self._fed:
            self._underruns += 1
            self._late_at = time.monotonic()
        self._fed = not missing
        self._pulled_bytes += len(data)
        self._follow_playout(data)
        if self._echo_reference is not None and (latency := self.latency) is not None:
            self._echo_reference.played(data, self._format, latency)
        return data

    def _follow_playout(self, data: bytes) -> None:
        """Notice audible output starting or stopping (device thread)."""
        now = time.monotonic()
        if _peak(np.frombuffer(data, dtype=np.int16)) >= AUDIBLE_PEAK:
            self._audible_at = now
            playing = True
        else:
            playing = self._thread_playing and now - self._audible_at < PLAYOUT_HANGOVER_SECONDS
        if playing != self._thread_playing:
            self._thread_playing = playing
            _call_soon(self._event_loop, self._set_playing, playing)

    def _set_playing(self, playing: bool) -> None:
        """Publish the playout state (loop thread)."""
        if playing == self._playing:
            return
        self._playing = playing
        for listener in list(self._listeners):
            listener(playing)

    def _device_failed(self, err: AudioDeviceError) -> None:
        """Stop playing because the device failed, and tell the owner."""
        if self.error is not None:
            return
        self.error = err
        _LOGGER.warning("Speaker lost: %s", err)
        if self._player is not None:
            self._player_interrupted = True
            self._player.cancel("the speaker failed")
        self._set_playing(playing=False)
        if self._on_device_lost is not None:
            self._on_device_lost(err)
