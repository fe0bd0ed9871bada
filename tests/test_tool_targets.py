"""The router decides on what a call would really change: real entities in a real home.

These tests call the ToolRouter directly (no WebRTC call): the tools are Home Assistant's own
(the Assist API, a second real LLM API), the entities real ones, and each test looks at what
changed. The end-to-end versions over the simulator are in test_tool_safety.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
import itertools
import json
from typing import Any

from homeassistant.components.intent import async_register_timer_handler
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.confirmations import CONFIRMATION_SECONDS, Confirmations
from custom_components.realtime_voice.const import EVENT_TOOL_CALL
from custom_components.realtime_voice.realtime.events import FunctionCall
from custom_components.realtime_voice.risk import HIGH_RISK_LABEL
from custom_components.realtime_voice.tools import ToolPolicy, ToolRouter
from custom_components.realtime_voice.user_tools import UserTool
from tests.helpers.integration import EventLog
from tests.helpers.safety_home import (
    ChangeRecorder,
    SafetyHome,
    build_safety_home,
    protected,
    register_second_api,
)

_IDS = itertools.count()


class Box:
    """A router as one box holds it, in a home of real entities."""

    def __init__(self, hass: HomeAssistant, device_id: str, home: SafetyHome) -> None:
        self.hass = hass
        self.device_id = device_id
        self.home = home
        self.router = ToolRouter(hass, ToolPolicy())
        self.changes = ChangeRecorder(hass, protected)

    async def prepare(self, **policy: Any) -> list[str]:
        """Apply a policy, start a conversation; return the tool names offered."""
        self.router.policy = replace(ToolPolicy(), **policy)
        prepared = await self.router.async_prepare(self.device_id)
        return [spec.name for spec in prepared.specs]

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Make one call as the model would; return its decoded output."""
        index = next(_IDS)
        call = FunctionCall(
            f"event_{index}", "resp_1", f"item_{index}", f"call_{index}", name,
            json.dumps(arguments or {}),
        )  # fmt: skip
        outcome = await self.router.async_call(call, self.device_id)
        await self.hass.async_block_till_done()
        output: dict[str, Any] = json.loads(outcome.output)
        return output


@pytest.fixture
async def box(hass: HomeAssistant) -> AsyncIterator[Box]:
    """Return a box device in the kitchen, able to run timers, in the safety home."""
    owner = MockConfigEntry(domain="test", title="Box")
    owner.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=owner.entry_id, identifiers={("test", "box")}, name="Box"
    )
    home = await build_safety_home(hass, device.id)
    unregister = async_register_timer_handler(hass, device.id, lambda *_: None)
    register_second_api(hass)
    result = Box(hass, device.id, home)
    yield result
    unregister()
    result.changes.unsubscribe()


def refused(output: dict[str, Any]) -> bool:
    return output.get("error") == "ToolRefusedError"


# --- Finding 1: `name: all` -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("intent__HassTurnOff", {"name": "all", "domain": ["lock"]}),
        ("intent__HassTurnOn", {"name": "all", "area": "Garage"}),
        ("intent__HassSetPosition", {"name": "all", "domain": ["cover"], "position": 100}),
        ("intent__HassTurnOff", {"name": "all", "floor": "Ground floor"}),
        ("intent__HassTurnOn", {"name": "  ", "area": "Garage", "domain": "cover"}),
    ],
)
async def test_every_entity_of_a_kind_is_checked(
    hass: HomeAssistant, box: Box, tool: str, arguments: dict[str, Any]
) -> None:
    """`all` (and a blank name) means every matching entity, as the handler reads it."""
    await box.prepare()
    output = await box.call(tool, arguments)
    assert refused(output), output
    assert box.changes.changed == []
    assert hass.states.get("lock.front_door").state == "locked"


# --- Finding 2: a second LLM API ----------------------------------------------------------------


async def test_a_second_api_keeps_the_checks(hass: HomeAssistant, box: Box) -> None:
    """With two APIs every tool is namespaced: the Assist intents are still checked."""
    names = await box.prepare(llm_apis=("assist", "second"))
    assert {"assist__intent__HassTurnOff", "second__switch_on"} <= set(names)
    assert refused(await box.call("assist__intent__HassTurnOff", {"name": "Front door"}))
    assert hass.states.get("lock.front_door").state == "locked"
    output = await box.call("assist__intent__HassTurnOn", {"name": "Kitchen light"})
    assert output["response_type"] == "action_done"
    assert hass.states.get("light.kitchen_light").state == "on"


