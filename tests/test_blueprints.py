"""The shipped blueprints: valid for Home Assistant's loader, and the automations they make.

Each blueprint is loaded with Home Assistant's own blueprint machinery, then used by a real
`automation` in a real Home Assistant, fired by real entities (input buttons, binary sensors,
template lights, input booleans). The conversation itself is tested elsewhere (test_actions.py,
test_session.py against the simulator); here only the automations' decisions are under test, so
the actions `realtime_voice.start_conversation`, `end_conversation` and `announce` are stand-ins
that record their calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
import shutil
from typing import Any, override

from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import importer
from homeassistant.components.blueprint.errors import InvalidBlueprint, MissingInput
from homeassistant.components.blueprint.models import Blueprint, BlueprintInputs
from homeassistant.components.light import ColorMode, LightEntity, LightEntityFeature
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util, yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    setup_test_component_platform,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.realtime_voice.const import DOMAIN
from tests.helpers.integration import SESSION_ACTIVE, STATE

REPO = Path(__file__).resolve().parent.parent
BLUEPRINTS = REPO / "blueprints" / "automation" / DOMAIN
SOURCE_URL = (
    "https://github.com/realtime-voice/realtime-voice/blob/main/blueprints/automation/"
    f"{DOMAIN}/{{name}}"
)
NAMES = sorted(path.name for path in BLUEPRINTS.glob("*.yaml"))
ASSISTANT_SPEAKING = "binary_sensor.realtime_voice_assistant_speaking"


def test_the_three_blueprints_are_shipped() -> None:
    assert NAMES == [
        "announce_on_trigger.yaml",
        "button_toggles_conversation.yaml",
        "led_follows_state.yaml",
    ]


def _load(name: str) -> Blueprint:
    """Load a blueprint the way the automation integration does."""
    return Blueprint(
        yaml_util.load_yaml(BLUEPRINTS / name),
        path=name,
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


@pytest.mark.parametrize("name", NAMES)
def test_blueprint_is_valid_for_the_loader(name: str) -> None:
    blueprint = _load(name)
    assert blueprint.domain == "automation"
    assert blueprint.validate() is None  # this Home Assistant meets min_version
    assert blueprint.metadata["source_url"] == SOURCE_URL.format(name=name)
    assert blueprint.name.startswith("Realtime Voice: ")
    assert len(blueprint.metadata["description"]) > 100
    for key, spec in blueprint.inputs.items():
        assert spec.get("name"), key
        assert spec.get("description"), key
        assert spec.get("selector"), key


def test_the_loader_refuses_an_undeclared_input() -> None:
    """The check above can fail: a blueprint using an input it does not declare is refused."""
    data = yaml_util.load_yaml(BLUEPRINTS / "button_toggles_conversation.yaml")
    data["actions"].append({"delay": yaml_util.Input("undeclared")})
    with pytest.raises(InvalidBlueprint, match="undeclared"):
        Blueprint(data, expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA)


@pytest.mark.parametrize(
    ("name", "required"),
    [
        ("button_toggles_conversation.yaml", {"button_entity", "box"}),
        ("led_follows_state.yaml", {"state_sensor", "led"}),
        ("announce_on_trigger.yaml", {"triggers", "box", "message"}),
    ],
)
def test_required_inputs_are_the_ones_without_default(name: str, required: set[str]) -> None:
    blueprint = _load(name)
    empty = BlueprintInputs(blueprint, {"use_blueprint": {"path": name, "input": {}}})
    with pytest.raises(MissingInput, match=f"Missing input {', '.join(sorted(required))}$"):
        empty.validate()
    filled = dict.fromkeys(required, "x")
    BlueprintInputs(blueprint, {"use_blueprint": {"path": name, "input": filled}}).validate()


@pytest.mark.parametrize("name", NAMES)
async def test_import_link_fetches_the_blueprint(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker, name: str
) -> None:
    """The GitHub URL in the README's import badge is one Home Assistant's importer takes."""
    raw = f"https://raw.githubusercontent.com/realtime-voice/realtime-voice/main/blueprints/automation/{DOMAIN}/{name}"
    aioclient_mock.get(raw, text=(BLUEPRINTS / name).read_text(encoding="utf-8"))
    imported = await importer.fetch_blueprint_from_url(hass, SOURCE_URL.format(name=name))
    assert imported.blueprint.name == _load(name).name
    assert imported.suggested_filename == f"realtime-voice/{name.removesuffix('.yaml')}"


# --- Automations from the blueprints --------------------------------------------------------------


@pytest.fixture
def blueprint_folder(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Point the configuration at a fresh folder holding the blueprints, as a user's would."""
    hass.config.config_dir = str(tmp_path)
    folder = Path(hass.config.path("blueprints", "automation", DOMAIN))
    shutil.copytree(BLUEPRINTS, folder)
    return folder


