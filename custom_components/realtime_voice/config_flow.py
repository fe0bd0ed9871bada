"""Config flow: the OpenAI account (key checked once for all its boxes), and its first box.

The entry holds the key and the endpoint; each box is a config subentry (box_flow.py). Adding
the integration asks for the key, then sets up the first box in the same flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, override
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType
import probatio

from . import options
from .box_flow import (
    BoxFlow,
    box_title,
    device_schema,
    devices_id,
    devices_in_use,
    persona_schema,
)
from .const import (
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    DEFAULT_BASE_URL,
    DOMAIN,
    LOGGER,
    SUBENTRY_BOX,
)
from .realtime.errors import AuthenticationError, ConnectError, RealtimeError
from .realtime.http import ModelInfo, check_api_key

ADVANCED = "advanced"
_KEY = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


def account_title(base_url: str) -> str:
    """Name the account: OpenAI, or the other endpoint's host."""
    if base_url.rstrip("/") == DEFAULT_BASE_URL:
        return "OpenAI"
    return f"OpenAI ({urlsplit(base_url).netloc or base_url})"


async def _check_key(
    flow: ConfigFlow, base_url: str, api_key: str
) -> tuple[dict[str, str], tuple[ModelInfo, ...]]:
    """Return the form errors of checking the key with GET /v1/models, and the models."""
    try:
        models = await check_api_key(async_get_clientsession(flow.hass), base_url, api_key)
    except AuthenticationError:
        return {"base": "invalid_auth"}, ()
    except ConnectError:
        return {"base": "cannot_connect"}, ()
    except RealtimeError:
        LOGGER.exception("Unexpected answer while checking the API key")
        return {"base": "unknown"}, ()
    return {}, models


class RealtimeVoiceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an OpenAI account and its first box: key, persona, microphone and speaker."""

    VERSION = 2
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Collect the steps' answers."""
        self._account: dict[str, Any] = {}
        self._box: dict[str, Any] = {}
        self._listed: tuple[ModelInfo, ...] = ()

    @classmethod
    @callback
    @override
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Boxes are added to and changed in the account."""
        return {SUBENTRY_BOX: BoxFlow}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key (and, under advanced, another endpoint) and check it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            base_url = user_input.get(ADVANCED, {}).get(CONF_BASE_URL) or DEFAULT_BASE_URL
            account = {CONF_API_KEY: user_input[CONF_API_KEY], CONF_BASE_URL: base_url}
            self._async_abort_entries_match(account)
            errors, self._listed = await _check_key(self, base_url, user_input[CONF_API_KEY])
            if not errors:
                self._account = account
                return await self.async_step_persona()
        schema = probatio.Schema(
            {
                probatio.Required(CONF_API_KEY): _KEY,
                probatio.Required(ADVANCED): section(
                    probatio.Schema(
                        {probatio.Optional(CONF_BASE_URL, default=DEFAULT_BASE_URL): str}
                    ),
                    {"collapsed": True},
                ),
            }
        )
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    async def async_step_persona(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask how the first box's assistant behaves and sounds, and which audio library."""
        if user_input is not None:
            self._box = {**options.defaults(), **user_input}
            return await self.async_step_audio()
        schema = self.add_suggested_values_to_schema(
            persona_schema(self.hass, self._listed), options.defaults()
        )
        return self.async_show_form(step_id="persona", data_schema=schema)

    async def async_step_audio(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the first box's microphone and speaker."""
        schema, labels = await device_schema(self.hass, self._box.get(CONF_AUDIO_BACKEND), {})
        if user_input is None:
            return self.async_show_form(step_id="audio", data_schema=schema)
        box = {**self._box, **user_input}
        devices = devices_id(box)
        if devices_in_use(self.hass, devices):
            return self.async_abort(reason="devices_in_use")
        return self.async_create_entry(
            title=account_title(self._account[CONF_BASE_URL]),
            data=self._account,
            subentries=[
                ConfigSubentryData(
                    subentry_type=SUBENTRY_BOX,
                    title=box_title(box, labels),
                    data=box,
                    unique_id=devices,
                )
            ],
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Ask for a new key: the old one was refused (for every box of the account)."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new key and check it."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            base_url = entry.data.get(CONF_BASE_URL) or DEFAULT_BASE_URL
            errors, _models = await _check_key(self, base_url, user_input[CONF_API_KEY])
            if not errors:
                return self.async_update_reload_and_abort(entry, data_updates=user_input)
        schema = probatio.Schema({probatio.Required(CONF_API_KEY): _KEY})
        return self.async_show_form(step_id="reauth_confirm", data_schema=schema, errors=errors)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the account's endpoint (a box's devices and library: reconfigure the box)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            base_url = user_input[CONF_BASE_URL]
            errors, _models = await _check_key(self, base_url, entry.data[CONF_API_KEY])
            if not errors:
                return self.async_update_reload_and_abort(
                    entry, title=account_title(base_url), data_updates=user_input
                )
        schema = probatio.Schema(
            {
                probatio.Required(
                    CONF_BASE_URL, default=entry.data.get(CONF_BASE_URL, DEFAULT_BASE_URL)
                ): str,
            }
        )
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)
