"""Realtime Voice: a speech-to-speech assistant on the box's own microphone and speaker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import CONF_PRICES, DOMAIN
from .entity import device_info
from .model_issues import async_check_model, async_track_model
from .models import RealtimeVoiceConfigEntry, RealtimeVoiceData
from .realtime.errors import AuthenticationError, RealtimeError
from .realtime.keys import check_api_key
from .risk import async_ensure_high_risk_label
from .services import async_setup_services
from .session import VoiceSession
from .settings import SessionSettings
from .tools import ToolRouter
from .usage import UsageLedger, async_remove_usage

PLATFORMS = [Platform.ASSIST_SATELLITE, Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR]
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
        models = await check_api_key(http, settings.base_url, settings.api_key)
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
    ledger = UsageLedger(hass, entry.entry_id, settings.prices, settings.transcription_prices)
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
    entry.runtime_data = RealtimeVoiceData(session, models)
    async_check_model(hass, entry, settings.model, models)
    async_track_model(hass, entry)

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
    settings = SessionSettings.from_entry(entry.data, entry.options)
    entry.runtime_data.session.apply_settings(settings)
    async_check_model(hass, entry, settings.model, entry.runtime_data.models)


async def async_migrate_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> bool:
    """1.1 → 1.2: five prices for one model become per-model prices with optional overrides."""
    if entry.version > 1:
        return False  # written by a newer version of the integration
    if entry.minor_version < 2:  # noqa: PLR2004
        options = {k: v for k, v in entry.options.items() if k not in _LEGACY_PRICES}
        if overrides := _legacy_price_overrides(entry.options):
            options[CONF_PRICES] = overrides
        hass.config_entries.async_update_entry(entry, options=options, minor_version=2)
    return True


_LEGACY_PRICES = {
    "price_audio_input": 32.0,
    "price_audio_output": 64.0,
    "price_text_input": 4.0,
    "price_text_output": 16.0,
    "price_cached_input": 0.4,
}
"""The 1.1 price options and their defaults (gpt-realtime's prices)."""


def _legacy_price_overrides(options: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Keep prices the user changed as overrides; the old defaults give way to the table."""
    old = {key: float(options.get(key, default)) for key, default in _LEGACY_PRICES.items()}
    if old == _LEGACY_PRICES:
        return {}
    cached = old["price_cached_input"]
    return {
        "audio": {
            "input": old["price_audio_input"],
            "cached_input": cached,
            "output": old["price_audio_output"],
        },
        "text": {
            "input": old["price_text_input"],
            "cached_input": cached,
            "output": old["price_text_output"],
        },
    }
