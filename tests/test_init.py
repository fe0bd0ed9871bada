"""Home Assistant loads the integration from custom_components."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import label_registry as lr
from homeassistant.loader import async_get_integration
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import CONF_BASE_URL, DOMAIN
from custom_components.realtime_voice.risk import HIGH_RISK_LABEL, HIGH_RISK_LABEL_NAME

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
        data={CONF_API_KEY: simulator.api_key, CONF_BASE_URL: simulator.base_url + "/down"},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
