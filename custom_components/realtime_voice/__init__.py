"""Realtime Voice: a speech-to-speech assistant on each box's own microphone and speaker.

One config entry is one OpenAI account (key and endpoint); each box is a config subentry with
its own persona, voice, devices and options, its own device and entities, and its own session.
"""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_API_KEY, EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import CONF_BASE_URL, DEFAULT_BASE_URL, DOMAIN, SUBENTRY_BOX, Box
from .entity import device_info
from .migration import async_migrate_entry, async_migrate_integration
from .model_issues import async_check_models, async_track_model
from .models import RealtimeVoiceConfigEntry, RealtimeVoiceData
from .realtime.errors import AuthenticationError, RealtimeError
from .realtime.http import check_api_key
from .risk import async_ensure_high_risk_label
from .services import async_setup_services
from .session import VoiceSession
from .settings import SessionSettings
from .tools import ToolRouter
from .usage import UsageLedger, async_remove_usage

__all__ = ["async_migrate_entry"]

PLATFORMS = [Platform.ASSIST_SATELLITE, Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Move version-1 entries (one key per box) to accounts with boxes; register the actions."""
    await async_migrate_integration(hass)
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> bool:
    """Set up an account: check the key once, then build each box's session and entities."""
    base_url = entry.data.get(CONF_BASE_URL) or DEFAULT_BASE_URL
    try:
        models = await check_api_key(
            async_get_clientsession(hass), base_url, entry.data[CONF_API_KEY]
        )
    except AuthenticationError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="auth_failed",
            translation_placeholders={"message": err.message},
        ) from err
    except RealtimeError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"message": err.message},
        ) from err

    async_ensure_high_risk_label(hass)
    entry.runtime_data = RealtimeVoiceData(models=models)
    for box in _boxes(entry):
        await _async_build_box(hass, entry, box)
    async_check_models(hass, entry)
    async_track_model(hass, entry)

    async def _on_stop(_event: Event) -> None:
        await _async_shutdown(entry)

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _on_stop))
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_build_box(
    hass: HomeAssistant, entry: RealtimeVoiceConfigEntry, subentry: ConfigSubentry
) -> None:
    """Build one box: its device, its usage totals and its session."""
    box = Box(subentry.subentry_id, subentry.title)
    settings = SessionSettings.from_box(entry.data, subentry.data)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, config_subentry_id=box.id, **device_info(box)
    )
    ledger = UsageLedger(hass, box.id, settings.prices, settings.transcription_prices)
    await ledger.async_load()
    entry.runtime_data.ledgers[box.id] = ledger
    entry.runtime_data.boxes[box.id] = VoiceSession(
        hass,
        entry=entry,
        box=box,
        device_id=lambda: device.id,
        settings=settings,
        http=async_get_clientsession(hass),
        tools=ToolRouter(hass, settings.tool_policy),
        ledger=ledger,
        on_auth_failed=lambda: entry.async_start_reauth(hass),
    )


async def async_unload_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> bool:
    """End any conversation, release the devices, remove the entities."""
    await _async_shutdown(entry)
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> None:
    """Forget the usage totals of the account's boxes with the account."""
    for box in _boxes(entry):
        await async_remove_usage(hass, box.subentry_id)


async def _async_shutdown(entry: RealtimeVoiceConfigEntry) -> None:
    await asyncio.gather(*(box.async_shutdown() for box in entry.runtime_data.boxes.values()))


async def _async_entry_updated(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> None:
    """Apply a box's new options from its next conversation on; reload when boxes come or go.

    A running conversation is left alone when only options change. (Another key or endpoint
    comes from the reauth and reconfigure flows, which reload the account themselves.)
    """
    running = entry.runtime_data.boxes
    boxes = {box.subentry_id: box for box in _boxes(entry)}
    for gone in running.keys() - boxes.keys():
        await entry.runtime_data.ledgers[gone].async_remove()  # its pending writes too
    if boxes.keys() != running.keys():
        hass.config_entries.async_schedule_reload(entry.entry_id)
        return
    devices = dr.async_get(hass)
    for box_id, subentry in boxes.items():
        session = running[box_id]
        session.apply_settings(SessionSettings.from_box(entry.data, subentry.data))
        if session.box.title != subentry.title:
            session.box = Box(box_id, subentry.title)
            if device := devices.async_get_device_by_identifier((DOMAIN, box_id), entry.entry_id):
                devices.async_update_device(device.id, name=subentry.title)
    async_check_models(hass, entry)


def _boxes(entry: RealtimeVoiceConfigEntry) -> list[ConfigSubentry]:
    return [box for box in entry.subentries.values() if box.subentry_type == SUBENTRY_BOX]
