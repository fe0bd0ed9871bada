"""The echo gate: the microphone must not send the assistant's own voice as the user's.

Half duplex mutes the microphone while the assistant's audio is playing and for a short tail
after it, so the room's echo does not reach the model as user speech. Two sources say "playing":
the owner, from OpenAI's output_audio_buffer.started / stopped / cleared events, and the speaker
sink's own playout. With echo cancellation the microphone stays open, but for the first
RESIDUAL_GUARD_SECONDS of each reply: the canceller may still be converging on a room that
changed. Full duplex never mutes (headsets, DSP microphones).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
import time
from typing import Final

ECHO_TAIL_SECONDS: Final = 0.3
"""Kept muted after playout ends: device buffer (~40 ms) plus room reverberation."""
RESIDUAL_GUARD_SECONDS: Final = 0.2
"""With echo cancellation, muted for this long once the speaker starts playing a reply."""


class DuplexMode(StrEnum):
    """Whether the microphone stays open while the assistant speaks."""

    HALF = "half"
    FULL = "full"
    ECHO_CANCELLATION = "echo_cancellation"


class EchoGate:
    """Decides, frame by frame, whether the microphone's audio may be sent. Loop thread only."""

    def __init__(
        self,
        mode: DuplexMode = DuplexMode.HALF,
        *,
        tail_seconds: float = ECHO_TAIL_SECONDS,
        guard_seconds: float = RESIDUAL_GUARD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self._tail_seconds = tail_seconds
        self._guard_seconds = guard_seconds
        self._clock = clock
        self._assistant_speaking = False
        self._playing = False
        self._muted_until = 0.0
        self._guarded_until = 0.0

    @property
    def is_open(self) -> bool:
        """Return whether the microphone's audio passes now."""
        if self.mode is DuplexMode.FULL:
            return True
        if self.mode is DuplexMode.ECHO_CANCELLATION:
            return self._clock() >= self._guarded_until
        if self._assistant_speaking or self._playing:
            return False
        return self._clock() >= self._muted_until

    def assistant_started(self) -> None:
        """Mute: the server started sending the assistant's audio (output_audio_buffer.started)."""
        self._assistant_speaking = True

    def assistant_stopped(self) -> None:
        """Unmute after the tail: the server's audio ended (output_audio_buffer.stopped/cleared)."""
        if self._assistant_speaking:
            self._assistant_speaking = False
            self._start_tail()

    def playout_changed(self, playing: bool) -> None:
        """Follow the speaker's audible output, as reported by SpeakerSink."""
        if self._playing and not playing:
            self._start_tail()
        elif playing and not self._playing:
            self._guarded_until = self._clock() + self._guard_seconds
        self._playing = playing

    def _start_tail(self) -> None:
        self._muted_until = self._clock() + self._tail_seconds
