"""The model misbehaves: every bad tool call is an error output, and the conversation goes on.

Each case has the model make one bad call, then answer; the session must stay active, fire the
audit event, give the model an error it can read, touch nothing it may not, and end clean.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import EVENT_TOOL_CALL, EVENT_TRANSCRIPT
from tests.helpers.integration import (
    GARAGE,
    KITCHEN,
    EventLog,
    assert_recovered,
    box_session,
    function_outputs,
)
from tests.simulator import CallFunction, Reply, SimulatedCall, Simulator

from .common import act


@dataclass(frozen=True)
class BadCall:
    """One way the model calls a tool wrongly, and what the model is told."""

    name: str
    call: CallFunction
    error: str
    outcome: str = "error"


BAD_CALLS = [
    BadCall(
        "invalid JSON", CallFunction("intent__HassTurnOn", raw_arguments="{not json"), "ValueError"
    ),
    BadCall("unknown tool", CallFunction("intent__HassTeleport", {}), "HomeAssistantError"),
    BadCall(
        "unexposed entity",
        CallFunction("intent__HassTurnOn", {"name": "Garage light"}),
        "MatchFailedError",
    ),
    BadCall("tool raises", CallFunction("script__broken", {}), "HomeAssistantError"),
    BadCall("tool hangs", CallFunction("script__hang", {}), "Timeout", outcome="timeout"),
]


async def _scripts(hass: HomeAssistant) -> None:
    """Expose a script whose action raises and one that never finishes."""

    async def explode(_call: ServiceCall) -> None:
        raise HomeAssistantError("the valve is stuck")

    async def hang(_call: ServiceCall) -> None:
        await asyncio.Event().wait()

    hass.services.async_register("test", "explode", explode)
    hass.services.async_register("test", "hang", hang)
    scripts = {
        "broken": {"sequence": [{"action": "test.explode"}]},
        "hang": {"sequence": [{"action": "test.hang"}]},
    }
    assert await async_setup_component(hass, "script", {"script": scripts})
    for script in scripts:
        async_expose_entity(hass, "conversation", f"script.{script}", should_expose=True)


async def _outputs(call: SimulatedCall, count: int) -> list[dict[str, Any]]:
    """Wait for `count` function_call_outputs from the box; return them decoded."""
    async with asyncio.timeout(15):
        while len(function_outputs(call)) < count:
            created = sum(e["type"] == "conversation.item.create" for _, e in call.client_events)
            await call.wait_for_client_event("conversation.item.create", index=created)
    return function_outputs(call)


@pytest.mark.parametrize("bad", BAD_CALLS, ids=[bad.name for bad in BAD_CALLS])
async def test_a_bad_tool_call(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, bad: BadCall
) -> None:
    """The model gets an error it can read, says something, and the conversation goes on."""
    await _scripts(hass)
    audits = EventLog(hass, EVENT_TOOL_CALL)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    simulator.script(bad.call, Reply("Sorry, that did not work."))
    await act(hass, "start_conversation")
    call = await simulator.wait_for_call()
    await act(hass, "send_text", text="Do the odd thing")
    [output] = await _outputs(call, 1)
    assert output["error"] == bad.error, output
    audit = await audits.wait_for()
    assert audit["outcome"].startswith(bad.outcome)
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "Sorry, that did not work."
    assert box_session(box).state.active
    assert hass.states.get(GARAGE).state == "off"
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)


async def test_a_loop_of_tool_calls(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The model calls tools without end: cut after the per-turn limit (3).

    The call past the limit gets an error output and one last response in which the model may
    not call tools (`tool_choice: none`), so it answers instead of looping on billed responses.
    """
    simulator.script(
        *[CallFunction("intent__HassTurnOn", {"name": "Kitchen light"})] * 6, Reply("Done.")
    )
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await act(hass, "start_conversation")
    call = await simulator.wait_for_call()
    await act(hass, "send_text", text="Turn on the kitchen light, forever")
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "Done."
    await call.wait_for_server_event("output_audio_buffer.stopped")
    outputs = await _outputs(call, 4)
    assert ["error" in output for output in outputs] == [False] * 3 + [True]
    assert "Too many tool calls" in outputs[3]["error_text"]
    creates = [event for _, event in call.client_events if event["type"] == "response.create"]
    # send_text's, one after each allowed call, and the last one without tools: no more.
    assert [create.get("response", {}).get("tool_choice") for create in creates] == [
        None,
        None,
        None,
        None,
        "none",
    ]
    assert hass.states.get(KITCHEN).state == "on"
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)
