"""A sound clip (an announcement's media, a chime) decoded for the speaker and played in real time.

Home Assistant hands an announcement's media as a URL; the bytes behind it (WAV, MP3, anything
FFmpeg reads) are decoded here into the 20 ms frames of 48 kHz mono that the speaker sink takes,
and fed to it at the pace they play, as the remote track of a call would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import io
from typing import Final, override

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
import av

from .backend import FRAME_SAMPLES, SAMPLE_RATE, AudioBackend, AudioError
from .frames import FRAME_SECONDS
from .speaker import SpeakerSink

MAX_CLIP_SECONDS: Final = 600.0
"""A clip longer than this is cut: an announcement, not an album."""
CLIP_LEAD_SECONDS: Final = 0.06
"""How much of the clip waits in the sink ahead of the device: a cushion against a late event
loop, small enough that the sink (which trims silence queued beyond 20 ms) barely shortens the
clip's own pauses."""
PACE_SECONDS: Final = 0.01
"""How often the track looks whether the sink wants the next frame."""
DRAIN_MARGIN_SECONDS: Final = 0.1
"""Waited after the last frame left the sink, beyond the device's latency, before closing."""


class ClipError(AudioError):
    """The media could not be decoded as audio."""


@dataclass(frozen=True, slots=True)
class Clip:
    """Decoded audio, ready for the speaker."""

    frames: tuple[av.AudioFrame, ...]


def decode_clip(data: bytes) -> Clip:
    """Decode a media file's first audio stream to 20 ms frames of 48 kHz mono s16; blocking."""
    resampler = av.AudioResampler(
        format="s16", layout="mono", rate=SAMPLE_RATE, frame_size=FRAME_SAMPLES
    )
    frames: list[av.AudioFrame] = []
    limit = int(MAX_CLIP_SECONDS / FRAME_SECONDS)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise ClipError("the media has no audio")
            for decoded in container.decode(container.streams.audio[0]):
                frames.extend(resampler.resample(decoded))
                if len(frames) >= limit:
                    break
            else:
                frames.extend(resampler.resample(None))  # what the resampler still holds
    except (av.FFmpegError, ValueError) as err:
        raise ClipError(f"the media cannot be decoded: {err}") from err
    for index, frame in enumerate(frames[:limit]):
        frame.pts = index * FRAME_SAMPLES
    return Clip(tuple(frames[:limit]))


class ClipTrack(MediaStreamTrack):
    """A clip as an audio track whose frames come as the speaker takes them.

    Paced by the sink's backlog, not the clock: a device that starts late or runs a little
    slow loses nothing.
    """

    kind = "audio"

    def __init__(self, clip: Clip, backlog: Callable[[], float]) -> None:
        super().__init__()
        self._frames = iter(clip.frames)
        self._backlog = backlog

    @override
    async def recv(self) -> av.AudioFrame:
        """Return the next frame once the sink has room for it; MediaStreamError after the last."""
        frame = next(self._frames, None)
        if frame is None:
            self.stop()
            raise MediaStreamError
        while self._backlog() > CLIP_LEAD_SECONDS:  # noqa: ASYNC110 - a device thread drains it
            await asyncio.sleep(PACE_SECONDS)
        return frame


async def play_clip(backend: AudioBackend, device: str | None, clip: Clip) -> None:
    """Open the speaker, play the clip to its end, close the speaker.

    Raises AudioDeviceError if the device cannot be opened or fails while playing (a failure
    in the last moments, while the device plays out what it holds, loses only that).
    """
    async with await SpeakerSink.open(backend, device) as sink:
        await sink.play(ClipTrack(clip, lambda: sink.queued_seconds))
        while sink.queued_seconds > 0 and sink.error is None:  # noqa: ASYNC110 - as above
            await asyncio.sleep(PACE_SECONDS)
        await asyncio.sleep((sink.latency or 0.0) + DRAIN_MARGIN_SECONDS)