async def test_a_tool_whose_targets_are_unknown_is_refused(hass: HomeAssistant, box: Box) -> None:
    """A tool of another API that acts on entities fails closed; a read-only one runs."""
    await box.prepare(llm_apis=("assist", "second"), allow_risky=True)
    output = await box.call("second__switch_on", {"entity_id": "light.hall_light"})
    assert refused(output)
    assert "does not say what it would change" in output["error_text"]
    assert hass.states.get("light.hall_light").state == "off"
    assert await box.call("second__what_time") == {"time": "noon"}


async def test_intents_of_another_api_are_resolved_too(hass: HomeAssistant, box: Box) -> None:
    """Another API's intents: Home Assistant's own handler is checked, a custom one refused."""
    await box.prepare(llm_apis=("assist", "second"))
    assert refused(await box.call("second__TestSwitchOn", {"name": "Front door"}))
    await box.call("second__TestSwitchOn", {"name": "Hall light"})
    assert hass.states.get("light.hall_light").state == "on"
    output = await box.call("second__TestCustomOn", {"name": "Kitchen light"})
    assert refused(output)
    assert "not known" in output["error_text"]
    assert hass.states.get("light.kitchen_light").state == "off"
    assert box.changes.changed == []


# --- Finding 3: no over-refusal ----------------------------------------------------------------


async def test_calls_that_touch_nothing_risky_work_with_a_lock_exposed(
    hass: HomeAssistant, box: Box
) -> None:
    """Timers, broadcasts, area-less light and climate commands, media pause: not refused."""
    # The radio plays.
    await hass.services.async_call(
        "input_boolean", "turn_on", {"entity_id": "input_boolean.radio"}, blocking=True
    )
    names = await box.prepare()
    assert {"intent__HassCancelAllTimers", "assist_satellite__HassBroadcast"} <= set(names)
    for tool, arguments in (
        ("intent__HassCancelAllTimers", {}),
        ("assist_satellite__HassBroadcast", {"message": "Dinner is ready"}),
    ):
        output = await box.call(tool, arguments)
        assert "error" not in output or output["error"] != "ToolRefusedError", output
    await box.call("light__HassLightSet", {"brightness": 50})
    assert hass.states.get("light.kitchen_light").state == "on"
    await box.call("climate__HassClimateSetTemperature", {"temperature": 23})
    assert hass.states.get("climate.thermostat").attributes["temperature"] == 23
    await box.call("media_player__HassMediaPause")
    assert hass.states.get("media_player.radio").state == "paused"
    assert box.changes.changed == []


# --- Labels, scripts, intent_script --------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "why"),
    [
        ("intent__HassTurnOn", {"name": "Gate"}, "Gate"),  # entity label
        ("intent__HassTurnOn", {"name": "Gate opener"}, "Gate opener"),  # device label
        ("script__open_gate", {}, "Open the gate"),  # the script's own label
        ("script__open_garage", {}, "Garage door"),  # what the script opens
        ("script__switch_by_name", {"entity": "light.hall_light"}, "template"),  # unknown
    ],
)
async def test_what_the_owner_marked_is_high_risk(
    box: Box, tool: str, arguments: dict[str, Any], why: str
) -> None:
    """Labels on entities and devices, and scripts by what they reach, need permission."""
    await box.prepare()
    output = await box.call(tool, arguments)
    assert refused(output), output
    assert why in output["error_text"]
    assert box.changes.changed == []


async def test_an_area_label_marks_everything_in_it(hass: HomeAssistant, box: Box) -> None:
    """A label on an area makes its entities high-risk."""
    office = ar.async_get(hass).async_get_area_by_name("Office")
    ar.async_get(hass).async_update(office.id, labels={HIGH_RISK_LABEL})
    await box.prepare()
    assert refused(await box.call("intent__HassTurnOn", {"name": "Office blind"}))
    assert hass.states.get("cover.office_blind").state == "closed"


async def test_a_script_that_runs_a_risky_script_is_high_risk(box: Box) -> None:
    """Scripts run by name are followed: wake_up runs open_garage, which opens the garage."""
    await box.prepare()
    output = await box.call("script__wake_up")
    assert refused(output)
    assert "Garage door" in output["error_text"]
    assert box.changes.changed == []


