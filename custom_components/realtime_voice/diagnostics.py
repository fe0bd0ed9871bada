"""Diagnostics: the settings and the state of a box, with the API key redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .models import RealtimeVoiceConfigEntry

TO_REDACT = {CONF_API_KEY, "api_key"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RealtimeVoiceConfigEntry
) -> dict[str, Any]:
    """Return what helps to understand a problem, never the key."""
    session = entry.runtime_data.session
    return {
        "data": async_redact_data(dict(entry.data), TO_REDACT),
        "options": dict(entry.options),
        "settings": async_redact_data(asdict(session.settings), TO_REDACT),
        "state": asdict(session.state),
        "audio": session.audio_diagnostics(),
    }
