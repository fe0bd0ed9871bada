"""Binary sensors: assistant speaking, user speaking, session active."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import RealtimeVoiceEntity, add_entities
from .models import RealtimeVoiceConfigEntry
from .state import Activity, SessionState

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class RealtimeVoiceBinarySensorDescription(BinarySensorEntityDescription):
    """A binary sensor computed from the session's state."""

    is_on_fn: Callable[[SessionState], bool]


BINARY_SENSORS: tuple[RealtimeVoiceBinarySensorDescription, ...] = (
    RealtimeVoiceBinarySensorDescription(
        key="assistant_speaking",
        translation_key="assistant_speaking",
        device_class=BinarySensorDeviceClass.SOUND,
        is_on_fn=lambda state: state.activity is Activity.ASSISTANT_SPEAKING,
    ),
    RealtimeVoiceBinarySensorDescription(
        key="user_speaking",
        translation_key="user_speaking",
        device_class=BinarySensorDeviceClass.SOUND,
        is_on_fn=lambda state: state.activity is Activity.USER_SPEAKING,
    ),
    RealtimeVoiceBinarySensorDescription(
        key="session_active",
        translation_key="session_active",
        device_class=BinarySensorDeviceClass.RUNNING,
        is_on_fn=lambda state: state.active,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RealtimeVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the box's binary sensors."""
    add_entities(entry, async_add_entities, RealtimeVoiceBinarySensor, BINARY_SENSORS)


class RealtimeVoiceBinarySensor(RealtimeVoiceEntity, BinarySensorEntity):
    """A yes/no view of the conversation."""

    entity_description: RealtimeVoiceBinarySensorDescription

    @property
    @override
    def is_on(self) -> bool:
        """Return the state computed from the snapshot."""
        return self.entity_description.is_on_fn(self.session.state)
