"""Base entity: a thin renderer of one box's SessionState."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, override

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, Box
from .session import VoiceSession
from .state import SessionState

if TYPE_CHECKING:
    from .models import RealtimeVoiceConfigEntry


def device_info(box: Box) -> DeviceInfo:
    """Describe the box as one device."""
    return DeviceInfo(
        identifiers={(DOMAIN, box.id)},
        name=box.title,
        manufacturer="OpenAI",
        model="Realtime voice assistant",
        entry_type=DeviceEntryType.SERVICE,
    )


class RealtimeVoiceEntity(Entity):
    """An entity of one box, pushed by its session, never polled."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, session: VoiceSession, description: EntityDescription) -> None:
        """Bind the entity to the box's session."""
        self.session = session
        self.entity_description = description
        self._attr_unique_id = f"{session.box.id}-{description.key}"
        self._attr_device_info = device_info(session.box)

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the session's state."""
        await super().async_added_to_hass()
        self.async_on_remove(self.session.async_subscribe(self._on_state))

    def _on_state(self, _state: SessionState) -> None:
        """Render the new snapshot."""
        self.async_write_ha_state()


def add_entities[D: EntityDescription](
    entry: RealtimeVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: type[RealtimeVoiceEntity],
    descriptions: Iterable[D],
) -> None:
    """Add one entity of entity_class per description to every box, under its subentry."""
    for box_id, session in entry.runtime_data.boxes.items():
        async_add_entities(
            (entity_class(session, description) for description in descriptions),
            config_subentry_id=box_id,
        )
