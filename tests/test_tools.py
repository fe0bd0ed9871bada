"""The model acts on the home: real entities changed by real tool calls, and what is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from typing import Any

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_ALLOWED_ACTIONS,
    CONF_CONFIRM_RISKY_ACTIONS,
    CONF_MAX_TOOL_CALLS,
    CONF_TOOL_TIMEOUT,
    CONF_USER_TOOLS,
    DOMAIN,
    EVENT_SESSION_ENDED,
    EVENT_TOOL_CALL,
    EVENT_TRANSCRIPT,
)
from tests.helpers.integration import (
    FRONT_DOOR,
    GARAGE,
    KITCHEN,
    EventLog,
    box_entry,
    box_session,
    build_home,
    running_box,
)

from .simulator import CallFunction, Reply, SimulatedCall, Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")


@pytest.fixture
async def options() -> dict[str, Any]:
    """Options of the box; tests change them before the box is set up."""
    return {CONF_LLM_HASS_API: ["assist"], CONF_TOOL_TIMEOUT: 2, CONF_MAX_TOOL_CALLS: 3}


@pytest.fixture
async def box(
    hass: HomeAssistant, simulator: Simulator, options: dict[str, Any]
) -> AsyncIterator[MockConfigEntry]:
    """Set up a home and a box that may control it through the Assist API."""
    await build_home(hass)
    async with running_box(hass, box_entry(simulator, options=options)) as entry:
        yield entry


async def _ask(hass: HomeAssistant, text: str) -> SimulatedCall:
    """Start a conversation and type what the user says."""
    await hass.services.async_call(DOMAIN, "start_conversation", {}, blocking=True)
    await hass.services.async_call(DOMAIN, "send_text", {"text": text}, blocking=True)
    return hass.data["_test_simulator"].calls[-1]


async def _output(call: SimulatedCall, index: int = 0) -> dict[str, Any]:
    """Return the index-th function_call_output the box sent, decoded."""

    def outputs() -> list[dict[str, Any]]:
        return [
            event["item"]
            for _, event in call.client_events
            if event["type"] == "conversation.item.create"
            and event["item"]["type"] == "function_call_output"
        ]

    async with asyncio.timeout(10):
        while len(outputs()) <= index:
            created = sum(e["type"] == "conversation.item.create" for _, e in call.client_events)
            await call.wait_for_client_event("conversation.item.create", index=created)
    result: dict[str, Any] = json.loads(outputs()[index]["output"])
    return result


@pytest.fixture(autouse=True)
def _remember_simulator(hass: HomeAssistant, simulator: Simulator) -> None:
    hass.data["_test_simulator"] = simulator


async def test_the_tools_are_offered(
    box: MockConfigEntry, simulator: Simulator, hass: HomeAssistant
) -> None:
    """The session gets the Assist API's tools, end_session, and the API's prompt."""
    await hass.services.async_call(DOMAIN, "start_conversation", {}, blocking=True)
    update = await simulator.calls[0].wait_for_client_event("session.update")
    names = [tool["name"] for tool in update["session"]["tools"]]
    assert "end_session" in names
    assert {"intent__HassTurnOn", "intent__HassTurnOff", "llm__GetDateTime"} <= set(names)
    turn_on = next(
        tool for tool in update["session"]["tools"] if tool["name"] == "intent__HassTurnOn"
    )
    assert turn_on["parameters"]["type"] == "object"
    assert "name" in turn_on["parameters"]["properties"]
    assert "Kitchen light" in update["session"]["instructions"]
    assert "Garage light" not in update["session"]["instructions"]


async def test_turn_on_the_kitchen_light(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The model's call turns the light on; it gets the result and says so."""
    simulator.script(
        CallFunction("intent__HassTurnOn", {"name": "Kitchen light"}),
        Reply("The kitchen light is on."),
    )
    audits = EventLog(hass, EVENT_TOOL_CALL)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    assert hass.states.get(KITCHEN).state == "off"

    call = await _ask(hass, "Turn on the kitchen light")

    output = await _output(call)
    assert hass.states.get(KITCHEN).state == "on"
    assert output["response_type"] == "action_done"
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "The kitchen light is on."
    audit = await audits.wait_for()
    assert audit["tool"] == "intent__HassTurnOn"
    assert audit["arguments"] == {"name": "Kitchen light"}
    assert audit["outcome"] == "success"
    assert audit["duration_ms"] >= 0


