"""When the speaker's audio is played: the buffer between decoded frames and the device.

Three rules keep what the user hears equal to what the model said:
- A reply starts behind a small margin of silence (one device block, more after a late frame),
  not at once: with nothing queued, the first frame a few ms late or a device that takes audio
  in bursts leaves a gap inside the speech.
- A frame that is late anyway is concealed: the device gets the last audio mirrored and faded
  out, and the late frame fades in when it comes. Nothing is dropped; the delay this adds goes
  in the next pause, where silent frames are skipped.
- Audio the device has not started taking (a sink that wakes slowly, Bluetooth) is held, up to
  SPEAKER_HOLD_SECONDS; only once the device runs does the latency bound drop the oldest.

write() and flush() run on the event loop, pull() on the device thread; the PcmRing's lock is
all they share, besides plain attributes written by one side (one is cleared by the other).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import time
from typing import Final

import numpy as np

from .backend import AudioFormat
from .frames import AUDIBLE_PEAK, peak
from .pcm_ring import PcmRing

SPEAKER_BUFFER_SECONDS: Final = 0.2
"""Audio the speaker holds ahead of a running device at most; the oldest goes first."""
SPEAKER_HOLD_SECONDS: Final = 3.0
"""Audio held for a device that has not started taking any (or stalled), at most."""
SPEAKER_TARGET_SECONDS: Final = 0.02
"""Backlog above this is trimmed by skipping silent frames: the remote sends silence between
turns, so a backlog left by a device that started late, a burst or a concealed frame goes away
without a sound."""
MARGIN_STEP_SECONDS: Final = 0.01
"""The margin a reply starts behind, and its step: one device block."""
MARGIN_MAX_SECONDS: Final = 0.04
"""The margin grows by a step for every frame that came late in speech, up to this."""
LATE_FRAME_SECONDS: Final = 0.1
"""Speech that goes on within this long after a concealed gap was late, not at its end: a
remote that sends nothing between replies leaves a gap after every one, which is no reason to
wait longer before the next."""
MARGIN_RELAX_SECONDS: Final = 30.0
"""Without a late frame for this long, a reply's start takes the margin one step back down."""
DEVICE_STALL_SECONDS: Final = 0.05
"""A device that took nothing for this long is not running: what it has not taken is held."""
FADE_SECONDS: Final = 0.0025
"""Audio after a concealed gap fades in over this long, so it starts without a click."""
STALE_AUDIO_SECONDS: Final = 0.1
"""After flush(), audible frames still arriving are dropped until the remote's silence comes, for
at most this long: they were on their way before the server cleared its audio (barge-in)."""


@dataclass(frozen=True, slots=True)
class PlayoutStats:
    """What the playout did so far, in milliseconds of audio unless said otherwise."""

    pulled_ms: float
    """Audio the device took, silence included."""
    underruns: int
    """Times the device asked for audio not there yet, after having had some."""
    late_frames: int
    """Frames of speech that came after the device had run out of them (concealed)."""
    concealed_ms: float
    """Audio made up in place of a late frame inside speech (the rest of underruns are silence)."""
    dropped_ms: float
    """Audio dropped, oldest first, because the buffer was full."""
    skipped_silence_ms: float
    """Silence skipped to catch up with a backlog or to start a reply behind its margin."""
    stale_ms: float
    """Audio dropped after a flush because it was sent before it."""
    held_ms: float
    """The most audio held at once for a device that had not started (or stalled)."""
    margin_ms: float
    """The margin the next reply starts behind."""


def _samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.int16)