@pytest.mark.parametrize(
    ("script", "changed"),
    [
        ("good_morning", "light.kitchen_light"),
        ("light_if_locked", "light.hall_light"),  # the lock is only looked at
        ("ping", None),  # ping and pong run each other: each is followed once
    ],
)
async def test_a_harmless_script_runs(
    hass: HomeAssistant, box: Box, script: str, changed: str | None
) -> None:
    """A script that reaches nothing high-risk runs like any exposed script."""
    await box.prepare()
    output = await box.call(f"script__{script}")
    assert "error" not in output, output
    if changed is not None:
        assert hass.states.get(changed).state == "on"


async def test_intent_scripts_are_judged_by_their_action(hass: HomeAssistant, box: Box) -> None:
    """An intent_script with written-out targets is checked; one with templates is refused."""
    assert await async_setup_component(
        hass,
        "intent_script",
        {
            "intent_script": {
                "LightsUp": {"action": [{"action": "light.turn_on",
                                         "target": {"entity_id": "light.hall_light"}}]},
                "LetIn": {"action": [{"action": "lock.unlock",
                                      "target": {"entity_id": "lock.front_door"}}]},
                "Anything": {"action": [{"action": "homeassistant.turn_on",
                                         "target": {"entity_id": "{{ name }}"}}]},
            }
        },
    )  # fmt: skip
    names = await box.prepare()
    assert {"intent_script__LightsUp", "intent_script__LetIn"} <= set(names)
    await box.call("intent_script__LightsUp", {"name": "x"})
    assert hass.states.get("light.hall_light").state == "on"
    assert refused(await box.call("intent_script__LetIn", {"name": "x"}))
    assert refused(await box.call("intent_script__Anything", {"name": "lock.front_door"}))
    assert box.changes.changed == []


# --- Finding 4: user tools --------------------------------------------------------------------


def _user_tool(action: str, *keys: str, data: dict[str, Any] | None = None) -> UserTool:
    properties = {key: {"type": "string"} for key in keys}
    return UserTool(
        name=action.replace(".", "_"),
        description=f"Call {action}",
        action=action,
        parameters={"type": "object", "properties": properties},
        data=data or {},
    )


@pytest.mark.parametrize(
    ("action", "arguments", "data"),
    [
        ("cover.open_cover", {"area_id": "garage"}, None),
        ("cover.open_cover", {"floor_id": "ground_floor"}, None),
        ("light.turn_on", {"area_id": "garage"}, None),  # the unexposed garage light
        ("switch.turn_on", {"device_id": "GATE"}, None),
        ("cover.open_cover", {"label_id": HIGH_RISK_LABEL}, None),
        ("lock.unlock", {}, {"target": {"area_id": "hall"}}),
        ("light.turn_on", {"entity_id": "LIGHT.GARAGE_LIGHT"}, None),
        ("light.turn_on", {"entity_id": "light.kitchen_light, light.garage_light"}, None),
        ("homeassistant.turn_on", {"entity_id": "all"}, None),
        ("script.switch_by_name", {"entity_id": "light.kitchen_light"}, None),
    ],
)
async def test_user_tools_check_every_target_key(
    hass: HomeAssistant,
    box: Box,
    action: str,
    arguments: dict[str, Any],
    data: dict[str, Any] | None,
) -> None:
    """Areas, floors, devices, labels, comma lists, upper case, `all`: expanded, then checked."""
    arguments = {
        key: box.home.gate_device if value == "GATE" else value for key, value in arguments.items()
    }
    if "area_id" in arguments or (data and "area_id" in data.get("target", {})):
        _set_area_ids(hass, arguments, data)
    tool = _user_tool(action, *arguments, data=data)
    await box.prepare(llm_apis=(), user_tools=(tool,), allowed_actions=frozenset({action}))
    output = await box.call(tool.name, arguments)
    assert refused(output), output
    assert box.changes.changed == []


def _set_area_ids(
    hass: HomeAssistant, arguments: dict[str, Any], data: dict[str, Any] | None
) -> None:
    """Replace area names with the registry's ids."""
    areas = ar.async_get(hass)
    for holder in (arguments, (data or {}).get("target", {})):
        if "area_id" in holder:
            holder["area_id"] = areas.async_get_area_by_name(holder["area_id"]).id


async def test_a_user_tool_on_an_area_of_harmless_things_works(
    hass: HomeAssistant, box: Box
) -> None:
    """Opening the covers of the office (a blind) runs: nothing there is high-risk."""
    office = ar.async_get(hass).async_get_area_by_name("Office").id
    tool = _user_tool("cover.open_cover", "area_id")
    await box.prepare(
        llm_apis=(), user_tools=(tool,), allowed_actions=frozenset({"cover.open_cover"})
    )
    assert await box.call(tool.name, {"area_id": office}) == {"success": True}
    assert hass.states.get("cover.office_blind").state == "open"