class Actions:
    """Stand-ins for the box's actions, recording the calls in the order they came."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.calls: list[ServiceCall] = []
        for name in ("start_conversation", "end_conversation", "announce"):
            hass.services.async_register(DOMAIN, name, self._record)

    async def _record(self, call: ServiceCall) -> None:
        self.calls.append(call)

    def made(self) -> list[tuple[str, dict[str, Any]]]:
        return [(call.service, dict(call.data)) for call in self.calls]


@pytest.fixture
def actions(hass: HomeAssistant) -> Actions:
    """Stand in for the box's actions (the real ones are tested against the simulator)."""
    return Actions(hass)


@dataclass
class Box:
    """A Realtime Voice box as the registries and the state machine show it."""

    hass: HomeAssistant
    device_id: str

    def show(self, activity: str) -> None:
        """Set the box's sensors the way VoiceSession renders this activity."""
        active = activity not in ("idle", "error")
        self.hass.states.async_set(STATE, activity, {"device_class": "enum", "options": ACTIVITIES})
        self.hass.states.async_set(
            SESSION_ACTIVE, "on" if active else "off", {"device_class": "running"}
        )
        self.hass.states.async_set(
            ASSISTANT_SPEAKING,
            "on" if activity == "assistant_speaking" else "off",
            {"device_class": "sound"},
        )


ACTIVITIES = [
    "idle",
    "connecting",
    "listening",
    "user_speaking",
    "thinking",
    "assistant_speaking",
    "ending",
    "error",
]


@pytest.fixture
def box(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry, entity_registry: er.EntityRegistry
) -> Box:
    """Register a box's device and entities (with the ids of a box titled "Realtime Voice")."""
    entry = MockConfigEntry(domain=DOMAIN, title="Realtime Voice")
    entry.add_to_hass(hass)
    device = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, entry.entry_id)}, name=entry.title
    )
    for entity_id in (STATE, SESSION_ACTIVE, ASSISTANT_SPEAKING):
        domain, object_id = entity_id.split(".")
        registered = entity_registry.async_get_or_create(
            domain,
            DOMAIN,
            f"{entry.entry_id}-{object_id}",
            suggested_object_id=object_id,
            config_entry=entry,
            device_id=device.id,
        )
        assert registered.entity_id == entity_id
    the_box = Box(hass, device.id)
    the_box.show("idle")
    return the_box


async def _use_blueprint(hass: HomeAssistant, name: str, inputs: dict[str, Any]) -> None:
    """Create an automation from the blueprint, as the automation editor would."""
    config = {"alias": name, "use_blueprint": {"path": f"{DOMAIN}/{name}.yaml", "input": inputs}}
    assert await async_setup_component(hass, "automation", {"automation": config})
    await hass.async_block_till_done()
    automation = hass.states.get(f"automation.{name}")
    assert automation is not None
    assert automation.state == "on", "the blueprint did not make a valid automation"


# --- button_toggles_conversation ------------------------------------------------------------------


@pytest.fixture
async def input_button(hass: HomeAssistant) -> Callable[[], Any]:
    """Set up a real input_button (a dashboard button); return a function that presses it."""
    assert await async_setup_component(hass, "input_button", {"input_button": {"aiy": {}}})

    async def press() -> None:
        await hass.services.async_call(
            "input_button", "press", {"entity_id": "input_button.aiy"}, blocking=True
        )
        await hass.async_block_till_done()

    return press


