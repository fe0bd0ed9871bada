"""Runtime data of a Realtime Voice entry."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .session import VoiceSession


@dataclass
class RealtimeVoiceData:
    """What a loaded entry holds: its box's conversation."""

    session: VoiceSession


type RealtimeVoiceConfigEntry = ConfigEntry[RealtimeVoiceData]
