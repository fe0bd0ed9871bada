"""Version-1 entries (one key per box) become accounts with boxes, losing nothing.

Real Home Assistant: version-1 entries with their registry entries and stored usage totals are
set up; afterwards the entity ids, options and totals are the same, under the account's box.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_INPUT_DEVICE,
    CONF_MODEL,
    CONF_OUTPUT_DEVICE,
    CONF_PRICES,
    CONF_VOICE,
    DOMAIN,
    SUBENTRY_BOX,
)
from tests.helpers.virtual_audio import MIC, SPEAKER

from .simulator import Simulator

pytestmark = pytest.mark.usefixtures("virtual_audio")

OLD_PRICE_DEFAULTS = {"price_audio_input": 32, "price_audio_output": 64, "price_text_input": 4,
                      "price_text_output": 16, "price_cached_input": 0.4}  # fmt: skip


def _version_1(
    simulator: Simulator,
    title: str,
    microphone: str,
    options: dict[str, Any],
    *,
    api_key: str | None = None,
    minor_version: int = 2,
) -> MockConfigEntry:
    """Return an entry as version 1.x stored it: key, endpoint, library and devices in data."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        version=1,
        minor_version=minor_version,
        unique_id=f"{microphone}|{SPEAKER}",
        data={
            CONF_API_KEY: api_key or simulator.api_key,
            CONF_BASE_URL: simulator.base_url,
            CONF_AUDIO_BACKEND: "pulse",
            CONF_INPUT_DEVICE: microphone,
            CONF_OUTPUT_DEVICE: SPEAKER,
        },
        options=options,
    )


def _register(hass: HomeAssistant, entry: MockConfigEntry, object_id: str) -> str:
    """Register the old entry's device and its cost sensor under a name the user chose."""
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, entry.entry_id)}, name=entry.title
    )
    registered = er.async_get(hass).async_get_or_create(
        "sensor",
        DOMAIN,
        f"{entry.entry_id}-estimated_cost",
        suggested_object_id=object_id,
        config_entry=entry,
        device_id=device.id,
    )
    return registered.entity_id


def _usage(hass_storage: dict[str, Any], entry: MockConfigEntry, total_cost: float) -> None:
    hass_storage[f"{DOMAIN}.{entry.entry_id}.usage"] = {
        "version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.usage",
        "data": {"total_tokens": 1000, "total_cost": total_cost},
    }


async def test_version_1_entries_become_boxes_of_their_account(
    hass: HomeAssistant, simulator: Simulator, hass_storage: dict[str, Any]
) -> None:
    """Two entries with one key become one account with two boxes; a third key its own.

    Each box keeps its options, its entity ids (and unique ids), its device and its totals.
    """
    kitchen = _version_1(simulator, "Kitchen", MIC, {CONF_VOICE: "cedar"})
    hall = _version_1(simulator, "Hall", f"{SPEAKER}.monitor", {CONF_MODEL: "gpt-realtime-2.1"})
    other = _version_1(simulator, "Other", "other_mic", {}, api_key="sk-other-account")
    kitchen_cost = _register(hass, kitchen, "kitchen_spend")
    hall_cost = _register(hass, hall, "hall_spend")
    _register(hass, other, "other_spend")
    _usage(hass_storage, kitchen, 1.25)
    _usage(hass_storage, hall, 0.5)

    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    entries = hass.config_entries.async_entries(DOMAIN)
    assert [entry.entry_id for entry in entries] == [kitchen.entry_id, other.entry_id]
    account = hass.config_entries.async_get_entry(kitchen.entry_id)
    assert account is not None
    assert (account.version, account.minor_version) == (2, 1)
    assert account.state is ConfigEntryState.LOADED
    assert account.data == {CONF_API_KEY: simulator.api_key, CONF_BASE_URL: simulator.base_url}
    assert account.options == {}
    assert account.unique_id is None
    boxes = account.subentries
    assert set(boxes) == {kitchen.entry_id, hall.entry_id}  # the old ids
    assert {box.subentry_type for box in boxes.values()} == {SUBENTRY_BOX}
    assert boxes[kitchen.entry_id].title == "Kitchen"
    assert boxes[kitchen.entry_id].unique_id == f"{MIC}|{SPEAKER}"
    assert boxes[kitchen.entry_id].data == {
        CONF_AUDIO_BACKEND: "pulse",
        CONF_INPUT_DEVICE: MIC,
        CONF_OUTPUT_DEVICE: SPEAKER,
        CONF_VOICE: "cedar",
    }
    assert boxes[hall.entry_id].data[CONF_MODEL] == "gpt-realtime-2.1"
    assert account.runtime_data.boxes[hall.entry_id].settings.model == "gpt-realtime-2.1"

    entities = er.async_get(hass)
    for entity_id, box_id in ((kitchen_cost, kitchen.entry_id), (hall_cost, hall.entry_id)):
        entity = entities.async_get(entity_id)
        assert entity is not None
        assert entity.unique_id == f"{box_id}-estimated_cost"
        assert (entity.config_entry_id, entity.config_subentry_id) == (account.entry_id, box_id)
        device = dr.async_get(hass).async_get(entity.device_id or "")
        assert device is not None
        assert (device.config_entry_id, device.config_subentry_id) == (account.entry_id, box_id)
    # No second set of entities: the old ones were taken over, the rest added once per box.
    owned = er.async_entries_for_config_entry(entities, account.entry_id)
    per_box = {entity.unique_id.split("-", 1)[1] for entity in owned}
    assert len(owned) == 2 * len(per_box)  # one of each kind per box, no duplicates
    assert {"estimated_cost", "state", "satellite"} <= per_box
    assert {entity.unique_id.split("-")[0] for entity in owned} == set(boxes)
    assert hass.states.get("sensor.kitchen_state") is not None  # named after the old device
    assert hass.states.get(kitchen_cost).state == "1.25"
    assert hass.states.get(hall_cost).state == "0.5"
    assert f"{DOMAIN}.{hall.entry_id}.usage" in hass_storage  # kept with the box

    for entry in hass.config_entries.async_entries(DOMAIN):
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_old_price_options_become_overrides(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """1.1 entries had five prices for every model: changed ones stay, the old defaults go."""
    untouched = _version_1(
        simulator, "Kitchen", MIC, {CONF_MODEL: "gpt-realtime-2.1", **OLD_PRICE_DEFAULTS},
        minor_version=1,
    )  # fmt: skip
    changed = _version_1(
        simulator,
        "Hall",
        "other",
        {**OLD_PRICE_DEFAULTS, "price_audio_output": 20, "price_cached_input": 0.3},
        minor_version=1,
    )
    untouched.add_to_hass(hass)
    changed.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert untouched.subentries[untouched.entry_id].data == {
        CONF_AUDIO_BACKEND: "pulse",
        CONF_INPUT_DEVICE: MIC,
        CONF_OUTPUT_DEVICE: SPEAKER,
        CONF_MODEL: "gpt-realtime-2.1",
    }
    assert untouched.subentries[changed.entry_id].data[CONF_PRICES] == {
        "audio": {"input": 32, "cached_input": 0.3, "output": 20},
        "text": {"input": 4, "cached_input": 0.3, "output": 16},
    }
    assert untouched.state is ConfigEntryState.LOADED
    assert untouched.runtime_data.boxes[changed.entry_id].settings.prices.audio.output == 20
    assert await hass.config_entries.async_unload(untouched.entry_id)