@pytest.mark.usefixtures("blueprint_folder")
async def test_button_starts_then_ends_the_conversation(
    hass: HomeAssistant, actions: Actions, box: Box, input_button: Callable[[], Any]
) -> None:
    await _use_blueprint(
        hass,
        "button_toggles_conversation",
        {"button_entity": "input_button.aiy", "box": box.device_id, "greeting": "Hi!"},
    )

    await input_button()
    assert actions.made() == [
        ("start_conversation", {"device_id": box.device_id, "greeting": "Hi!"})
    ]

    box.show("listening")
    await input_button()
    assert actions.made()[1:] == [("end_conversation", {"device_id": box.device_id})]

    box.show("ending")  # a press while hanging up neither ends twice nor starts again
    await input_button()
    assert len(actions.made()) == 2

    box.show("idle")
    await input_button()
    assert actions.made()[2:] == [
        ("start_conversation", {"device_id": box.device_id, "greeting": "Hi!"})
    ]


@pytest.mark.usefixtures("blueprint_folder")
async def test_binary_sensor_counts_only_its_off_to_on_edge(
    hass: HomeAssistant, actions: Actions, box: Box
) -> None:
    """The AIY arcade button through a GPIO integration: on while pressed."""
    arcade = "binary_sensor.aiy_arcade_button"
    hass.states.async_set(arcade, "off")
    await _use_blueprint(
        hass, "button_toggles_conversation", {"button_entity": arcade, "box": box.device_id}
    )

    hass.states.async_set(arcade, "on")
    await hass.async_block_till_done()
    assert actions.made() == [("start_conversation", {"device_id": box.device_id})]

    box.show("assistant_speaking")
    for state in ("off", "unavailable", "on", "off"):  # release; back from unavailable
        hass.states.async_set(arcade, state)
        await hass.async_block_till_done()
    assert len(actions.made()) == 1

    hass.states.async_set(arcade, "on")
    await hass.async_block_till_done()
    assert actions.made()[1:] == [("end_conversation", {"device_id": box.device_id})]


@pytest.mark.parametrize("entity_id", ["button.esphome_aiy_button", "event.aiy_button"])
@pytest.mark.usefixtures("blueprint_folder")
async def test_button_and_event_entities_count_every_new_timestamp(
    hass: HomeAssistant, actions: Actions, box: Box, entity_id: str
) -> None:
    hass.states.async_set(entity_id, "unknown")  # never pressed since it was added
    await _use_blueprint(
        hass, "button_toggles_conversation", {"button_entity": entity_id, "box": box.device_id}
    )

    pressed_at = dt_util.utcnow().isoformat()
    hass.states.async_set(entity_id, pressed_at)
    await hass.async_block_till_done()
    assert actions.made() == [("start_conversation", {"device_id": box.device_id})]

    box.show("listening")
    hass.states.async_set(entity_id, pressed_at, {"event_type": "press"})  # attributes only
    hass.states.async_set(entity_id, "unavailable")
    hass.states.async_set(entity_id, pressed_at)  # back after a reload: not a press
    await hass.async_block_till_done()
    assert len(actions.made()) == 1

    hass.states.async_set(entity_id, (dt_util.utcnow() + timedelta(seconds=1)).isoformat())
    await hass.async_block_till_done()
    assert actions.made()[1:] == [("end_conversation", {"device_id": box.device_id})]


@pytest.mark.usefixtures("blueprint_folder")
async def test_state_sensor_decides_when_the_active_sensor_is_gone(
    hass: HomeAssistant,
    actions: Actions,
    box: Box,
    input_button: Callable[[], Any],
    entity_registry: er.EntityRegistry,
) -> None:
    """With "Conversation active" removed, the toggle reads the box's state sensor instead."""
    entity_registry.async_remove(SESSION_ACTIVE)
    hass.states.async_remove(SESSION_ACTIVE)
    await _use_blueprint(
        hass,
        "button_toggles_conversation",
        {"button_entity": "input_button.aiy", "box": box.device_id},
    )
    box.show("thinking")
    hass.states.async_remove(SESSION_ACTIVE)

    await input_button()
    assert actions.made() == [("end_conversation", {"device_id": box.device_id})]


# --- led_follows_state ----------------------------------------------------------------------------


async def _show(hass: HomeAssistant, box: Box, activity: str) -> None:
    box.show(activity)
    await hass.async_block_till_done()


