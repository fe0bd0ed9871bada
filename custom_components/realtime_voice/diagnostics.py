"""Diagnostics: the settings and the state of a box, without the key or anything private.

What people said at home (transcripts), the persona and the user's own tools are the user's
text: a diagnostics file ends up attached to public issues, so they are redacted too.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from .const import CONF_GREETING, CONF_INSTRUCTIONS, CONF_USER_TOOLS
from .models import RealtimeVoiceConfigEntry

TO_REDACT: Final = {
    CONF_API_KEY,
    CONF_INSTRUCTIONS,
    CONF_GREETING,
    CONF_USER_TOOLS,
    "user_transcript",
    "assistant_transcript",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RealtimeVoiceConfigEntry
) -> dict[str, Any]:
    """Return what helps to understand a problem, never the key or the user's words."""
    boxes = entry.runtime_data.boxes
    return async_redact_data(
        {
            "data": dict(entry.data),
            "boxes": {
                box_id: {
                    "title": entry.subentries[box_id].title,
                    "data": dict(entry.subentries[box_id].data),
                    "settings": asdict(session.settings, dict_factory=_json_dict),
                    "state": asdict(session.state),
                    "audio": session.audio_diagnostics(),
                }
                for box_id, session in boxes.items()
                if box_id in entry.subentries
            },
        },
        TO_REDACT,
    )


def _json_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a dataclass's dict with its sets as sorted lists (JSON has no sets)."""
    return {key: sorted(value) if isinstance(value, frozenset) else value for key, value in items}
