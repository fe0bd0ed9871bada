"""Actions: start_conversation, end_conversation, send_text, announce."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, cast

from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr
import probatio

from .const import DOMAIN
from .models import RealtimeVoiceConfigEntry
from .session import VoiceSession

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_INSTRUCTIONS: Final = "instructions"
ATTR_GREETING: Final = "greeting"
ATTR_GOODBYE: Final = "goodbye"
ATTR_TEXT: Final = "text"
ATTR_MESSAGE: Final = "message"
ATTR_LISTEN: Final = "listen"

_TARGET: Final = {
    probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    probatio.Optional(ATTR_DEVICE_ID): cv.string,
}

type Handler = Callable[[VoiceSession, dict[str, Any]], Awaitable[None]]

_ACTIONS: Final[dict[str, tuple[dict[Any, Any], Handler]]] = {
    "start_conversation": (
        {
            probatio.Optional(ATTR_INSTRUCTIONS): cv.string,
            probatio.Optional(ATTR_GREETING): cv.string,
        },
        lambda session, data: session.async_start(
            data.get(ATTR_INSTRUCTIONS), data.get(ATTR_GREETING)
        ),
    ),
    "end_conversation": (
        {probatio.Optional(ATTR_GOODBYE): cv.string},
        lambda session, data: session.async_end(data.get(ATTR_GOODBYE)),
    ),
    "send_text": (
        {probatio.Required(ATTR_TEXT): cv.string},
        lambda session, data: session.async_send_text(data[ATTR_TEXT]),
    ),
    "announce": (
        {
            probatio.Required(ATTR_MESSAGE): cv.string,
            probatio.Optional(ATTR_LISTEN, default=False): cv.boolean,
        },
        lambda session, data: session.async_announce(data[ATTR_MESSAGE], listen=data[ATTR_LISTEN]),
    ),
}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions."""
    for name, (fields, handler) in _ACTIONS.items():

        async def _handle(call: ServiceCall, handler: Handler = handler) -> None:
            await handler(_target_session(call.hass, call.data), dict(call.data))

        hass.services.async_register(
            DOMAIN, name, _handle, schema=probatio.Schema({**_TARGET, **fields})
        )


def _target_session(hass: HomeAssistant, data: Mapping[str, Any]) -> VoiceSession:
    """Find the box an action is for: by device, by entry (or box), or the only one there is.

    A config entry id names an account, and the box if it has one; a box's own id is taken
    too, since a box moved from a version-1 entry keeps that entry's id.
    """
    boxes = [
        session
        for entry in hass.config_entries.async_loaded_entries(DOMAIN)
        for session in cast("RealtimeVoiceConfigEntry", entry).runtime_data.boxes.values()
    ]
    if device_id := data.get(ATTR_DEVICE_ID):
        device = dr.async_get(hass).async_get(device_id)
        boxes = [
            session for session in boxes if device and session.box.id == device.config_subentry_id
        ]
        if not boxes:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="unknown_box")
    if entry_id := data.get(ATTR_CONFIG_ENTRY_ID):
        named = [session for session in boxes if session.box.id == entry_id]
        boxes = named or [session for session in boxes if session.entry_id == entry_id]
    if len(boxes) != 1:
        key = "ambiguous_box" if boxes else "unknown_box"
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key=key)
    return boxes[0]
