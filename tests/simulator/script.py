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
    arguments: dict[str, Any] | list[Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    """Arguments text sent as it is (not JSON, say), instead of `arguments`."""

    @property
    def arguments_json(self) -> str:
        """Return the arguments as the JSON string the event carries."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True, slots=True)
class CallFunctions:
    """The model calls several functions in one response (parallel function calls)."""

    calls: tuple[CallFunction, ...]


type Turn = Reply | CallFunction | CallFunctions

DEFAULT_REPLY = Reply("Sure, I can help with that.")
"""What the model says when no turn is scripted: a friendly assistant."""
DEFAULT_USER_TRANSCRIPT = "Hello, can you help me?"
"""The transcript of every user audio turn (the simulator does not recognise speech)."""
