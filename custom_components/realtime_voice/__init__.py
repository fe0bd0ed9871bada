"""Realtime Voice: a speech-to-speech assistant on the box's own microphone and speaker."""

from __future__ import annotations

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .entity import device_info
from .models import RealtimeVoiceConfigEntry, RealtimeVoiceData
from .realtime.errors import AuthenticationError, RealtimeError
from .realtime.keys import check_api_key
from .risk import async_ensure_high_risk_label
from .services import async_setup_services
from .session import VoiceSession
from .settings import SessionSettings
from .tools import ToolRouter
from .usage import UsageLedger, async_remove_usage

PLATFORMS = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, once for every box."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> bool:
    """Set up one box: check the key, then build its session and entities."""
    settings = SessionSettings.from_entry(entry.data, entry.options)
    http = async_get_clientsession(hass)
    try:
        await check_api_key(http, settings.base_url, settings.api_key)
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
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **device_info(entry.entry_id, entry.title)
    )
    ledger = UsageLedger(hass, entry.entry_id, settings.prices)
    await ledger.async_load()
    session = VoiceSession(
        hass,
        entry=entry,
        device_id=lambda: device.id,
        settings=settings,
        http=http,
        tools=ToolRouter(hass, settings.tool_policy),
        ledger=ledger,
        on_auth_failed=lambda: entry.async_start_reauth(hass),
    )
    entry.runtime_data = RealtimeVoiceData(session)

    async def _on_stop(_event: Event) -> None:
        await session.async_shutdown()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _on_stop))
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> bool:
    """End any conversation, release the devices, remove the entities."""
    await entry.runtime_data.session.async_shutdown()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> None:
    """Forget the box's usage totals with the box."""
    await async_remove_usage(hass, entry.entry_id)


async def _async_options_updated(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> None:
    """Apply new options from the next conversation on; leave a running one alone."""
    entry.runtime_data.session.apply_settings(SessionSettings.from_entry(entry.data, entry.options))
