"""A home for the safety tests: real template entities, areas and floors, labels and scripts.

Every entity is a real Home Assistant entity (template, universal, generic_thermostat, script)
backed by input_booleans, so a test sees what really changed. What is high-risk, and why:

| entity | exposed | area | high-risk because |
|---|---|---|---|
| lock.front_door | yes | Hall | a lock |
| lock.back_door | no | Garage | a lock |
| cover.garage_door | yes | Garage | a cover of device class garage |
| cover.gate | yes | Garage | labelled `voice_high_risk` (a cover without device class) |
| cover.office_blind | yes | Office | - (a cover without device class) |
| alarm_control_panel.house_alarm | yes | Hall | an alarm panel |
| switch.gate_opener | yes | Garage | its device is labelled `voice_high_risk` |
| script.open_garage | yes | - | it opens cover.garage_door |
| script.open_gate | yes | - | labelled `voice_high_risk` itself |
| script.wake_up | yes | - | it runs script.open_garage |
| script.ping, script.pong | yes | - | - (they run each other; they change nothing risky) |
| script.light_if_locked | yes | - | - (it only looks at the front door, in a condition) |
| script.switch_by_name | yes | - | - (its target is a template: unknown) |
| script.good_morning | yes | - | - (turns on the kitchen light) |
| light.kitchen_light, light.hall_light | yes | Kitchen, Hall | - |
| light.garage_light | no | Garage | - |
| climate.thermostat | yes | Kitchen | - |
| media_player.radio | yes | Kitchen | - |

Floors: Ground floor (Kitchen, Hall, Garage), First floor (Office).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, override

from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    floor_registry as fr,
    intent,
    llm,
)
from homeassistant.setup import async_setup_component
import probatio
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.risk import HIGH_RISK_LABEL

FLAGS: Final = (
    "kitchen", "hall", "garage", "front_locked", "back_locked", "garage_open", "gate_open",
    "blind_open", "alarm_armed", "gate_opener", "heater", "radio",
)  # fmt: skip
"""The input_booleans behind the entities."""
INITIALLY_ON: Final = frozenset({"front_locked", "back_locked", "alarm_armed"})
"""The flags that start on: the locks are locked and the alarm armed."""

HIGH_RISK: Final = frozenset(
    {
        "lock.front_door",
        "lock.back_door",
        "cover.garage_door",
        "cover.gate",
        "alarm_control_panel.house_alarm",
        "switch.gate_opener",
        "script.open_garage",
        "script.open_gate",
        "script.wake_up",
    }
)
UNEXPOSED: Final = frozenset({"lock.back_door", "light.garage_light"})
BACKING: Final = {
    "lock.front_door": "input_boolean.front_locked",
    "lock.back_door": "input_boolean.back_locked",
    "cover.garage_door": "input_boolean.garage_open",
    "cover.gate": "input_boolean.gate_open",
    "alarm_control_panel.house_alarm": "input_boolean.alarm_armed",
    "switch.gate_opener": "input_boolean.gate_opener",
    "light.garage_light": "input_boolean.garage",
}
"""The flag each protected entity reads: a change of either is a change of the entity."""

_AREAS: Final = {
    "light.kitchen_light": "kitchen",
    "light.hall_light": "hall",
    "light.garage_light": "garage",
    "lock.front_door": "hall",
    "lock.back_door": "garage",
    "cover.garage_door": "garage",
    "cover.gate": "garage",
    "cover.office_blind": "office",
    "alarm_control_panel.house_alarm": "hall",
    "switch.gate_opener": "garage",
    "climate.thermostat": "kitchen",
    "media_player.radio": "kitchen",
}


def _flag(service: str, flag: str) -> dict[str, Any]:
    return {"action": f"input_boolean.{service}", "target": {"entity_id": f"input_boolean.{flag}"}}


def _on(flag: str) -> str:
    return f"{{{{ is_state('input_boolean.{flag}', 'on') }}}}"


def _toggle(kind: str, name: str, flag: str, on: str, off: str, **extra: Any) -> dict[str, Any]:
    """Return a template entity of `kind` whose on/off actions switch the flag."""
    unique_id = name.lower().replace(" ", "_")
    return {
        "name": name,
        "unique_id": unique_id,
        "state": _on(flag),
        on: _flag("turn_on", flag),
        off: _flag("turn_off", flag),
        **extra,
    }


def _cover(name: str, flag: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": name.lower().replace(" ", "_"),
        "state": f"{{{{ 'open' if is_state('input_boolean.{flag}', 'on') else 'closed' }}}}",
        "open_cover": _flag("turn_on", flag),
        "close_cover": _flag("turn_off", flag),
        "set_cover_position": {
            "action": "input_boolean.turn_{{ 'on' if position > 0 else 'off' }}",
            "target": {"entity_id": f"input_boolean.{flag}"},
        },
        **extra,
    }


TEMPLATES: Final = {
    "light": [
        _toggle("light", "Kitchen light", "kitchen", "turn_on", "turn_off"),
        _toggle("light", "Hall light", "hall", "turn_on", "turn_off"),
        _toggle("light", "Garage light", "garage", "turn_on", "turn_off"),
    ],
    "lock": [
        _toggle("lock", "Front door", "front_locked", "lock", "unlock"),
        _toggle("lock", "Back door", "back_locked", "lock", "unlock"),
    ],
    "cover": [
        _cover("Garage door", "garage_open", device_class="garage"),
        _cover("Gate", "gate_open"),
        _cover("Office blind", "blind_open"),
    ],
    "alarm_control_panel": [
        {
            "name": "House alarm",
            "unique_id": "house_alarm",
            "state": "{{ 'armed_away' if is_state('input_boolean.alarm_armed', 'on') "
            "else 'disarmed' }}",
            "arm_away": _flag("turn_on", "alarm_armed"),
            "disarm": _flag("turn_off", "alarm_armed"),
            "code_arm_required": False,
            "code_format": "no_code",
        }
    ],
    "switch": [_toggle("switch", "Gate opener", "gate_opener", "turn_on", "turn_off")],
    "sensor": [
        {
            "name": "Room temperature",
            "unique_id": "room_temperature",
            "state": "20",
            "unit_of_measurement": "°C",
            "device_class": "temperature",
        }
    ],
}

SCRIPTS: Final = {
    "open_garage": {
        "alias": "Open the garage",
        "sequence": [{"action": "cover.open_cover", "target": {"entity_id": "cover.garage_door"}}],
    },
    "open_gate": {"alias": "Open the gate", "sequence": [_flag("turn_on", "gate_open")]},
    "good_morning": {
        "alias": "Good morning",
        "sequence": [{"action": "light.turn_on", "target": {"entity_id": "light.kitchen_light"}}],
    },
    "wake_up": {
        "alias": "Wake up",
        "sequence": [
            {"action": "light.turn_on", "target": {"entity_id": "light.kitchen_light"}},
            {"action": "script.open_garage"},
        ],
    },
    "ping": {"alias": "Ping", "sequence": [{"action": "script.pong"}]},
    "pong": {
        "alias": "Pong",
        "sequence": [
            {"condition": "state", "entity_id": "light.hall_light", "state": "on"},
            {"action": "script.turn_on", "target": {"entity_id": "script.ping"}},
        ],
    },
    "light_if_locked": {
        "alias": "Light if locked",
        "sequence": [
            {
                "if": [{"condition": "state", "entity_id": "lock.front_door", "state": "locked"}],
                "then": [{"action": "light.turn_on", "target": {"entity_id": "light.hall_light"}}],
            }
        ],
    },
    "switch_by_name": {
        "alias": "Switch by name",
        "fields": {"entity": {"description": "The entity to turn on"}},
        "sequence": [{"action": "homeassistant.turn_on", "target": {"entity_id": "{{ entity }}"}}],
    },
}


@dataclass(frozen=True, slots=True)
class SafetyHome:
    """What a test needs to know about the home it got."""

    box_area: str
    gate_device: str


async def build_safety_home(hass: HomeAssistant, box_device_id: str | None = None) -> SafetyHome:
    """Build the home; put the box's device (if given) in the kitchen."""
    booleans = {
        flag: {"initial": flag in {"front_locked", "back_locked", "alarm_armed"}} for flag in FLAGS
    }
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": booleans})
    assert await async_setup_component(hass, "template", {"template": [TEMPLATES]})
    assert await async_setup_component(hass, "script", {"script": SCRIPTS})
    assert await async_setup_component(
        hass,
        "climate",
        {
            "climate": {
                "platform": "generic_thermostat",
                "name": "Thermostat",
                "unique_id": "thermostat",
                "heater": "input_boolean.heater",
                "target_sensor": "sensor.room_temperature",
            }
        },
    )
    assert await async_setup_component(
        hass,
        "media_player",
        {
            "media_player": {
                "platform": "universal",
                "name": "Radio",
                "unique_id": "radio",
                "state_template": "{{ 'playing' if is_state('input_boolean.radio', 'on') "
                "else 'paused' }}",
                "commands": {
                    "media_pause": _flag("turn_off", "radio"),
                    "media_play": _flag("turn_on", "radio"),
                },
            }
        },
    )
    assert await async_setup_component(hass, "assist_satellite", {})
    await hass.async_block_till_done()
    areas = _areas(hass)
    gate_device = _place(hass, areas)
    if box_device_id is not None:
        dr.async_get(hass).async_update_device(box_device_id, area_id=areas["kitchen"])
    await hass.async_block_till_done()
    return SafetyHome(box_area=areas["kitchen"], gate_device=gate_device)


