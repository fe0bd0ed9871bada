"""The API key never shows, and the model reaches only what is exposed to Assist."""

from __future__ import annotations

import json
import logging
from typing import Any

from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.realtime_voice.const import EVENT_SESSION_ENDED, EVENT_TRANSCRIPT
from tests.helpers.integration import GARAGE, KITCHEN, EventLog, assert_recovered
from tests.simulator import CallFunction, Reply, Simulator

from .common import API_KEY, act, start_fails

LOGGERS = ("custom_components.realtime_voice", "aiortc", "aioice", "aiohttp", "homeassistant")


async def test_the_key_never_shows(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    box: MockConfigEntry,
    simulator: Simulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A whole conversation with tools, refusals and errors, logged at DEBUG: no key anywhere."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    assert await async_setup_component(hass, "diagnostics", {})
    events: list[Event[Any]] = []

    @callback
    def record(event: Event[Any]) -> None:
        events.append(event)

    hass.bus.async_listen(MATCH_ALL, record)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    ended = EventLog(hass, EVENT_SESSION_ENDED)

    simulator.faults.http_status = (401, "invalid_api_key")
    await start_fails(hass, "auth_failed")
    simulator.faults.http_status = None
    simulator.script(
        CallFunction("intent__HassTurnOn", {"name": "Kitchen light"}),
        CallFunction("intent__HassTurnOn", {"name": "Garage light"}),
        CallFunction("intent__HassTurnOn", {"domain": "light"}),
        CallFunction("intent__HassTurnOff", {"name": "Front door"}),
        Reply("The kitchen light is on; the rest I may not touch."),
        CallFunction("end_session", {"goodbye": "Bye!"}),
        Reply("Bye!"),
    )
    await act(hass, "start_conversation")
    call = await simulator.wait_for_call()
    await act(hass, "send_text", text="Turn on every light and unlock the door")
    await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=20)
    await call.send({"type": "error", "error": {"type": "invalid_request_error",
                                                "code": "bad", "message": "odd", "param": None,
                                                "event_id": None}})  # fmt: skip
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, box)
    await act(hass, "send_text", text="Goodbye")
    assert (await ended.wait_for(timeout=20))["reason"] == "goodbye"
    await assert_recovered(hass, simulator)

    assert hass.states.get(KITCHEN).state == "on"
    assert hass.states.get(GARAGE).state == "off"
    assert hass.states.get("lock.front_door").state == "locked"
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    assert API_KEY not in caplog.text
    assert API_KEY not in json.dumps(diagnostics)
    states = [state.as_dict() for state in hass.states.async_all()]
    assert API_KEY not in json.dumps(states, default=str)
    assert {"realtime_voice_tool_call", "realtime_voice_transcript"} <= {
        e.event_type for e in events
    }
    assert API_KEY not in json.dumps([(e.event_type, e.data) for e in events], default=str)
