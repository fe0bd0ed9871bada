"""Sensors: the conversation's state, the last transcripts, tokens and estimated cost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .entity import RealtimeVoiceEntity, add_entities
from .models import RealtimeVoiceConfigEntry
from .state import Activity, SessionState, Transcript

PARALLEL_UPDATES = 0
MAX_STATE_LENGTH: Final = 255
"""Home Assistant refuses longer states: the whole text goes to an attribute."""


@dataclass(frozen=True, kw_only=True)
class RealtimeVoiceSensorDescription(SensorEntityDescription):
    """A sensor computed from the session's state."""

    value_fn: Callable[[SessionState], StateType]
    attributes_fn: Callable[[SessionState], dict[str, Any]] = lambda _state: {}
    last_reset_fn: Callable[[SessionState], datetime | None] = lambda _state: None


def _text(transcript: Transcript | None) -> str | None:
    return None if transcript is None else transcript.text[:MAX_STATE_LENGTH]


def _transcript_attributes(transcript: Transcript | None) -> dict[str, Any]:
    if transcript is None:
        return {}
    return {"text": transcript.text, "time": transcript.at.isoformat(), "final": transcript.final}


SENSORS: tuple[RealtimeVoiceSensorDescription, ...] = (
    RealtimeVoiceSensorDescription(
        key="state",
        translation_key="state",
        device_class=SensorDeviceClass.ENUM,
        options=[activity.value for activity in Activity],
        value_fn=lambda state: state.activity.value,
        attributes_fn=lambda state: {"last_error": state.last_error},
    ),
    RealtimeVoiceSensorDescription(
        # A count per conversation: `total` with the conversation's start as its last reset,
        # so that long-term statistics add the conversations up (tokens per day, per month).
        key="session_tokens",
        translation_key="session_tokens",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL,
        native_unit_of_measurement="tokens",
        # Unknown until a conversation ran: a 0 after a restart would read as tokens given back.
        value_fn=lambda state: state.session_usage.total if state.session_started else None,
        attributes_fn=lambda state: {
            **asdict(state.session_usage),
            **{f"transcription_{k}": v for k, v in asdict(state.session_transcription).items()},
            "total_tokens": state.total_tokens,
        },
        last_reset_fn=lambda state: state.session_started,
    ),
    RealtimeVoiceSensorDescription(
        key="estimated_cost",
        translation_key="estimated_cost",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        native_unit_of_measurement="USD",
        suggested_display_precision=4,
        value_fn=lambda state: round(state.total_cost, 6),
        attributes_fn=lambda state: {
            "session_cost": round(state.session_cost, 6),
            "cost_today": round(state.cost_today, 6),
            "cost_this_month": round(state.cost_this_month, 6),
        },
    ),
)


TRANSCRIPT_SENSORS: tuple[RealtimeVoiceSensorDescription, ...] = (
    RealtimeVoiceSensorDescription(
        key="user_transcript",
        translation_key="user_transcript",
        value_fn=lambda state: _text(state.user_transcript),
        attributes_fn=lambda state: _transcript_attributes(state.user_transcript),
    ),
    RealtimeVoiceSensorDescription(
        key="assistant_transcript",
        translation_key="assistant_transcript",
        value_fn=lambda state: _text(state.assistant_transcript),
        attributes_fn=lambda state: _transcript_attributes(state.assistant_transcript),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RealtimeVoiceConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the box's sensors."""
    add_entities(entry, async_add_entities, RealtimeVoiceSensor, SENSORS)
    add_entities(entry, async_add_entities, TranscriptSensor, TRANSCRIPT_SENSORS)


class RealtimeVoiceSensor(RealtimeVoiceEntity, SensorEntity):
    """A value of the conversation."""

    entity_description: RealtimeVoiceSensorDescription

    @property
    @override
    def native_value(self) -> StateType:
        """Return the value computed from the snapshot."""
        return self.entity_description.value_fn(self.session.state)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the details computed from the snapshot."""
        return self.entity_description.attributes_fn(self.session.state)

    @property
    @override
    def last_reset(self) -> datetime | None:
        """Return when the count started again (the conversation tokens only)."""
        return self.entity_description.last_reset_fn(self.session.state)


class TranscriptSensor(RealtimeVoiceSensor):
    """The last words of one side; its attributes stay out of the recorder.

    The live assistant text changes up to four times a second while it is spoken, and `text`
    holds all of it: recorded, that is a database row per update and everything said at home
    kept in the history. The state (the first 255 characters) is recorded as usual.
    """

    _unrecorded_attributes = frozenset({"text", "time", "final"})
