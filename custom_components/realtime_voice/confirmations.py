"""Spoken confirmation of high-risk calls, enforced in code, not by the prompt.

A high-risk call is first answered with "confirmation required". The same call (same tool,
same arguments, same resolved entities) runs only if the model makes it again within
CONFIRMATION_SECONDS and after the user said something new: a committed user audio turn, a
finished transcript of a new user item, or typed text. The code cannot tell "yes" from "no";
it makes sure the user was asked and answered before the model may act.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
import time
from typing import Final

CONFIRMATION_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class _Question:
    asked_at: float
    utterances: int
    """How many user utterances there had been when the user was asked."""


@dataclass(slots=True)
class Confirmations:
    """Calls waiting for the user's answer, for one conversation."""

    clock: Callable[[], float] = time.monotonic
    _pending: dict[Hashable, _Question] = field(default_factory=dict)
    _utterances: int = 0
    _user_items: set[str] = field(default_factory=set)

    def user_spoke(self, item_id: str | None) -> bool:
        """Count a user utterance; return False if this item was counted already.

        The transcript of an utterance may come after the call it asked for: an item counts
        once, so its late transcript is not taken for an answer.
        """
        if item_id is not None:
            if item_id in self._user_items:
                return False
            self._user_items.add(item_id)
        self._utterances += 1
        return True

    def confirmed(self, call: Hashable) -> bool:
        """Return whether the user answered since this call was asked for; use it up if so."""
        self._forget_expired()
        question = self._pending.get(call)
        if question is None or self._utterances <= question.utterances:
            return False
        del self._pending[call]
        return True

    def ask(self, call: Hashable) -> None:
        """Remember that the user is being asked about this call (again: the clock restarts)."""
        self._forget_expired()
        self._pending[call] = _Question(self.clock(), self._utterances)

    def _forget_expired(self) -> None:
        now = self.clock()
        for call, question in list(self._pending.items()):
            if now - question.asked_at > CONFIRMATION_SECONDS:
                del self._pending[call]
