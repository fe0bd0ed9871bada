"""The one snapshot of a box's conversation that entities render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .realtime.events import Usage


class Activity(StrEnum):
    """What the box is doing; the `state` sensor shows it."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    ASSISTANT_SPEAKING = "assistant_speaking"
    ENDING = "ending"
    ERROR = "error"


ACTIVE: frozenset[Activity] = frozenset(
    {Activity.LISTENING, Activity.USER_SPEAKING, Activity.THINKING, Activity.ASSISTANT_SPEAKING}
)


@dataclass(frozen=True, slots=True)
class Transcript:
    """One utterance, as text."""

    text: str
    at: datetime
    final: bool = True
    """False while the assistant's words are still arriving."""


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens."""

    audio_input: float
    audio_output: float
    text_input: float
    text_output: float
    cached_input: float

    def cost(self, usage: Usage) -> float:
        """Return what the usage costs, in USD."""
        cached = usage.input_cached_text + usage.input_cached_audio
        return (
            usage.input_audio * self.audio_input
            + usage.output_audio * self.audio_output
            + usage.input_text * self.text_input
            + usage.output_text * self.text_output
            + cached * self.cached_input
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class SessionState:
    """Everything entities show about one box."""

    activity: Activity = Activity.IDLE
    user_transcript: Transcript | None = None
    assistant_transcript: Transcript | None = None
    session_usage: Usage = field(default_factory=Usage)
    session_cost: float = 0.0
    total_tokens: int = 0
    total_cost: float = 0.0
    last_error: str | None = None

    @property
    def active(self) -> bool:
        """Return whether a conversation is under way (connecting and ending included)."""
        return self.activity not in (Activity.IDLE, Activity.ERROR)
