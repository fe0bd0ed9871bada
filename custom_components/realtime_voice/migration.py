"""Version 1 (one entry per box, each with its key) becomes version 2 (accounts with boxes).

Entries with the same key and endpoint become one account; each old entry becomes a box of it
whose subentry id is the old entry id. So the box keeps its unique ids (and entity ids), its
device and its usage totals, which are all keyed by that id.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .config_flow import RealtimeVoiceConfigFlow, account_title
from .const import (
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_INPUT_DEVICE,
    CONF_OUTPUT_DEVICE,
    CONF_PRICES,
    DEFAULT_BASE_URL,
    DOMAIN,
    LOGGER,
    SUBENTRY_BOX,
)
from .models import RealtimeVoiceConfigEntry

_BOX_DATA = (CONF_AUDIO_BACKEND, CONF_INPUT_DEVICE, CONF_OUTPUT_DEVICE)
"""What a version-1 entry held about its box besides the options."""


async def async_migrate_integration(hass: HomeAssistant) -> None:
    """Make every version-1 entry a box of the account with its key (before any is set up)."""
    accounts: dict[tuple[str, str], ConfigEntry] = {}
    # Enabled entries first: an account made of a disabled entry would stay disabled.
    for entry in sorted(
        hass.config_entries.async_entries(DOMAIN), key=lambda e: e.disabled_by is not None
    ):
        if entry.version != 1:
            continue
        base_url = entry.data.get(CONF_BASE_URL) or DEFAULT_BASE_URL
        key = (entry.data[CONF_API_KEY], base_url)
        account = accounts.setdefault(key, entry)
        box = ConfigSubentry(
            data=MappingProxyType(_box_data(entry)),
            subentry_type=SUBENTRY_BOX,
            title=entry.title,
            unique_id=entry.unique_id,
            subentry_id=entry.entry_id,
        )
        hass.config_entries.async_add_subentry(account, box)
        _move_registry_entries(hass, entry, account, box.subentry_id)
        if account is entry:
            hass.config_entries.async_update_entry(
                entry,
                title=account_title(base_url),
                data={CONF_API_KEY: key[0], CONF_BASE_URL: base_url},
                options={},
                unique_id=None,
                version=RealtimeVoiceConfigFlow.VERSION,
                minor_version=RealtimeVoiceConfigFlow.MINOR_VERSION,
            )
        else:
            await hass.config_entries.async_remove(entry.entry_id)
        LOGGER.info("%s is now a box of the account %s", entry.title, account.entry_id)


async def async_migrate_entry(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> bool:
    """Refuse entries written by a newer version; version 1 was moved at component setup."""
    return entry.version == RealtimeVoiceConfigFlow.VERSION


def _move_registry_entries(
    hass: HomeAssistant, old: ConfigEntry, account: ConfigEntry, box_id: str
) -> None:
    """Give the old entry's device and entities to the box (same ids, same entity ids)."""
    devices = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(devices, old.entry_id):
        devices.async_update_device(
            device.id, new_config_entry_id=account.entry_id, new_config_subentry_id=box_id
        )
    entities = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(entities, old.entry_id):
        entities.async_update_entity(
            entity.entity_id, config_entry_id=account.entry_id, config_subentry_id=box_id
        )


def _box_data(entry: ConfigEntry) -> dict[str, Any]:
    """Return the box's devices and library and its options (1.1's prices as overrides)."""
    options = {k: v for k, v in entry.options.items() if k not in _LEGACY_PRICES}
    if entry.minor_version < 2 and (overrides := _legacy_price_overrides(entry.options)):  # noqa: PLR2004
        options[CONF_PRICES] = overrides
    return {**{k: entry.data[k] for k in _BOX_DATA if k in entry.data}, **options}


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
