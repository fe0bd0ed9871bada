"""Runtime data of a Realtime Voice entry: one OpenAI account and its boxes."""

from __future__ import annotations

from dataclasses import dataclass, field

from homeassistant.config_entries import ConfigEntry

from .realtime.http import ModelInfo
from .session import VoiceSession
from .usage import UsageLedger


@dataclass
class RealtimeVoiceData:
    """What a loaded entry holds: each box's conversation, and the models the key may use."""

    boxes: dict[str, VoiceSession] = field(default_factory=dict)
    """By the box's subentry id."""
    ledgers: dict[str, UsageLedger] = field(default_factory=dict)
    """Each box's usage totals, by the box's subentry id."""
    models: tuple[ModelInfo, ...] = ()
    """As the account listed them at setup or at the last daily check."""


type RealtimeVoiceConfigEntry = ConfigEntry[RealtimeVoiceData]
