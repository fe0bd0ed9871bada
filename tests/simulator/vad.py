"""Energy and duration voice activity detection, standing in for OpenAI's server VAD.

OpenAI documents `threshold` as loudness: "a higher threshold will require louder audio to
activate the model". Here a 20 ms frame is voiced when its level is above `threshold` mapped onto
-70 … -20 dBFS (the default 0.5 is -45 dBFS, a quiet voice across the room, as a real VAD model
still hears it), and speech starts once `MIN_SPEECH_MS` of the last `SPEECH_WINDOW_MS` were voiced,
so a click does not start a turn but a syllable does. Speech stops after `silence_duration_ms`
without a voiced frame. Times are on the audio clock (ms of audio received), as `audio_start_ms` /
`audio_end_ms` are. Not thread-safe.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

FULL_SCALE: Final = 32768.0
QUIETEST_DBFS: Final = -70.0
"""Level at threshold 0.0."""
LOUDEST_DBFS: Final = -20.0
"""Level at threshold 1.0."""
MIN_SPEECH_MS: Final = 100
"""Voiced audio within SPEECH_WINDOW_MS that starts speech."""
SPEECH_WINDOW_MS: Final = 160


def rms_threshold(threshold: float) -> float:
    """Return the frame RMS (int16) above which a frame counts as voiced."""
    dbfs = QUIETEST_DBFS + (LOUDEST_DBFS - QUIETEST_DBFS) * threshold
    return FULL_SCALE * 10 ** (dbfs / 20)


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
        self._recent: deque[tuple[float, float, bool]] = deque()
        """(start ms, length ms, voiced) of the frames of the last SPEECH_WINDOW_MS."""
        self._last_loud_end_ms = 0.0

    def feed(
        self, frame_rms: float, frame_ms: float, *, threshold: float, silence_duration_ms: int
    ) -> VadEvent | None:
        """Account one frame; return the edge it causes, if any."""
        start_ms = self.audio_ms
        self.audio_ms += frame_ms
        voiced = frame_rms > rms_threshold(threshold)
        self._remember(start_ms, frame_ms, voiced)
        if voiced:
            self._last_loud_end_ms = self.audio_ms
            if not self.speaking and self._voiced_ms() >= MIN_SPEECH_MS:
                self.speaking = True
                first = next(start for start, _, was_voiced in self._recent if was_voiced)
                return VadEvent(Edge.STARTED, int(first))
            return None
        if self.speaking and self.audio_ms - self._last_loud_end_ms >= silence_duration_ms:
            self.speaking = False
            self._recent.clear()
            return VadEvent(Edge.STOPPED, int(self._last_loud_end_ms))
        return None

    def reset(self) -> None:
        """Forget a turn in progress (the client cleared the input buffer)."""
        self.speaking = False
        self._recent.clear()

    def _remember(self, start_ms: float, frame_ms: float, voiced: bool) -> None:
        """Keep the frames of the last SPEECH_WINDOW_MS."""
        self._recent.append((start_ms, frame_ms, voiced))
        while self._recent and self._recent[0][0] < self.audio_ms - SPEECH_WINDOW_MS:
            self._recent.popleft()

    def _voiced_ms(self) -> float:
        return sum(length for _, length, voiced in self._recent if voiced)
