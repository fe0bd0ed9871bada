"""Runtime data of a Realtime Voice entry."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .realtime.http import ModelInfo
from .session import VoiceSession


@dataclass
class RealtimeVoiceData:
    """What a loaded entry holds: its box's conversation, and the models its key may use."""

    session: VoiceSession
    models: tuple[ModelInfo, ...] = ()
    """As the account listed them at setup or at the last daily check."""


type RealtimeVoiceConfigEntry = ConfigEntry[RealtimeVoiceData]