def _areas(hass: HomeAssistant) -> dict[str, str]:
    """Create the floors and areas; return the area ids by short name."""
    floors = fr.async_get(hass)
    ground = floors.async_create("Ground floor").floor_id
    first = floors.async_create("First floor").floor_id
    registry = ar.async_get(hass)
    return {
        name.lower(): registry.async_create(name, floor_id=floor).id
        for name, floor in (
            ("Kitchen", ground),
            ("Hall", ground),
            ("Garage", ground),
            ("Office", first),
        )
    }


def _place(hass: HomeAssistant, areas: dict[str, str]) -> str:
    """Put entities in their areas, expose them, and label what the owner marked."""
    entities = er.async_get(hass)
    for entity_id, area in _AREAS.items():
        entities.async_update_entity(entity_id, area_id=areas[area])
    entities.async_update_entity("cover.gate", labels={HIGH_RISK_LABEL})
    entities.async_update_entity("script.open_gate", labels={HIGH_RISK_LABEL})
    owner = MockConfigEntry(domain="test", title="Gate controller")
    owner.add_to_hass(hass)
    devices = dr.async_get(hass)
    device = devices.async_get_or_create(
        config_entry_id=owner.entry_id, identifiers={("test", "gate")}, name="Gate controller"
    )
    devices.async_update_device(device.id, labels={HIGH_RISK_LABEL})
    entities.async_update_entity("switch.gate_opener", device_id=device.id)
    exposed = [*_AREAS, *(f"script.{name}" for name in SCRIPTS)]
    for entity_id in exposed:
        async_expose_entity(hass, "conversation", entity_id, should_expose=True)
    for entity_id in UNEXPOSED:
        async_expose_entity(hass, "conversation", entity_id, should_expose=False)
    return device.id


