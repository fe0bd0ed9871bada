"""Audio for the simulated model and for test clients: speech or tones, and a track that plays them.

Everything here is 48 kHz mono int16, the rate Opus runs at in WebRTC. `PlaybackTrack` is an
aiortc audio track that sends silence until something is queued, paced by its sample counter as
aiortc's own `AudioStreamTrack` is; each queued clip reports when its last sample has been handed
to the encoder, which is when "the audio went out".
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
import io
import time
from typing import Final, Literal, override
import wave

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
import av
import numpy as np
import numpy.typing as npt

RATE: Final = 48000
FRAME_SAMPLES: Final = 960
"""One 20 ms frame at RATE."""
FRAME_SECONDS: Final = FRAME_SAMPLES / RATE
_TONE_SECONDS_PER_CHARACTER: Final = 0.05

type Samples = npt.NDArray[np.int16]
type VoiceKind = Literal["speech", "tone"]


def tone(hz: float, seconds: float, amplitude: float = 0.5) -> Samples:
    """Return a mono sine tone at RATE."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(seconds: float) -> Samples:
    """Return digital silence at RATE."""
    return np.zeros(int(RATE * seconds), dtype=np.int16)


def rms(samples: npt.NDArray[np.int16]) -> float:
    """Return the root mean square of int16 samples (0 for silence, ~11 585 for a 0.5 sine)."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


def resample(samples: Samples, rate: int) -> Samples:
    """Resample mono int16 audio to RATE by linear interpolation (good enough for tests)."""
    if rate == RATE:
        return samples
    count = round(samples.size * RATE / rate)
    positions = np.arange(count) * (rate / RATE)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.int16)


def read_wav(data: bytes) -> Samples:
    """Decode a mono int16 WAV and return it at RATE."""
    with wave.open(io.BytesIO(data)) as wav:
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        if wav.getnchannels() > 1:
            frames = frames[:: wav.getnchannels()]
    return resample(frames, rate)


async def speech(text: str) -> Samples:
    """Speak text with espeak-ng (22.05 kHz mono) and return it at RATE."""
    process = await asyncio.create_subprocess_exec(
        "espeak-ng",
        "--stdout",
        text,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    data, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"espeak-ng failed with {process.returncode}")
    # espeak-ng's WAV header over a pipe carries an unknown length; wave reads what is there.
    return read_wav(data)


@dataclass(slots=True)
class Voice:
    """How the simulated model sounds: espeak-ng speech, or a tone as long as the text."""

    kind: VoiceKind = "speech"
    _cache: dict[str, Samples] = field(default_factory=dict)

    async def say(self, text: str) -> Samples:
        """Return the audio for text."""
        if text not in self._cache:
            if self.kind == "speech":
                self._cache[text] = await speech(text)
            else:
                seconds = max(0.2, len(text) * _TONE_SECONDS_PER_CHARACTER)
                self._cache[text] = tone(660.0, seconds, amplitude=0.3)
        return self._cache[text]


@dataclass(slots=True, eq=False)
class Clip:
    """One queued piece of audio; `done` is set once it went out or was cleared."""

    samples: Samples
    position: int = 0
    cleared: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def seconds(self) -> float:
        """Return the clip's length in seconds."""
        return self.samples.size / RATE


class PlaybackTrack(MediaStreamTrack):
    """An audio track that plays queued clips, and silence in between."""

    kind = "audio"

    def __init__(self, *, silent_between_clips: bool = False) -> None:
        """Play silence between clips, or nothing at all when silent_between_clips."""
        super().__init__()
        self._silent_between_clips = silent_between_clips
        self._has_clip = asyncio.Event()
        self._queue: deque[Clip] = deque()
        self._start: float | None = None
        self._timestamp = 0
        self._frozen = False
        self._stopped = asyncio.Event()

    def play(self, samples: Samples) -> Clip:
        """Queue audio after whatever is already queued; return its clip."""
        clip = Clip(samples)
        if samples.size == 0:
            clip.done.set()
        else:
            self._queue.append(clip)
            self._has_clip.set()
        return clip

    def clear(self) -> bool:
        """Drop every queued clip at once; return whether anything was playing."""
        had_audio = bool(self._queue)
        while self._queue:
            clip = self._queue.popleft()
            clip.cleared = True
            clip.done.set()
        return had_audio

    @property
    def playing(self) -> bool:
        """Return whether queued audio is still going out."""
        return bool(self._queue)

    def freeze(self) -> None:
        """Stop producing frames (no RTP goes out) without ending the track."""
        self._frozen = True

    @override
    def stop(self) -> None:
        self.clear()
        self._stopped.set()
        super().stop()

    @override
    async def recv(self) -> av.AudioFrame:
        if self._frozen:
            await self._stopped.wait()
        if self._silent_between_clips and not self._queue:
            await self._wait_for_clip()
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += FRAME_SAMPLES
            wait = self._start + self._timestamp / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame.from_ndarray(
            self._next_samples().reshape(1, -1), format="s16", layout="mono"
        )
        frame.pts = self._timestamp
        frame.sample_rate = RATE
        frame.time_base = Fraction(1, RATE)
        return frame

    async def _wait_for_clip(self) -> None:
        """Send nothing until a clip is queued (or the track stops); then go on in real time."""
        self._has_clip.clear()
        stopped = asyncio.ensure_future(self._stopped.wait())
        queued = asyncio.ensure_future(self._has_clip.wait())
        try:
            await asyncio.wait((stopped, queued), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            queued.cancel()
        if self._start is not None:  # the pause is not audio to catch up on
            self._start = time.monotonic() - self._timestamp / RATE

    def _next_samples(self) -> Samples:
        """Take one frame of samples from the queue, padding with silence."""
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES and self._queue:
            clip = self._queue[0]
            take = min(FRAME_SAMPLES - filled, clip.samples.size - clip.position)
            out[filled : filled + take] = clip.samples[clip.position : clip.position + take]
            clip.position += take
            filled += take
            if clip.position >= clip.samples.size:
                self._queue.popleft()
                clip.done.set()
        return out
