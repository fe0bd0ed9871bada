"""The option table: every option reaches the settings field it names, with its default."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_API_KEY
import pytest

from custom_components.realtime_voice.const import (
    CONF_CONTEXT_LIMIT,
    CONF_MODEL,
    CONF_TURN_DETECTION,
)
from custom_components.realtime_voice.options import OPTIONS, Option, defaults
from custom_components.realtime_voice.settings import SessionSettings

ENTRY_DATA = {CONF_API_KEY: "sk-test"}

# A value unlike the default for every option; some need a companion to take effect.
CHANGED: dict[str, Any] = {
    "instructions": "Be a pirate.",
    "voice": "cedar",
    "model": "gpt-realtime-2.1",
    "reasoning_effort": "high",
    "greeting": "Ahoy.",
    "idle_timeout": 12,
    "max_duration": 3,
    "duplex": "full",
    "noise_suppression": False,
    "high_pass_filter": False,
    "noise_reduction": "near_field",
    "turn_detection": "semantic_vad",
    "vad_eagerness": "high",
    "transcription_model": "whisper-1",
    "transcription_language": "de",
    "llm_hass_api": [],
    "allow_risky_actions": True,
    "confirm_risky_actions": False,
    "risky_entities": ["light.kitchen"],
    "user_tools": [{"name": "water", "description": "Water.", "action": "script.water"}],
    "allowed_actions": ["script.water"],
    "tool_timeout": 3,
    "max_tool_calls": 2,
    "context_limit": 4000,
    "retention_ratio": 0.8,
    "budget_daily": 1.0,
    "budget_monthly": 10.0,
    "budget_conversation": 0.5,
    "prices": {"audio": {"output": 50}},
}
COMPANIONS: dict[str, dict[str, Any]] = {
    "reasoning_effort": {CONF_MODEL: "gpt-realtime-2.1"},
    "vad_eagerness": {CONF_TURN_DETECTION: "semantic_vad"},
    "retention_ratio": {CONF_CONTEXT_LIMIT: 4000},
}


def _field(settings: SessionSettings, dotted: str) -> Any:
    """Return a field of the settings; None if a field on the way is None (switched off)."""
    found: Any = settings
    for name in dotted.split("."):
        found = getattr(found, name, None)
    return found


def test_every_option_has_a_changed_value() -> None:
    """The table and this test list the same options."""
    assert {option.key for option in OPTIONS} == set(CHANGED)


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.key)
def test_every_option_reaches_the_settings_field_it_names(option: Option) -> None:
    """Stored, an option changes its field; unset, the field has the table's default."""
    companion = COMPANIONS.get(option.key, {})
    before = SessionSettings.from_box(ENTRY_DATA, companion)
    after = SessionSettings.from_box(ENTRY_DATA, {**companion, option.key: CHANGED[option.key]})
    assert _field(after, option.feeds) != _field(before, option.feeds)


def test_the_defaults_stored_equal_nothing_stored() -> None:
    """A new box stores the defaults: its settings are those of a box that stores nothing."""
    assert SessionSettings.from_box(ENTRY_DATA, defaults()) == SessionSettings.from_box(
        ENTRY_DATA, {}
    )