# --- Finding 6 and item 4: the audit and spoken confirmation ----------------------------------


async def test_refusals_are_audited_with_their_reason(hass: HomeAssistant, box: Box) -> None:
    """Every refused call fires realtime_voice_tool_call with outcome and reason."""
    audits = EventLog(hass, EVENT_TOOL_CALL)
    await box.prepare()
    await box.call("intent__HassTurnOff", {"name": "Front door"})
    audit = await audits.wait_for()
    assert audit["outcome"] == "refused"
    assert "Front door" in audit["reason"]


async def test_a_high_risk_call_waits_for_a_spoken_yes(hass: HomeAssistant, box: Box) -> None:
    """Allowed high-risk calls run only when repeated after a new user utterance."""
    audits = EventLog(hass, EVENT_TOOL_CALL)
    await box.prepare(allow_risky=True)
    unlock = ("intent__HassTurnOff", {"name": "Front door"})
    asked = await box.call(*unlock)
    assert asked["confirmation_required"] is True
    assert asked["targets"] == ["Front door"]
    assert (await audits.wait_for())["outcome"] == "confirmation_required"
    assert (await box.call(*unlock))["confirmation_required"]  # no answer yet
    box.router.user_spoke("item_question")
    box.router.user_spoke("item_question")  # its late transcript is no second answer
    assert (await box.call("intent__HassTurnOff", {"name": "all", "domain": "lock"}))[
        "confirmation_required"
    ]  # another call: asked about on its own
    output = await box.call(*unlock)
    assert output["response_type"] == "action_done"
    assert hass.states.get("lock.front_door").state == "unlocked"
    await hass.services.async_call("lock", "lock", {"entity_id": "lock.front_door"}, blocking=True)
    assert (await box.call(*unlock))["confirmation_required"]  # used up: asked again
    assert hass.states.get("lock.front_door").state == "locked"


async def test_confirmation_can_be_switched_off(hass: HomeAssistant, box: Box) -> None:
    """With confirmation off, allowed high-risk calls run at once."""
    await box.prepare(allow_risky=True, confirm_risky=False)
    await box.call("intent__HassTurnOff", {"name": "Front door"})
    assert hass.states.get("lock.front_door").state == "unlocked"


def test_a_confirmation_expires() -> None:
    """An answer later than CONFIRMATION_SECONDS confirms nothing."""
    now = [0.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    confirmations = Confirmations(clock=clock)
    confirmations.ask("unlock")
    confirmations.user_spoke("item_1")
    now[0] = CONFIRMATION_SECONDS + 0.1
    assert not confirmations.confirmed("unlock")
    confirmations.ask("unlock")
    confirmations.user_spoke(None)
    assert confirmations.confirmed("unlock")


async def test_the_turn_limit_stops_tools(hass: HomeAssistant, box: Box) -> None:
    """Past the per-turn limit calls are refused: the first with one last answer, then none."""
    await box.prepare(max_calls_per_turn=1)
    follow_ups = []
    for index in range(3):
        call = FunctionCall(
            "e", "resp_1", f"i{index}", f"c{index}", "intent__HassTurnOn",
            json.dumps({"name": "Kitchen light"}),
        )  # fmt: skip
        follow_ups.append((await box.router.async_call(call, box.device_id)).follow_up.name)
    assert follow_ups == ["ANSWER", "ANSWER_WITHOUT_TOOLS", "NONE"]
    box.router.user_spoke("item_next")
    assert (await box.call("intent__HassTurnOff", {"name": "Kitchen light"}))["response_type"]


async def test_entity_registry_changes_apply_at_once(hass: HomeAssistant, box: Box) -> None:
    """Labelling an entity mid-conversation protects it from the next call on."""
    await box.prepare()
    er.async_get(hass).async_update_entity("light.hall_light", labels={HIGH_RISK_LABEL})
    assert refused(await box.call("intent__HassTurnOn", {"name": "Hall light"}))
    assert hass.states.get("light.hall_light").state == "off"


async def test_a_validator_that_raises_anything_is_an_error_output(box: Box) -> None:
    """HassLightSet's color validator raises AttributeError on a number: the model is told."""
    await box.prepare()
    output = await box.call("light__HassLightSet", {"color": 1})
    assert output["error"] == "ValueError"
    assert "not valid" in output["error_text"]
