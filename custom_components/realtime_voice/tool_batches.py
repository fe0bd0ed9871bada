"""The function calls of one response, and the single response that follows them.

The model may call several functions in one response. Each call gets its output, and only
when every call of the response has finished and the response itself is done does the model
get one new response (not one per call, which made it answer twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class FollowUp(IntEnum):
    """What a finished call asks for next; the most pressing of a batch wins."""

    NONE = 0
    """No new response: the model was already stopped this turn."""
    ANSWER = 1
    """A new response; the model may call tools again."""
    ANSWER_WITHOUT_TOOLS = 2
    """The per-turn limit was reached: one last response, in which no tool may be called."""
    END = 3
    """No new response: the conversation ends (end_session)."""


@dataclass(slots=True)
class _Batch:
    running: int = 0
    response_done: bool = False
    follow_up: FollowUp = FollowUp.NONE


class ToolBatches:
    """Function calls grouped by the response that made them."""

    def __init__(self) -> None:
        """Start with no calls."""
        self._batches: dict[str, _Batch] = {}

    def clear(self) -> None:
        """Forget every call: the conversation ended."""
        self._batches.clear()

    def call_started(self, response_id: str) -> None:
        """Count a call of the response."""
        self._batches.setdefault(response_id, _Batch()).running += 1

    def call_finished(self, response_id: str, follow_up: FollowUp) -> FollowUp:
        """Count a call as answered; return what follows if the batch is complete."""
        batch = self._batches.get(response_id)
        if batch is None:
            return FollowUp.NONE
        batch.running -= 1
        batch.follow_up = max(batch.follow_up, follow_up)
        return self._complete(response_id)

    def response_done(self, response_id: str) -> FollowUp:
        """Note the response's end; return what follows if its calls are all answered."""
        batch = self._batches.get(response_id)
        if batch is None:
            return FollowUp.NONE
        batch.response_done = True
        return self._complete(response_id)

    def _complete(self, response_id: str) -> FollowUp:
        batch = self._batches[response_id]
        if batch.running or not batch.response_done:
            return FollowUp.NONE
        del self._batches[response_id]
        return batch.follow_up
