"""Home Assistant loads the integration from custom_components."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import label_registry as lr
from homeassistant.loader import async_get_integration
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.realtime_voice.const import CONF_BASE_URL, DOMAIN, EVENT_TRANSCRIPT
from custom_components.realtime_voice.risk import HIGH_RISK_LABEL, HIGH_RISK_LABEL_NAME
from tests.helpers.integration import EventLog, box_entry, box_of, running_box

from .simulator import Simulator


async def test_custom_integration_loads_and_unloads(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The entry sets up from custom_components (its key checked) and unloads cleanly."""
    integration = await async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert integration.name == "Realtime Voice (OpenAI WebRTC)"

    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        data={CONF_API_KEY: simulator.api_key, CONF_BASE_URL: simulator.base_url},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_the_high_risk_label_is_there_to_pick(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """Setting a box up creates the label `voice_high_risk` once; a renamed one is kept."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        data={CONF_API_KEY: simulator.api_key, CONF_BASE_URL: simulator.base_url},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    labels = lr.async_get(hass)
    label = labels.async_get_label(HIGH_RISK_LABEL)
    assert label is not None
    assert label.name == HIGH_RISK_LABEL_NAME
    labels.async_update(HIGH_RISK_LABEL, name="Opens the house")
    assert await hass.config_entries.async_reload(entry.entry_id)
    assert [label.name for label in labels.async_list_labels()] == ["Opens the house"]


async def test_an_unreachable_endpoint_retries_later(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The key cannot be checked (server error): setup is retried, not failed."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        data={CONF_API_KEY: simulator.api_key, CONF_BASE_URL: simulator.base_url + "/down"},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY


@pytest.mark.usefixtures("loopback_ice", "virtual_audio")
async def test_removing_a_box_removes_its_usage_totals(
    hass: HomeAssistant, simulator: Simulator, hass_storage: dict[str, Any]
) -> None:
    """The totals are kept across restarts (storage), and deleted with the box."""
    transcripts = EventLog(hass, EVENT_TRANSCRIPT)
    entry = box_entry(simulator)
    key = f"{DOMAIN}.{box_of(entry).subentry_id}.usage"
    async with running_box(hass, entry):
        await hass.services.async_call(DOMAIN, "start_conversation", blocking=True)
        await hass.services.async_call(DOMAIN, "send_text", {"text": "hello"}, blocking=True)
        await transcripts.wait_for(lambda data: data["role"] == "assistant")
        await hass.services.async_call(DOMAIN, "end_conversation", blocking=True)
        async_fire_time_changed(hass)  # the totals are written just after it ends
        await hass.async_block_till_done()
        assert hass_storage[key]["data"]["total_tokens"] > 0

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