@pytest.mark.usefixtures("blueprint_folder")
async def test_led_switch_is_on_while_the_conversation_runs(hass: HomeAssistant, box: Box) -> None:
    """An input_boolean stands for a switch (a GPIO LED): on or off, never flashing."""
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": {"led": {}}})
    await _use_blueprint(
        hass, "led_follows_state", {"state_sensor": STATE, "led": "input_boolean.led"}
    )
    expected = {
        "connecting": "on",
        "listening": "on",
        "user_speaking": "on",
        "thinking": "on",
        "assistant_speaking": "on",
        "ending": "off",
        "idle": "off",
        "error": "off",
    }
    seen = {}
    for activity in ("connecting", "listening", "ending", "user_speaking", "idle", "thinking"):
        await _show(hass, box, activity)
        seen[activity] = hass.states.get("input_boolean.led").state
    for activity in ("assistant_speaking", "error"):
        await _show(hass, box, activity)
        seen[activity] = hass.states.get("input_boolean.led").state
    assert seen == expected

    await _show(hass, box, "listening")
    hass.states.async_set(STATE, "unavailable")  # the box was unloaded
    await hass.async_block_till_done()
    assert hass.states.get("input_boolean.led").state == "off"


@pytest.fixture
async def effect_light(hass: HomeAssistant) -> None:
    """Set up a template light with effects, backed by an input_boolean and an input_text."""
    assert await async_setup_component(
        hass,
        "input_boolean",
        {"input_boolean": {"led_power": {}}},
    )
    assert await async_setup_component(
        hass, "input_text", {"input_text": {"led_effect": {"initial": "off"}}}
    )
    power = {"entity_id": "input_boolean.led_power"}
    light = {
        "name": "AIY LED",
        "state": "{{ is_state('input_boolean.led_power', 'on') }}",
        "turn_on": {"action": "input_boolean.turn_on", "target": power},
        "turn_off": {"action": "input_boolean.turn_off", "target": power},
        "effect_list": "{{ ['off', 'Pulse', 'Rainbow'] }}",
        "effect": "{{ states('input_text.led_effect') }}",
        "set_effect": {
            "action": "input_text.set_value",
            "target": {"entity_id": "input_text.led_effect"},
            "data": {"value": "{{ effect }}"},
        },
    }
    assert await async_setup_component(hass, "template", {"template": [{"light": [light]}]})
    await hass.async_block_till_done()
    assert hass.states.get("light.aiy_led") is not None


@pytest.mark.usefixtures("blueprint_folder", "effect_light")
async def test_led_light_pulses_with_its_effect_while_the_assistant_speaks(
    hass: HomeAssistant, box: Box
) -> None:
    await _use_blueprint(
        hass,
        "led_follows_state",
        {"state_sensor": STATE, "led": "light.aiy_led", "speaking_effect": "Pulse"},
    )

    await _show(hass, box, "listening")
    assert hass.states.get("light.aiy_led").state == "on"
    await _show(hass, box, "assistant_speaking")
    assert hass.states.get("input_text.led_effect").state == "Pulse"
    assert hass.states.get("light.aiy_led").state == "on"
    await _show(hass, box, "listening")  # back to steady: the "no effect" effect
    assert hass.states.get("input_text.led_effect").state == "off"
    await _show(hass, box, "idle")
    assert hass.states.get("light.aiy_led").state == "off"


@pytest.mark.usefixtures("blueprint_folder", "effect_light")
async def test_led_light_that_cannot_flash_stays_on(hass: HomeAssistant, box: Box) -> None:
    """No effect named and no flash support: steady on while speaking, effects untouched."""
    await _use_blueprint(hass, "led_follows_state", {"state_sensor": STATE, "led": "light.aiy_led"})
    await _show(hass, box, "assistant_speaking")
    assert hass.states.get("light.aiy_led").state == "on"
    assert hass.states.get("input_text.led_effect").state == "off"


