"""Spending limits a box keeps: per day, per month and per conversation, in USD.

OpenAI reports what an answer cost only once it is over, so a limit is kept by looking ahead:
a conversation may go on while the next answer and a goodbye still fit under every limit, each
counted at the dearest answer of the conversation so far (at least a typical first answer).
Context is re-billed with every answer, so the next one costs about as much as the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .pricing import ModelPrices
from .realtime.events import Usage

TYPICAL_FIRST_ANSWER: Final = Usage(
    input_text=1500, input_audio=50, output_text=40, output_audio=100
)
"""Instructions and Assist's tools (~1,500 tokens), 5 s of speech in, a 5 s answer out."""
GOODBYE_MAX_OUTPUT_TOKENS: Final = 200
"""The goodbye said when a limit is reached is cut off after this many tokens (about 8 s)."""


class LimitKind(StrEnum):
    """Which limit was reached."""

    DAILY = "daily"
    MONTHLY = "monthly"
    CONVERSATION = "conversation"


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """USD limits; None switches one off (all are off by default)."""

    daily: float | None = None
    monthly: float | None = None
    per_conversation: float | None = None


@dataclass(frozen=True, slots=True)
class Spend:
    """What was spent so far, in USD."""

    today: float = 0.0
    this_month: float = 0.0
    conversation: float = 0.0


@dataclass(frozen=True, slots=True)
class LimitReached:
    """A limit that the next answer and a goodbye might cross."""

    kind: LimitKind
    limit: float
    spent: float


def reserve(prices: ModelPrices, dearest_answer: float) -> float:
    """Return what must stay free under a limit: the next answer and a goodbye."""
    return 2 * max(dearest_answer, prices.cost(TYPICAL_FIRST_ANSWER))


def limit_reached(limits: BudgetLimits, spend: Spend, needed: float) -> LimitReached | None:
    """Return the first limit under which `needed` USD more no longer fit, or None."""
    checks = (
        (LimitKind.DAILY, limits.daily, spend.today),
        (LimitKind.MONTHLY, limits.monthly, spend.this_month),
        (LimitKind.CONVERSATION, limits.per_conversation, spend.conversation),
    )
    for kind, limit, spent in checks:
        if limit is not None and spent + needed > limit:
            return LimitReached(kind, limit, spent)
    return None
