"""The safety findings end to end: a real conversation over the simulator, a real home.

Each test is one finding of the code review (research/s2-code-review.md §1, 2, 4, 9, 10) or the
spoken confirmation, played the way a model would play it; the router-level and property tests
(test_tool_targets.py, test_tool_safety_property.py) cover the combinations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_ALLOWED_ACTIONS,
    CONF_MAX_TOOL_CALLS,
    CONF_USER_TOOLS,
    DOMAIN,
    EVENT_TOOL_CALL,
    EVENT_TRANSCRIPT,
)
from tests.helpers.integration import (
    ASSISTANT_SPEAKING,
    EventLog,
    StateHistory,
    box_entry,
    function_outputs,
    running_box,
    speak_into_mic,
)
from tests.helpers.safety_home import (
    ChangeRecorder,
    build_safety_home,
    protected,
    register_second_api,
)
from tests.helpers.virtual_audio import speech_wav

from .simulator import CallFunction, CallFunctions, Reply, SimulatedCall, Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")

UNLOCK = CallFunction("intent__HassTurnOff", {"name": "Front door"})


@pytest.fixture
async def options() -> dict[str, Any]:
    """Options of the box; tests change them before the box is set up."""
    return {CONF_LLM_HASS_API: ["assist"], CONF_MAX_TOOL_CALLS: 3}


@pytest.fixture
async def box(
    hass: HomeAssistant, simulator: Simulator, options: dict[str, Any]
) -> AsyncIterator[MockConfigEntry]:
    """Set up the safety home and a box in its kitchen, with a second LLM API registered."""
    register_second_api(hass)
    async with running_box(hass, box_entry(simulator, options=options)) as entry:
        [device] = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        await build_safety_home(hass, device.id)
        yield entry


@pytest.fixture
def changes(hass: HomeAssistant) -> ChangeRecorder:
    """Record every change of a high-risk or unexposed entity."""
    return ChangeRecorder(hass, protected)


async def _ask(hass: HomeAssistant, simulator: Simulator, text: str) -> SimulatedCall:
    """Start a conversation and type what the user says."""
    await hass.services.async_call(DOMAIN, "start_conversation", {}, blocking=True)
    await hass.services.async_call(DOMAIN, "send_text", {"text": text}, blocking=True)
    return simulator.calls[-1]


async def _said(transcripts: EventLog, text: str) -> None:
    """Wait until the assistant said text.

    Generous: several responses, each spoken in real time, on a machine shared with others.
    """
    await transcripts.wait_for(
        lambda data: data["role"] == "assistant" and data["text"] == text, timeout=30
    )


def _creates(call: SimulatedCall) -> list[tuple[float, dict[str, Any]]]:
    return [(at, event) for at, event in call.client_events if event["type"] == "response.create"]


async def test_name_all_unlocks_nothing(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, changes: ChangeRecorder
) -> None:
    """`HassTurnOff {name: all, domain: lock}` is refused; every lock stays locked."""
    simulator.script(
        CallFunction("intent__HassTurnOff", {"name": "all", "domain": ["lock"]}),
        Reply("I cannot do that."),
    )
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _ask(hass, simulator, "Unlock everything")
    await _said(transcripts, "I cannot do that.")
    [output] = function_outputs(call)
    assert output["error"] == "ToolRefusedError"
    assert "Front door" in output["error_text"]
    assert hass.states.get("lock.front_door").state == "locked"
    assert changes.changed == []


@pytest.mark.parametrize("options", [{CONF_LLM_HASS_API: ["assist", "second"]}])
async def test_a_second_api_does_not_switch_the_checks_off(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, changes: ChangeRecorder
) -> None:
    """With Assist and a second API selected, the namespaced unlock is refused too."""
    simulator.script(
        CallFunction("assist__intent__HassTurnOff", {"name": "Front door"}),
        CallFunction("second__switch_on", {"entity_id": "light.hall_light"}),
        Reply("Neither is allowed."),
    )
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _ask(hass, simulator, "Unlock the front door")
    await _said(transcripts, "Neither is allowed.")
    assert [output["error"] for output in function_outputs(call)] == ["ToolRefusedError"] * 2
    assert hass.states.get("lock.front_door").state == "locked"
    assert hass.states.get("light.hall_light").state == "off"
    assert changes.changed == []


OPEN_COVERS = {
    "name": "open_covers",
    "description": "Open the covers of a room",
    "action": "cover.open_cover",
    "parameters": {"type": "object", "properties": {"area_id": {"type": "string"}}},
}


@pytest.mark.parametrize(
    "options",
    [
        {
            CONF_LLM_HASS_API: [],
            CONF_USER_TOOLS: [OPEN_COVERS],
            CONF_ALLOWED_ACTIONS: ["cover.open_cover"],
        }
    ],
)
async def test_a_user_tool_cannot_open_the_garage_through_its_area(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, changes: ChangeRecorder
) -> None:
    """An owner's tool with an area parameter: the garage's area is refused, the office's runs."""
    areas = ar.async_get(hass)
    garage = areas.async_get_area_by_name("Garage").id
    office = areas.async_get_area_by_name("Office").id
    simulator.script(
        CallFunction("open_covers", {"area_id": garage}), Reply("Not the garage."),
        CallFunction("open_covers", {"area_id": office}), Reply("The blind is open."),
    )  # fmt: skip
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _ask(hass, simulator, "Open the garage")
    await _said(transcripts, "Not the garage.")
    await hass.services.async_call(DOMAIN, "send_text", {"text": "the office"}, blocking=True)
    await _said(transcripts, "The blind is open.")
    refused, done = function_outputs(simulator.calls[-1])
    assert refused["error"] == "ToolRefusedError"
    assert done == {"success": True}
    assert hass.states.get("cover.garage_door").state == "closed"
    assert hass.states.get("cover.office_blind").state == "open"
    assert changes.changed == []


