"""Which Realtime models are current, what replaces a retiring one, and which ones reason.

Facts about OpenAI's models live here and in pricing.py, nowhere else. The account's own list
(`GET /v1/models`) is the authority on what exists and when it shuts down; this module only
orders it and knows the families.
"""

from __future__ import annotations

from collections.abc import Iterable
import re
from typing import Final

from .realtime.http import ModelInfo

RECOMMENDED_MODEL: Final = "gpt-realtime-2.1-mini"
"""The default of a new box: current and cost-efficient."""
HIGHER_QUALITY_MODEL: Final = "gpt-realtime-2.1"
"""Better answers and voice, at about three times the audio price."""
CURRENT_MODELS: Final = (RECOMMENDED_MODEL, HIGHER_QUALITY_MODEL)

_SNAPSHOT: Final = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_VERSION: Final = re.compile(r"^gpt-realtime-(\d{1,2}(?:\.\d+)?)(?:-|$)")
_REASONING_FROM: Final = 2.0
"""`reasoning.effort` exists from gpt-realtime-2 on (the SDK's RealtimeReasoning)."""
_NOT_CONVERSATION: Final = ("transcribe", "whisper", "translate", "tts")


def base_model(model: str) -> str:
    """Return the model without its dated snapshot suffix (`gpt-realtime-mini-2025-10-06`)."""
    return _SNAPSHOT.sub("", model)


def is_realtime_model(model: str) -> bool:
    """Return whether a listed model holds Realtime conversations."""
    return "realtime" in model and not any(word in model for word in _NOT_CONVERSATION)


def takes_reasoning(model: str) -> bool:
    """Return whether the model accepts `reasoning.effort` (gpt-realtime-2 and later)."""
    match = _VERSION.match(model)
    return match is not None and float(match.group(1)) >= _REASONING_FROM


def is_mini(model: str) -> bool:
    """Return whether the model is of the small, cheap tier."""
    return "mini" in model


def realtime_models(listed: Iterable[ModelInfo]) -> list[ModelInfo]:
    """Return the listed Realtime models, current ones first, then those that shut down later."""
    return sorted((info for info in listed if is_realtime_model(info.id)), key=_rank)


def _rank(info: ModelInfo) -> tuple[bool, int, int, int, str]:
    """Sort current before retiring, the recommended two first, later shutdowns, newer models."""
    preferred = CURRENT_MODELS.index(info.id) if info.id in CURRENT_MODELS else len(CURRENT_MODELS)
    shutdown = info.shutdown_date.toordinal() if info.shutdown_date else 0
    return shutdown != 0, preferred, -shutdown, -info.created, info.id


def replacement_for(model: str, listed: Iterable[ModelInfo] = ()) -> str:
    """Return the model a box on `model` should move to: current, of the same tier if possible.

    From the account's list when it offers one; otherwise the recommended model of the tier.
    """
    current = [
        info.id for info in realtime_models(listed) if not info.shutdown_date and info.id != model
    ]
    same_tier = [candidate for candidate in current if is_mini(candidate) == is_mini(model)]
    if same_tier or current:
        return (same_tier or current)[0]
    fallback = RECOMMENDED_MODEL if is_mini(model) else HIGHER_QUALITY_MODEL
    return next(candidate for candidate in (fallback, *CURRENT_MODELS) if candidate != model)
