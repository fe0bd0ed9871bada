"""Two boxes of one account in a real Home Assistant: each its own device, session and issues."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.config_flow import RealtimeVoiceConfigFlow
from custom_components.realtime_voice.const import CONF_BASE_URL, DOMAIN, EVENT_SESSION_STARTED
from custom_components.realtime_voice.translated_errors import ISSUE_AUDIO_DEVICE, box_issue_id
from tests.helpers.integration import EventLog, box_data, running_box
from tests.helpers.virtual_audio import MIC, SPEAKER, open_streams

from .simulator import Simulator

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")


def _account(simulator: Simulator) -> MockConfigEntry:
    """Return an account with a box on the virtual devices and one on a missing microphone."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="OpenAI (simulator)",
        version=RealtimeVoiceConfigFlow.VERSION,
        minor_version=RealtimeVoiceConfigFlow.MINOR_VERSION,
        data={CONF_API_KEY: simulator.api_key, CONF_BASE_URL: simulator.base_url},
        subentries_data=[
            box_data("pulse", MIC, SPEAKER, title="Kitchen"),
            box_data("pulse", "no_such_microphone", SPEAKER, title="Hall"),
        ],
    )


def _box(entry: MockConfigEntry, title: str) -> ConfigSubentry:
    return next(box for box in entry.subentries.values() if box.title == title)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, box: ConfigSubentry) -> str:
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, box.subentry_id), entry.entry_id
    )
    assert device is not None
    return device.id


async def test_one_box_starting_leaves_another_boxs_issue(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """The hall's microphone is missing: its issue names it and stays while the kitchen talks.

    Before, the issue ids had no box: any conversation that started cleared every box's issue.
    """
    started = EventLog(hass, EVENT_SESSION_STARTED)
    async with running_box(hass, _account(simulator)) as entry:
        kitchen, hall = _box(entry, "Kitchen"), _box(entry, "Hall")
        assert hass.states.get("sensor.kitchen_state").state == "idle"
        assert hass.states.get("sensor.hall_state").state == "idle"

        with pytest.raises(HomeAssistantError) as raised:
            await hass.services.async_call(
                DOMAIN,
                "start_conversation",
                {"device_id": _device_id(hass, entry, hall)},
                blocking=True,
            )
        assert raised.value.translation_key == "audio_unavailable"
        hall_issue = box_issue_id(ISSUE_AUDIO_DEVICE, hall.subentry_id)
        issue = ir.async_get(hass).async_get_issue(DOMAIN, hall_issue)
        assert issue is not None
        assert (issue.translation_placeholders or {})["box"] == "Hall"

        kitchen_device = _device_id(hass, entry, kitchen)
        await hass.services.async_call(
            DOMAIN, "start_conversation", {"device_id": kitchen_device}, blocking=True
        )
        assert (await started.wait_for())["device_id"] == kitchen_device
        assert hass.states.get("sensor.hall_state").state == "idle"
        await hass.services.async_call(
            DOMAIN, "end_conversation", {"device_id": kitchen_device}, blocking=True
        )

        raised_issues = {
            issue_id for domain, issue_id in ir.async_get(hass).issues if domain == DOMAIN
        }
        assert raised_issues == {hall_issue}
        assert open_streams() == []


async def test_without_a_target_two_boxes_are_ambiguous(
    hass: HomeAssistant, simulator: Simulator
) -> None:
    """An action without device or box: refused in words when the account has two boxes."""
    async with running_box(hass, _account(simulator)) as entry:
        with pytest.raises(HomeAssistantError) as raised:
            await hass.services.async_call(DOMAIN, "start_conversation", {}, blocking=True)
        assert raised.value.translation_key == "ambiguous_box"
        # A box's own id picks it, as the id of the version-1 entry it came from would.
        kitchen = _box(entry, "Kitchen")
        await hass.services.async_call(
            DOMAIN, "start_conversation", {"config_entry_id": kitchen.subentry_id}, blocking=True
        )
        assert hass.states.get("sensor.kitchen_state").state != "idle"
        await hass.services.async_call(
            DOMAIN, "end_conversation", {"config_entry_id": kitchen.subentry_id}, blocking=True
        )


async def test_removing_a_box_removes_its_device_entities_and_usage_totals(
    hass: HomeAssistant, simulator: Simulator, hass_storage: dict[str, Any]
) -> None:
    """A box deleted from the account takes its totals along; the other box keeps its own."""
    entry = _account(simulator)
    hall, kitchen = _box(entry, "Hall"), _box(entry, "Kitchen")
    for box in (hall, kitchen):
        key = f"{DOMAIN}.{box.subentry_id}.usage"
        hass_storage[key] = {
            "version": 1,
            "key": key,
            "data": {"total_tokens": 10, "total_cost": 2.0},
        }
    async with running_box(hass, entry):
        assert hass.states.get("sensor.hall_estimated_cost").state == "2.0"
        assert hass.config_entries.async_remove_subentry(entry, hall.subentry_id)
        await hass.async_block_till_done()
        assert f"{DOMAIN}.{hall.subentry_id}.usage" not in hass_storage
        assert f"{DOMAIN}.{kitchen.subentry_id}.usage" in hass_storage
        assert set(entry.runtime_data.boxes) == {kitchen.subentry_id}
        assert hass.states.get("sensor.hall_estimated_cost") is None
        assert hass.states.get("sensor.kitchen_estimated_cost").state == "2.0"
