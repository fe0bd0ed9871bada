"""Property: whatever the model calls, nothing unexposed or high-risk changes without permission.

Hypothesis draws a call the way a model would make one: one or two selected LLM APIs (Assist,
and a second, real API), high-risk actions allowed or not, any tool the session offers (every
Assist intent tool, the scripts, broadcast, the second API's tools), and arguments from the
tool's own schema (names, `all`, blank, areas, floors, domains, device classes, and the
intents' other slots). Each call is made three times against the real home: once, again with
no user turn in between, and again after a user utterance. Then:

- nothing high-risk or unexposed changed after the first two calls;
- with high-risk actions not allowed, nothing of them changed at all;
- an unexposed entity never changed;
- a high-risk entity changed only after the router asked for confirmation.

The router is called directly (a WebRTC call per example would be too slow); every tool runs
for real. The number of examples is printed (run with -s to see it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Final

from homeassistant.components.intent import async_register_timer_handler
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, intent
from hypothesis import HealthCheck, given, settings, strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.realtime.events import FunctionCall
from custom_components.realtime_voice.tools import ToolPolicy, ToolRouter
from tests.helpers.safety_home import (
    BACKING,
    FLAGS,
    INITIALLY_ON,
    UNEXPOSED,
    ChangeRecorder,
    build_safety_home,
    protected,
    register_second_api,
)

EXAMPLES: Final = 300
API_SETS: Final = (("assist",), ("assist", "second"))
NAMES: Final = (
    "Front door", "front door", "Back door", "Garage door", "Gate", "Office blind", "House alarm",
    "Gate opener", "Kitchen light", "Hall light", "Garage light", "Thermostat", "Radio",
    "Open the garage", "Open the gate", "Good morning", "all", "", "  ", "Nothing",
)  # fmt: skip
POOLS: Final[dict[str, tuple[Any, ...]]] = {
    "name": NAMES,
    "player_name": NAMES,
    "area": ("Kitchen", "Hall", "Garage", "Office", "garage", "Nowhere", "", "all"),
    "player_area": ("Kitchen", "Garage", ""),
    "floor": ("Ground floor", "First floor", "Cellar", ""),
    "domain": (
        "lock", ["lock"], ["cover"], ["light", "lock"], ["switch"], ["script"],
        ["alarm_control_panel"], ["valve"], [], "light",
    ),
    "device_class": (["garage"], ["gate"], ["door"], ["shutter"], ["switch"], "garage", []),
    "entity": ("lock.front_door", "light.hall_light", "cover.gate", "switch.gate_opener"),
    "entity_id": ("lock.front_door", "light.hall_light", "cover.gate", "all"),
    "position": (0, 50, 100),
    "brightness": (0, 50, 100),
    "temperature": (18, 25),
    "message": ("Dinner is ready",),
    "volume_level": (10, 90),
    "volume_step": ("up", "down", 10),
    "media_content_id": ("http://127.0.0.1/song.mp3",),
    "media_content_type": ("music",),
}  # fmt: skip
OTHER_VALUES: Final = ("x", 1, None, True)
_IDS = itertools.count()


async def test_no_call_changes_what_it_may_not(hass: HomeAssistant) -> None:
    """Every drawn call keeps unexposed and high-risk entities as they were (see module)."""
    owner = MockConfigEntry(domain="test", title="Box")
    owner.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=owner.entry_id, identifiers={("test", "box")}, name="Box"
    )
    await build_safety_home(hass, device.id)
    unregister = async_register_timer_handler(hass, device.id, lambda *_: None)
    register_second_api(hass)
    tools = {apis: await _offered_tools(hass, apis, device.id) for apis in API_SETS}
    examples = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        nonlocal examples
        examples += 1
        apis = data.draw(st.sampled_from(API_SETS), label="apis")
        allow = data.draw(st.booleans(), label="allow high-risk")
        name = data.draw(st.sampled_from(sorted(tools[apis])), label="tool")
        arguments = data.draw(_arguments(tools[apis][name]), label="arguments")
        future = asyncio.run_coroutine_threadsafe(
            _example(hass, device.id, apis=apis, allow=allow, name=name, arguments=arguments),
            hass.loop,
        )
        future.result(timeout=60)

    await hass.async_add_executor_job(check)
    await intent.async_handle(
        hass, "test", "HassCancelAllTimers", {}, device_id=device.id
    )  # the timers some calls started
    unregister()
    print(f"\n{examples} generated calls checked")  # noqa: T201 - the count for the report
    assert examples >= EXAMPLES


async def _offered_tools(
    hass: HomeAssistant, apis: tuple[str, ...], device_id: str
) -> dict[str, list[str]]:
    """Return each offered tool's argument names, as the model sees them."""
    router = ToolRouter(hass, ToolPolicy(llm_apis=apis))
    prepared = await router.async_prepare(device_id)
    return {
        spec.name: sorted(spec.parameters.get("properties", {}))
        for spec in prepared.specs
        if spec.name != "end_session"
    }


def _arguments(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Draw a subset of the tool's arguments, each from its pool of telling values."""
    return st.fixed_dictionaries(
        {},
        optional={key: st.sampled_from(POOLS.get(key, OTHER_VALUES)) for key in keys},
    )


async def _example(
    hass: HomeAssistant,
    device_id: str,
    *,
    apis: tuple[str, ...],
    allow: bool,
    name: str,
    arguments: dict[str, Any],
) -> None:
    """Make the call three times and check what changed after each."""
    router = ToolRouter(hass, ToolPolicy(llm_apis=apis, allow_risky=allow, timeout=5))
    await router.async_prepare(device_id)
    changes = ChangeRecorder(hass, protected)
    try:
        first = await _call(hass, router, device_id, name, arguments)
        await _call(hass, router, device_id, name, arguments)
        assert changes.changed == [], f"changed without a user turn: {changes.changed}"
        router.user_spoke(f"item_{next(_IDS)}")
        await _call(hass, router, device_id, name, arguments)
        unexposed = set(UNEXPOSED) | {BACKING[e] for e in UNEXPOSED if e in BACKING}
        assert not unexposed & set(changes.changed), changes.changed
        if changes.changed:
            assert allow, f"changed without permission: {changes.changed}"
            assert first.get("confirmation_required"), f"changed unasked: {changes.changed}"
    finally:
        changes.unsubscribe()
        await _reset(hass)


async def _call(
    hass: HomeAssistant, router: ToolRouter, device_id: str, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """Make one call (its own turn budget) and let everything it started finish."""
    router.new_turn()
    index = next(_IDS)
    call = FunctionCall(
        f"event_{index}", "resp", f"item_{index}", f"call_{index}", name, json.dumps(arguments)
    )
    outcome = await router.async_call(call, device_id)
    await hass.async_block_till_done()
    output: Any = json.loads(outcome.output)
    return output if isinstance(output, dict) else {}


async def _reset(hass: HomeAssistant) -> None:
    """Put every flag back as the home started, so the next example sees every change."""
    for flag in FLAGS:
        entity_id = f"input_boolean.{flag}"
        wanted = "on" if flag in INITIALLY_ON else "off"
        if hass.states.get(entity_id).state != wanted:
            await hass.services.async_call(
                "input_boolean", f"turn_{wanted}", {"entity_id": entity_id}, blocking=True
            )
    await hass.async_block_till_done()
