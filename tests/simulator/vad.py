"""Energy-based voice activity detection, standing in for OpenAI's server VAD.

It honours the session's `threshold` and `silence_duration_ms` roughly: a frame is speech when its
RMS is above `threshold * RMS_PER_THRESHOLD`, speech starts after `_MIN_SPEECH_FRAMES` such frames
in a row and stops after `silence_duration_ms` without one. Times are on the audio clock (ms of
audio received), as `audio_start_ms` / `audio_end_ms` are. Not thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

RMS_PER_THRESHOLD: Final = 1000.0
"""RMS of int16 samples at threshold 1.0: the default 0.5 means RMS 500 (a quiet voice)."""
_MIN_SPEECH_FRAMES: Final = 2


def rms_threshold(threshold: float) -> float:
    """Return the frame RMS above which a frame counts as speech."""
    return threshold * RMS_PER_THRESHOLD


class Edge(StrEnum):
    """A change of the speaking state."""

    STARTED = "started"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class VadEvent:
    """Speech started or stopped, at a position on the audio clock."""

    edge: Edge
    audio_ms: int


class EnergyVad:
    """Track speech in a stream of per-frame RMS values."""

    def __init__(self) -> None:
        self.audio_ms = 0.0
        self.speaking = False
        self._loud_run = 0
        self._last_loud_end_ms = 0.0

    def feed(
        self, frame_rms: float, frame_ms: float, *, threshold: float, silence_duration_ms: int
    ) -> VadEvent | None:
        """Account one frame; return the edge it causes, if any."""
        start_ms = self.audio_ms
        self.audio_ms += frame_ms
        if frame_rms > rms_threshold(threshold):
            self._loud_run += 1
            self._last_loud_end_ms = self.audio_ms
            if not self.speaking and self._loud_run >= _MIN_SPEECH_FRAMES:
                self.speaking = True
                return VadEvent(Edge.STARTED, int(start_ms - frame_ms * (self._loud_run - 1)))
            return None
        self._loud_run = 0
        if self.speaking and self.audio_ms - self._last_loud_end_ms >= silence_duration_ms:
            self.speaking = False
            return VadEvent(Edge.STOPPED, int(self._last_loud_end_ms))
        return None

    def reset(self) -> None:
        """Forget a turn in progress (the client cleared the input buffer)."""
        self.speaking = False
        self._loud_run = 0