class SecondAPI(llm.API):
    """A second, real LLM API.

    Its tools: one that acts on entities in its own way, one that only reads, an intent of
    Home Assistant's own service handler, and an intent of a custom handler class.
    """

    @override
    async def async_get_api_instance(self, llm_context: llm.LLMContext) -> llm.APIInstance:
        handlers = {handler.intent_type: handler for handler in intent.async_get(self.hass)}
        tools: list[llm.Tool] = [SwitchOnTool(), WhatTimeTool()]
        tools.extend(
            llm.IntentTool(intent_type, handlers[intent_type], integration="test")
            for intent_type in (PLAIN_INTENT, CUSTOM_INTENT)
            if intent_type in handlers
        )
        return llm.APIInstance(self, "", llm_context, tools)


PLAIN_INTENT: Final = "TestSwitchOn"
CUSTOM_INTENT: Final = "TestCustomOn"


class CustomOnHandler(intent.ServiceIntentHandler):
    """A custom integration's handler: it may act on other entities than it matched."""


@callback
def register_second_api(hass: HomeAssistant) -> None:
    """Register the second API and the intents it offers."""
    intent.async_register(
        hass, intent.ServiceIntentHandler(PLAIN_INTENT, "homeassistant", "turn_on")
    )
    intent.async_register(hass, CustomOnHandler(CUSTOM_INTENT, "homeassistant", "turn_on"))
    llm.async_register_api(hass, SecondAPI(hass=hass, id="second", name="Second"))


class SwitchOnTool(llm.Tool):
    """Turns on any entity by id: a shape the router cannot see into."""

    name = "switch_on"
    description = "Turn on an entity"
    parameters = probatio.Schema({probatio.Required("entity_id"): str})
    integration = "test"

    @override
    async def async_call(
        self, hass: HomeAssistant, tool_input: llm.ToolInput, llm_context: llm.LLMContext
    ) -> llm.ToolResult:
        entity_id = tool_input.tool_args["entity_id"]
        await hass.services.async_call(
            "homeassistant", "turn_on", {"entity_id": entity_id}, blocking=True
        )
        return llm.ToolResult({"success": True})


class WhatTimeTool(llm.Tool):
    """Reads only (and says so)."""

    name = "what_time"
    description = "Tell the time"
    annotations = llm.ToolAnnotations(read_only=True)
    integration = "test"

    @override
    async def async_call(
        self, hass: HomeAssistant, tool_input: llm.ToolInput, llm_context: llm.LLMContext
    ) -> llm.ToolResult:
        return llm.ToolResult({"time": "noon"})


class ChangeRecorder:
    """Every state change of the watched entities (and the flags behind them)."""

    def __init__(self, hass: HomeAssistant, watched: Callable[[str], bool]) -> None:
        self.changed: list[str] = []
        self._watched = watched
        self.unsubscribe = hass.bus.async_listen("state_changed", self._on_change)

    @callback
    def _on_change(self, event: Event[Any]) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        entity_id = event.data["entity_id"]
        if (
            old is not None
            and new is not None
            and old.state != new.state
            and self._watched(entity_id)
        ):
            self.changed.append(entity_id)


def protected(entity_id: str) -> bool:
    """Return whether a change of entity_id changes a high-risk or unexposed entity."""
    return entity_id in HIGH_RISK | UNEXPOSED or entity_id in BACKING.values()
