"""What the simulated model does on its next turns: a test queues these on the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from typing import Any


@dataclass(frozen=True, slots=True)
class Reply:
    """The model speaks `text` (as audio, with it as the transcript)."""

    text: str


@dataclass(frozen=True, slots=True)
class CallFunction:
    """The model calls a function instead of speaking."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        """Return the arguments as the JSON string the event carries."""
        return json.dumps(self.arguments)


type Turn = Reply | CallFunction

DEFAULT_REPLY = Reply("Sure, I can help with that.")
"""What the model says when no turn is scripted: a friendly assistant."""
DEFAULT_USER_TRANSCRIPT = "Hello, can you help me?"
"""The transcript of every user audio turn (the simulator does not recognise speech)."""
