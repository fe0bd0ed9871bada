"""The speaker: plays the assistant's audio on a device through a small bounded buffer.

The audio comes as Opus packets (write_opus, decoded here on the loop as they arrive) or as the
frames of an aiortc track (play). The device thread takes it from the Playout (a locked buffer
with the timing rules); opening and closing run in the executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Final, Self

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
import av
import numpy as np

from .backend import SAMPLE_RATE, AudioBackend, AudioDeviceError, AudioFormat, OutputDeviceStream
from .frames import AUDIBLE_PEAK, ClosedOnExit, DeviceLostHandler, call_soon, layout, peak
from .opus import opus_decoder
from .playout import Playout

if TYPE_CHECKING:
    from .echo import EchoReference

_LOGGER = logging.getLogger(__name__)

PLAYOUT_HANGOVER_SECONDS: Final = 0.15
"""Inaudible output for this long ends "playing", so pauses between words do not."""

type PlayoutListener = Callable[[bool], None]


@dataclass(frozen=True, slots=True)
class SpeakerStats:
    """What the speaker sink did so far, for diagnostics; audio in milliseconds."""

    frames: int
    """Frames (20 ms) of the assistant's audio received: packets decoded, or track frames."""
    played_ms: float
    """Audio the device has taken from the sink so far, silence included."""
    underruns: int
    """Times the device asked for audio the sink did not have yet, after having had some."""
    dropped_ms: float
    """Audio dropped, oldest first, because the buffer was full."""
    skipped_silence_ms: float
    """Silence skipped to catch up with a backlog or to start a reply behind its margin."""
    flushes: int
    """Times flush() emptied the buffer."""
    stale_ms: float = 0.0
    """Audio dropped after a flush because it was sent before it."""
    late_frames: int = 0
    """Frames of speech that came after the device had run out of them."""
    concealed_ms: float = 0.0
    """Audio made up where speech ran out: in place of late frames, or fading out its end."""
    held_ms: float = 0.0
    """The most audio held at once for a device that had not started taking it."""
    margin_ms: float = 0.0
    """The margin of silence the next reply starts behind."""


class SpeakerSink(ClosedOnExit):
    """Plays a remote aiortc audio track on a device through a small bounded buffer.

    Open with `await SpeakerSink.open(backend, device)`, run `await sink.play(track)` as a task
    (it returns when the track ends and raises AudioDeviceError if the device fails), give it
    the track's packets with write_opus() if they do not go through the track, call flush() on
    barge-in, and `await aclose()` at the end.
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
        self._playout = Playout(self._format)
        self._decoder: av.AudioCodecContext | None = None
        self._resampler: av.AudioResampler | None = None
        self._player: asyncio.Task[Any] | None = None
        self._player_interrupted = False
        self._playing = False
        self._frames = self._flushes = 0
        # Written by the device thread only.
        self._audible_at = 0.0
        self._thread_playing = False

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
    def stats(self) -> SpeakerStats:
        """Return the counters so far."""
        playout = self._playout.stats
        return SpeakerStats(
            self._frames,
            playout.pulled_ms,
            playout.underruns,
            playout.dropped_ms,
            playout.skipped_silence_ms,
            self._flushes,
            playout.stale_ms,
            playout.late_frames,
            playout.concealed_ms,
            playout.held_ms,
            playout.margin_ms,
        )

    @property
    def queued_seconds(self) -> float:
        """Return how much audio waits for the device in the sink."""
        return len(self._playout) / self._format.bytes_per_second

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
        resampler = self._new_resampler()
        self._player = asyncio.current_task()
        try:
            while (frame := await self._next_frame(track)) is not None:
                if isinstance(frame, av.AudioFrame):
                    self._write(resampler.resample(frame))
        finally:
            self._player = None

    def write_opus(self, payload: bytes) -> None:
        """Decode one Opus packet of the assistant's (loop thread) and queue it for the device.

        libopus decodes straight to the device's channels; only another rate is resampled.
        """
        if self._decoder is None:
            self._decoder = opus_decoder(self._format.channels)
            if self._format.rate != SAMPLE_RATE:
                self._resampler = self._new_resampler()
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except av.FFmpegError as err:
            # As aiortc does: keep the decoder's state and go on; the gap is one packet.
            _LOGGER.debug("Opus packet not decoded: %s", err)
            return
        if self._resampler is not None:
            frames = [out for frame in frames for out in self._resampler.resample(frame)]
        self._write(frames)

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
        arrives, until the remote's silence or for at most playout.STALE_AUDIO_SECONDS.
        """
        self._playout.flush()
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
        self._playout = Playout(fmt)

        def on_error(err: AudioDeviceError) -> None:
            call_soon(self._event_loop, self._device_failed, err)

        stream = backend.open_output(device, fmt, self._pull, on_error)
        if stream.format != fmt:  # before the first pull: the device thread waits for this
            self._format = stream.format
            self._playout = Playout(stream.format)
        return stream

    def _new_resampler(self) -> av.AudioResampler:
        """Return a resampler from any frame to the device's format."""
        return av.AudioResampler(
            format="s16", layout=layout(self._format.channels), rate=self._format.rate
        )

    def _write(self, frames: list[av.AudioFrame]) -> None:
        """Queue converted frames for the device."""
        for frame in frames:
            self._frames += 1
            self._playout.write(frame.to_ndarray())

    def _pull(self, sample_frames: int) -> bytes:
        """Give the device its next block (device thread): queued audio, or silence."""
        data = self._playout.pull(sample_frames * self._format.channels * 2)
        self._follow_playout(data)
        if self._echo_reference is not None and (latency := self.latency) is not None:
            self._echo_reference.played(data, self._format, latency)
        return data

    def _follow_playout(self, data: bytes) -> None:
        """Notice audible output starting or stopping (device thread)."""
        now = time.monotonic()
        if peak(np.frombuffer(data, dtype=np.int16)) >= AUDIBLE_PEAK:
            self._audible_at = now
            playing = True
        else:
            playing = self._thread_playing and now - self._audible_at < PLAYOUT_HANGOVER_SECONDS
        if playing != self._thread_playing:
            self._thread_playing = playing
            call_soon(self._event_loop, self._set_playing, playing)

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
