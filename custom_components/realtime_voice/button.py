"""Buttons: start and end a conversation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import RealtimeVoiceEntity, add_entities
from .models import RealtimeVoiceConfigEntry
from .session import VoiceSession

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class RealtimeVoiceButtonDescription(ButtonEntityDescription):
    """A button that acts on the session."""

    press_fn: Callable[[VoiceSession], Awaitable[None]]


BUTTONS: tuple[RealtimeVoiceButtonDescription, ...] = (
    RealtimeVoiceButtonDescription(
        key="start_conversation",
        translation_key="start_conversation",
        press_fn=lambda session: session.async_start(),
    ),
    RealtimeVoiceButtonDescription(
        key="end_conversation",
        translation_key="end_conversation",
        press_fn=lambda session: session.async_end(),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RealtimeVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the box's buttons."""
    add_entities(entry, async_add_entities, RealtimeVoiceButton, BUTTONS)


class RealtimeVoiceButton(RealtimeVoiceEntity, ButtonEntity):
    """Start or end the conversation."""

    entity_description: RealtimeVoiceButtonDescription

    @override
    async def async_press(self) -> None:
        """Act on the session; errors reach the user translated."""
        await self.entity_description.press_fn(self.session)

    @override
    def _on_state(self, _state: object) -> None:
        """Buttons have no state to render."""