class FlashingLight(LightEntity):
    """A light that can flash (as many LED drivers can), recording what it was asked."""

    _attr_name = "Flashing LED"
    _attr_supported_features = LightEntityFeature.FLASH
    _attr_color_mode = ColorMode.ONOFF
    _attr_supported_color_modes = frozenset({ColorMode.ONOFF})
    _attr_is_on = False

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []
        self._commanded = asyncio.Event()

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        self._record({"on": True, **kwargs})
        self._attr_is_on = True

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        self._record({"on": False, **kwargs})
        self._attr_is_on = False

    def _record(self, command: dict[str, Any]) -> None:
        self.commands.append(command)
        self._commanded.set()

    async def wait_for_commands(self, count: int) -> None:
        """Wait until the light received count commands."""
        async with asyncio.timeout(5):
            while len(self.commands) < count:
                self._commanded.clear()
                await self._commanded.wait()
        assert len(self.commands) == count


@pytest.fixture
async def flashing_light(hass: HomeAssistant) -> FlashingLight:
    light = FlashingLight()
    setup_test_component_platform(hass, "light", [light])
    assert await async_setup_component(hass, "light", {"light": {"platform": "test"}})
    await hass.async_block_till_done()
    assert light.entity_id == "light.flashing_led"
    return light


@pytest.mark.usefixtures("blueprint_folder")
async def test_led_light_flashes_until_the_assistant_stops(
    hass: HomeAssistant, box: Box, flashing_light: FlashingLight
) -> None:
    await _use_blueprint(
        hass,
        "led_follows_state",
        {"state_sensor": STATE, "led": "light.flashing_led", "flash_interval": 1},
    )
    # No async_block_till_done while the loop runs: it would wait for the loop to end.
    box.show("assistant_speaking")
    await flashing_light.wait_for_commands(2)
    for count in (3, 4):
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1.1))
        await flashing_light.wait_for_commands(count)
    flashes = [command for command in flashing_light.commands if command.get("flash")]
    assert flashes == [{"on": True, "flash": "short"}] * 3
    assert flashing_light.commands[0] == {"on": True}  # steady on first, then flashes

    await _show(hass, box, "idle")
    assert flashing_light.commands[-1] == {"on": False}
    count = len(flashing_light.commands)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=10))
    await hass.async_block_till_done()
    assert len(flashing_light.commands) == count, "it kept flashing after the assistant stopped"


# --- announce_on_trigger --------------------------------------------------------------------------


@pytest.mark.usefixtures("blueprint_folder")
async def test_announce_says_the_message_when_the_trigger_fires(
    hass: HomeAssistant, actions: Actions, box: Box
) -> None:
    await _use_blueprint(
        hass,
        "announce_on_trigger",
        {
            "triggers": [{"trigger": "event", "event_type": "laundry_done"}],
            "box": box.device_id,
            "message": "The {{ trigger.event.data.machine }} is done.",
        },
    )
    hass.bus.async_fire("something_else")
    await hass.async_block_till_done()
    assert actions.made() == []

    hass.bus.async_fire("laundry_done", {"machine": "washing machine"})
    await hass.async_block_till_done()
    assert actions.made() == [
        (
            "announce",
            {
                "device_id": box.device_id,
                "message": "The washing machine is done.",
                "listen": False,
            },
        )
    ]


@pytest.mark.usefixtures("blueprint_folder")
async def test_announce_with_instructions_starts_a_conversation_that_knows_why(
    hass: HomeAssistant, actions: Actions, box: Box
) -> None:
    instructions = "The laundry is done. If the user wants, start the dryer."
    await _use_blueprint(
        hass,
        "announce_on_trigger",
        {
            "triggers": [{"trigger": "state", "entity_id": "sensor.washer", "to": "done"}],
            "box": box.device_id,
            "message": "The laundry is done. Shall I start the dryer?",
            "listen": True,
            "instructions": instructions,
        },
    )
    hass.states.async_set("sensor.washer", "done")
    await hass.async_block_till_done()
    assert actions.made() == [
        (
            "start_conversation",
            {
                "device_id": box.device_id,
                "instructions": instructions,
                "greeting": "The laundry is done. Shall I start the dryer?",
            },
        )
    ]

    # A conversation already runs: its instructions stay; the message is said in it.
    box.show("listening")
    hass.states.async_set("sensor.washer", "washing")
    hass.states.async_set("sensor.washer", "done")
    await hass.async_block_till_done()
    assert actions.made()[1:] == [
        (
            "announce",
            {
                "device_id": box.device_id,
                "message": "The laundry is done. Shall I start the dryer?",
                "listen": True,
            },
        )
    ]