async def test_an_unexposed_entity_is_not_touched(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The garage light is not exposed to Assist: the call fails, the light stays off."""
    simulator.script(
        CallFunction("intent__HassTurnOn", {"name": "Garage light"}), Reply("I can't.")
    )
    call = await _ask(hass, "Turn on the garage light")
    output = await _output(call)
    assert output["error"]
    assert hass.states.get(GARAGE).state == "off"
    await call.wait_for_client_event("response.create", index=1)


async def test_a_lock_is_refused_by_default(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Unlocking the front door is refused with a reason the model can say."""
    simulator.script(CallFunction("intent__HassTurnOff", {"name": "Front door"}), Reply("Sorry."))
    call = await _ask(hass, "Unlock the front door")
    output = await _output(call)
    assert output["error"] == "ToolRefusedError"
    assert "options" in output["error_text"]
    assert hass.states.get(FRONT_DOOR).state == "locked"


@pytest.mark.parametrize(
    "options",
    [
        {
            CONF_LLM_HASS_API: ["assist"],
            CONF_ALLOW_RISKY_ACTIONS: True,
            CONF_CONFIRM_RISKY_ACTIONS: False,
        }
    ],
)
async def test_a_lock_works_when_allowed(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """With high-risk actions allowed (and no spoken confirmation), the call unlocks the door."""
    simulator.script(
        CallFunction("intent__HassTurnOff", {"name": "Front door"}), Reply("Unlocked.")
    )
    call = await _ask(hass, "Unlock the front door")
    output = await _output(call)
    assert "error" not in output
    assert hass.states.get(FRONT_DOOR).state == "unlocked"


@pytest.mark.parametrize(
    ("turn", "explained"),
    [
        (CallFunction("intent__HassTurnOn", {"name": 42}), "name"),
        (CallFunction("NoSuchTool", {"x": 1}), "not found"),
    ],
)
async def test_bad_calls_get_an_error_output_and_the_session_goes_on(
    hass: HomeAssistant,
    box: MockConfigEntry,
    simulator: Simulator,
    turn: CallFunction,
    explained: str,
) -> None:
    """Arguments the tool refuses, or an unknown tool: an error output, then an answer."""
    simulator.script(turn, Reply("Something went wrong."))
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    call = await _ask(hass, "Do something odd")
    output = await _output(call)
    assert output["error"]
    assert explained in output["error_text"]
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant")
    assert said["text"] == "Something went wrong."
    assert box_session(box).state.active


async def test_invalid_json_arguments(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Arguments that are not JSON reach the model as an error, not a crash."""
    simulator.script(Reply("Let me try that."))
    await hass.services.async_call(DOMAIN, "start_conversation", {}, blocking=True)
    call = simulator.calls[0]
    await call.send(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "resp_x",
            "item_id": "item_x",
            "output_index": 0,
            "call_id": "call_badjson",
            "name": "intent__HassTurnOn",
            "arguments": "{not json",
        }
    )
    output = await _output(call)
    assert output["error"] == "ValueError"
    assert "not valid JSON" in output["error_text"]


async def test_a_failing_and_a_slow_action(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """An action that raises, and one slower than the time-out: both are error outputs."""

    async def slow(_call: ServiceCall) -> None:
        await asyncio.sleep(30)

    hass.services.async_register("script", "slow_thing", slow)
    await async_setup_component(
        hass,
        "script",
        {"script": {"broken": {"alias": "Broken", "sequence": [{"action": "nope.nothing"}]},
                    "slowpoke": {"alias": "Slowpoke", "sequence": [{"delay": 30}]}}},
    )  # fmt: skip
    async_expose_entity(hass, "conversation", "script.broken", should_expose=True)
    async_expose_entity(hass, "conversation", "script.slowpoke", should_expose=True)
    simulator.script(
        CallFunction("script__broken", {}), Reply("That failed."),
        CallFunction("script__slowpoke", {}), Reply("That was too slow."),
    )  # fmt: skip
    # Reload the box so the session sees the scripts as tools.
    assert await hass.config_entries.async_reload(box.entry_id)
    call = await _ask(hass, "Run the broken script")
    failed = await _output(call)
    assert failed["error"]
    await hass.services.async_call(DOMAIN, "send_text", {"text": "now the slow one"}, blocking=True)
    slow_output = await _output(call, index=1)
    assert slow_output["error"] == "Timeout"


async def test_end_session_says_goodbye_then_ends(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """The built-in end_session: the goodbye is spoken, then the conversation ends."""
    simulator.script(CallFunction("end_session", {"goodbye": "Bye!"}), Reply("Bye!"))
    ended = EventLog(hass, EVENT_SESSION_ENDED)
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    await _ask(hass, "That's all, thanks")
    end = await ended.wait_for()
    assert end["reason"] == "goodbye"
    said = await transcripts.wait_for(lambda data: data["role"] == "assistant", timeout=0)
    assert said["text"] == "Bye!"


async def test_the_tool_call_limit_holds(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """A model that keeps calling tools is stopped after the per-turn limit (3 here)."""
    simulator.script(
        *[CallFunction("intent__HassTurnOn", {"name": "Kitchen light"})] * 4, Reply("Done.")
    )
    call = await _ask(hass, "Turn on the kitchen light, again and again")
    outputs = [await _output(call, index) for index in range(4)]
    assert all("error" not in output for output in outputs[:3])
    assert "Too many tool calls" in outputs[3]["error_text"]


WATER = {
    "name": "water_plants",
    "description": "Water the plants: switch the kitchen light on as a stand-in valve.",
    "action": "script.water_plants",
    "parameters": {
        "type": "object",
        "properties": {"minutes": {"type": "integer"}},
        "required": ["minutes"],
    },
}
WATER_SCRIPT = {
    "water_plants": {
        "alias": "Water plants",
        "fields": {"minutes": {}},
        "sequence": [
            {"action": "input_boolean.turn_on", "target": {"entity_id": "input_boolean.kitchen"}}
        ],
    }
}


@pytest.mark.parametrize(
    "options",
    [
        {
            CONF_LLM_HASS_API: [],
            CONF_USER_TOOLS: [
                WATER,
                {**WATER, "name": "not_allowed", "action": "script.other"},
                {**WATER, "name": "fill_the_pond", "action": "script.fill_the_pond"},
            ],
            CONF_ALLOWED_ACTIONS: ["script.water_plants", "script.fill_the_pond"],
        }
    ],
)
async def test_a_user_tool_on_the_allowlist(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Only allowlisted user tools are offered; calling one runs its action.

    Wrong arguments and an allowlisted script that does not exist (deleted since) are errors
    the model is told about; the conversation goes on.
    """
    assert await async_setup_component(hass, "script", {"script": WATER_SCRIPT})
    simulator.script(
        CallFunction("water_plants", {"minutes": 5}), Reply("Watering."),
        CallFunction("water_plants", {"hours": 1}), Reply("Oops."),
        CallFunction("water_plants", {}), Reply("Oops."),
        CallFunction("fill_the_pond", {"minutes": 1}), Reply("Oops."),
    )  # fmt: skip
    call = await _ask(hass, "Water the plants for five minutes")
    update = await call.wait_for_client_event("session.update")
    names = [tool["name"] for tool in update["session"]["tools"]]
    assert names == ["end_session", "water_plants", "fill_the_pond"]
    assert await _output(call) == {"success": True}
    assert hass.states.get("input_boolean.kitchen").state == "on"

    said = ("for an hour", "again", "and fill the pond")
    for index, (text, error) in enumerate(
        zip(said, ("Unknown arguments: hours", "Missing arguments: minutes",
                   "The action script.fill_the_pond does not exist"), strict=True),
        start=1,
    ):  # fmt: skip
        # One response at a time: the model's reply to the last output ends first.
        await call.wait_for_server_event("response.done", index=2 * index - 1, timeout=10)
        await hass.services.async_call(DOMAIN, "send_text", {"text": text}, blocking=True)
        wrong = await _output(call, index=index)
        assert error in wrong["error_text"]


@pytest.mark.parametrize(
    "options",
    [
        {
            CONF_LLM_HASS_API: [],
            CONF_USER_TOOLS: [
                {"name": "switch_on", "description": "Turn something on",
                 "action": "input_boolean.turn_on",
                 "parameters": {"type": "object", "properties": {"entity_id": {"type": "string"}}}}
            ],
            CONF_ALLOWED_ACTIONS: ["input_boolean.turn_on"],
        }
    ],
)  # fmt: skip
async def test_a_user_tool_cannot_reach_an_unexposed_entity(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator
) -> None:
    """Even an allowlisted action is refused on an entity not exposed to Assist."""
    async_expose_entity(hass, "conversation", "input_boolean.garage", should_expose=False)
    simulator.script(CallFunction("switch_on", {"entity_id": "input_boolean.garage"}), Reply("No."))
    call = await _ask(hass, "Switch the garage on")
    output = await _output(call)
    assert output["error"] == "ToolRefusedError"
    assert hass.states.get("input_boolean.garage").state == "off"

    simulator.script(
        CallFunction("switch_on", {"entity_id": FRONT_DOOR}), Reply("No."),
        CallFunction("no_such_tool", {}), Reply("No."),
        CallFunction("switch_on", ["not", "an", "object"]), Reply("No."),
    )  # fmt: skip
    for index, text in enumerate(("unlock the door", "do magic", "odd arguments"), start=1):
        await hass.services.async_call(DOMAIN, "send_text", {"text": text}, blocking=True)
        refused = await _output(call, index=index)
        assert refused["error"]
    assert hass.states.get(FRONT_DOOR).state == "locked"