@pytest.mark.parametrize(
    "options", [{CONF_LLM_HASS_API: ["assist"], CONF_ALLOW_RISKY_ACTIONS: True}]
)
async def test_an_allowed_unlock_waits_for_the_spoken_answer(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, tmp_path: Path
) -> None:
    """The model asks; repeating at once does nothing; after the user's answer it unlocks."""
    simulator.script(
        UNLOCK, UNLOCK, Reply("Shall I unlock the front door?"), UNLOCK, Reply("It is open.")
    )
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    audits = EventLog(hass, EVENT_TOOL_CALL)
    assistant = StateHistory(hass, ASSISTANT_SPEAKING)
    call = await _ask(hass, simulator, "Unlock the front door")
    await _said(transcripts, "Shall I unlock the front door?")
    assert [output.get("confirmation_required") for output in function_outputs(call)] == [
        True,
        True,
    ]
    assert hass.states.get("lock.front_door").state == "locked"
    await assistant.until(lambda: assistant.states[-1] == "off")
    await asyncio.sleep(0.5)  # half duplex: the microphone opens 0.3 s after the answer

    # Long enough that VAD hears it even if the microphone opened late on a busy machine.
    await speak_into_mic(speech_wav(tmp_path / "yes.wav", "yes please, unlock the front door"))
    await _said(transcripts, "It is open.")
    assert hass.states.get("lock.front_door").state == "unlocked"
    outcomes = [data["outcome"] for data in audits.events]
    assert outcomes == ["confirmation_required", "confirmation_required", "success"]
    assert "Front door" in audits.events[0]["reason"]


async def test_two_calls_in_one_response_get_one_answer(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Parallel calls: both outputs, then exactly one response.create, after response.done."""
    simulator.script(
        CallFunctions(
            (
                CallFunction("intent__HassTurnOn", {"name": "Kitchen light"}),
                CallFunction("intent__HassTurnOn", {"name": "Hall light"}),
            )
        ),
        Reply("Both are on."),
    )
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _ask(hass, simulator, "Lights on in the kitchen and the hall")
    await _said(transcripts, "Both are on.")
    await call.wait_for_server_event("output_audio_buffer.stopped")
    assert len(function_outputs(call)) == 2
    assert hass.states.get("light.kitchen_light").state == "on"
    assert hass.states.get("light.hall_light").state == "on"
    creates = _creates(call)
    assert len(creates) == 2  # send_text's, and one for the two calls
    done_at = next(
        at
        for at, event in call.server_events
        if event["type"] == "response.done"
        and event["response"]["output"]
        and event["response"]["output"][0]["type"] == "function_call"
    )
    last_output_at = max(
        at
        for at, event in call.client_events
        if event["type"] == "conversation.item.create"
        and event["item"]["type"] == "function_call_output"
    )
    assert creates[1][0] > max(done_at, last_output_at)


@pytest.mark.parametrize("options", [{CONF_LLM_HASS_API: ["assist"], CONF_MAX_TOOL_CALLS: 2}])
async def test_a_batch_past_the_limit_gets_one_last_answer_without_tools(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Four calls in one response, limit 2: two run, two are refused, one tool-less answer."""
    lights = ("Kitchen light", "Hall light", "Kitchen light", "Hall light")
    simulator.script(
        CallFunctions(tuple(CallFunction("intent__HassTurnOn", {"name": n}) for n in lights)),
        CallFunction("intent__HassTurnOff", {"name": "Kitchen light"}),  # passed over
        Reply("That is enough."),
    )
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _ask(hass, simulator, "Lights, lights, lights")
    await _said(transcripts, "That is enough.")
    await call.wait_for_server_event("output_audio_buffer.stopped")
    outputs = function_outputs(call)
    assert ["error" in output for output in outputs] == [False, False, True, True]
    creates = [event for _, event in _creates(call)]
    assert [event.get("response", {}).get("tool_choice") for event in creates] == [None, "none"]
    assert hass.states.get("light.kitchen_light").state == "on"