class Playout:
    """A bounded buffer of PCM in the device's format, with the rules above."""

    def __init__(
        self, audio_format: AudioFormat, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._format = audio_format
        self._clock = clock
        rate = audio_format.bytes_per_second
        self._block = 2 * audio_format.channels  # bytes per sample frame
        self._capacity = self._bytes(rate * SPEAKER_BUFFER_SECONDS)
        self._hold = self._bytes(rate * SPEAKER_HOLD_SECONDS)
        self._target = self._bytes(rate * SPEAKER_TARGET_SECONDS)
        self._step = self._bytes(rate * MARGIN_STEP_SECONDS)
        self._most = self._bytes(rate * MARGIN_MAX_SECONDS)
        self._fade = int(audio_format.rate * FADE_SECONDS)
        self._ring = PcmRing(self._capacity)
        # Written on the loop.
        self._in_speech = False
        self._stale_until = 0.0
        self._dropped = self._skipped = self._stale = self._late_frames = 0
        self.margin = self._step
        """Bytes of silence the next reply starts behind."""
        self._late_at = -MARGIN_RELAX_SECONDS
        # Written on the device thread (_concealed_at is cleared on the loop).
        self._pulled_at: float | None = None
        self._concealed_at: float | None = None
        self._allowance = 0
        self._last = np.zeros(0, dtype=np.int16)
        self._fed = self._fade_in = False
        self._underruns = self._pulled = self._concealed = self._held = 0

    def __len__(self) -> int:
        """Return how many bytes are queued."""
        return len(self._ring)

    @property
    def stats(self) -> PlayoutStats:
        """Return the counters so far."""
        per_ms = self._format.bytes_per_second / 1000
        return PlayoutStats(
            self._pulled / per_ms,
            self._underruns,
            self._late_frames,
            self._concealed / per_ms,
            self._dropped / per_ms,
            self._skipped / per_ms,
            self._stale / per_ms,
            self._held / per_ms,
            self.margin / per_ms,
        )

    def write(self, samples: np.ndarray) -> None:
        """Queue one decoded frame in the device's format (loop thread)."""
        if self._stale_until and self._drop_stale(samples):
            return
        concealed_at, self._concealed_at = self._concealed_at, None
        if peak(samples) < AUDIBLE_PEAK:
            self._in_speech = False
            if len(self._ring) > self._target:
                self._skipped += samples.nbytes
                return
        elif concealed_at is not None and self._clock() - concealed_at < LATE_FRAME_SECONDS:
            self._late_frame()
        elif not self._in_speech:
            self._in_speech = True
            self._start_reply()
        self._dropped += self._ring.write(samples.tobytes(), self._limit())

    def flush(self) -> None:
        """Drop everything queued; audible frames still on their way are dropped as they come."""
        self._ring.clear()
        self._in_speech = False
        self._stale_until = self._clock() + STALE_AUDIO_SECONDS

    def pull(self, size: int) -> bytes:
        """Return exactly size bytes for the device (device thread)."""
        now = self._clock()
        if self._pulled_at is None or now - self._pulled_at > DEVICE_STALL_SECONDS:
            # What queued while the device took nothing is played in full, not dropped.
            self._allowance = len(self._ring)
            self._held = max(self._held, self._allowance)
        data, missing = self._ring.read(size)
        self._allowance = min(self._allowance, len(self._ring))
        self._pulled_at = now
        if missing and self._fed:
            self._underruns += 1
        self._fed = not missing
        self._pulled += size
        if missing and not self._fade_in and peak(self._last) >= AUDIBLE_PEAK:
            data = self._conceal(data, missing, now)
        elif self._fade_in and not missing:
            data = self._faded_in(data)
        self._last = _samples(data)
        return data

    def _start_reply(self) -> None:
        """Put the reply behind the margin: trim the silence queued before it, or add some."""
        if self._clock() - self._late_at > MARGIN_RELAX_SECONDS and self.margin > self._step:
            self.margin -= self._step
            self._late_at = self._clock()  # one step per quiet stretch
        queued = self._ring.peek()
        if peak(_samples(queued)) >= AUDIBLE_PEAK:
            return  # the last reply is still playing: this one follows it
        if len(queued) > self.margin:
            self._skipped += self._ring.trim(self.margin)
        else:
            self._ring.write(bytes(self.margin - len(queued)), self._limit())

    def _late_frame(self) -> None:
        """Start the next replies a step later: a frame came late inside speech."""
        self._late_frames += 1
        self._late_at = self._clock()
        self.margin = min(self._most, self.margin + self._step)

    def _limit(self) -> int:
        """Return how much the ring may hold now: more while the device is not taking.

        Once it takes again, what it was held back still plays, and the bound applies on top:
        the held backlog goes only as the ring shrinks, by skipping silence.
        """
        pulled = self._pulled_at
        if pulled is None or self._clock() - pulled > DEVICE_STALL_SECONDS:
            return self._hold
        return min(self._hold, self._allowance + self._capacity)

    def _conceal(self, data: bytes, missing: int, now: float) -> bytes:
        """Fill the missing end of a block inside speech with the audio before it, fading out.

        Mirrored, so that the made-up audio starts at the value the real audio ended with.
        """
        self._concealed += missing
        self._concealed_at = now
        self._fade_in = True
        channels = self._format.channels
        have = _samples(data)[: (len(data) - missing) // 2]
        before = np.concatenate((self._last, have)).reshape(-1, channels)
        frames = missing // self._block
        mirrored = np.resize(before[::-1], (frames, channels)).astype(np.float32)
        mirrored *= np.linspace(1.0, 0.0, frames, dtype=np.float32)[:, None]
        return have.tobytes() + mirrored.astype(np.int16).tobytes()

    def _faded_in(self, data: bytes) -> bytes:
        """Fade in the first audio after a concealed gap."""
        self._fade_in = False
        channels = self._format.channels
        samples = _samples(data).reshape(-1, channels).astype(np.float32)
        count = min(self._fade, len(samples))
        samples[:count] *= np.linspace(0.0, 1.0, count, dtype=np.float32)[:, None]
        return samples.astype(np.int16).tobytes()

    def _drop_stale(self, samples: np.ndarray) -> bool:
        """Return whether a frame after a flush is stale; silence or time ends the dropping."""
        if peak(samples) < AUDIBLE_PEAK or self._clock() >= self._stale_until:
            self._stale_until = 0.0
            return False
        self._stale += samples.nbytes
        return True

    def _bytes(self, size: float) -> int:
        """Round a byte count down to whole sample frames."""
        return int(size) // self._block * self._block
