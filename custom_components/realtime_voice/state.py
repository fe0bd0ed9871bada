"""The one snapshot of a box's conversation that entities render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .realtime.events import TranscriptionUsage, Usage


class Activity(StrEnum):
    """What the box is doing; the `state` sensor shows it."""

    IDLE = "idle"
    CONNECTING = "connecting"
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    ASSISTANT_SPEAKING = "assistant_speaking"
    ENDING = "ending"


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
class SessionState:
    """Everything entities show about one box."""

    activity: Activity = Activity.IDLE
    user_transcript: Transcript | None = None
    assistant_transcript: Transcript | None = None
    session_usage: Usage = field(default_factory=Usage)
    session_transcription: TranscriptionUsage = field(default_factory=TranscriptionUsage)
    session_cost: float = 0.0
    session_started: datetime | None = None
    """When the current or last conversation started: the token count's last reset."""
    total_tokens: int = 0
    total_cost: float = 0.0
    cost_today: float = 0.0
    cost_this_month: float = 0.0
    last_error: str | None = None

    @property
    def active(self) -> bool:
        """Return whether a conversation is under way (connecting and ending included)."""
        return self.activity is not Activity.IDLE
