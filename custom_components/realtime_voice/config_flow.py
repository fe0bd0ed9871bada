"""Config flow: the API key (checked), then persona and audio; options, reauth, reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, override

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from . import options
from .audio import DEFAULT_DEVICE
from .audio_link import DeviceLabels, async_list_devices
from .const import (
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_INPUT_DEVICE,
    CONF_INSTRUCTIONS,
    CONF_MODEL,
    CONF_OUTPUT_DEVICE,
    CONF_PRICES,
    CONF_VOICE,
    DEFAULT_BASE_URL,
    DOMAIN,
    LOGGER,
    AudioBackendChoice,
)
from .models import RealtimeVoiceConfigEntry
from .pricing import parse_price_overrides
from .realtime.errors import AuthenticationError, ConnectError, RealtimeError
from .realtime.keys import ModelInfo, check_api_key

ADVANCED = "advanced"
TITLE = "Realtime Voice"
_BACKENDS = SelectSelector(
    SelectSelectorConfig(
        options=[choice.value for choice in AudioBackendChoice],
        mode=SelectSelectorMode.DROPDOWN,
        translation_key=CONF_AUDIO_BACKEND,
    )
)


def persona_schema(context: options.FormContext) -> probatio.Schema:
    """Return the persona step: instructions, voice, the account's models, audio library."""
    return probatio.Schema(
        {
            **options.fields(context, (CONF_INSTRUCTIONS, CONF_VOICE, CONF_MODEL)),
            probatio.Required(CONF_AUDIO_BACKEND, default=AudioBackendChoice.AUTO): _BACKENDS,
        }
    )


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
    """Add a box: an OpenAI API key, a persona, the box's microphone and speaker."""

    VERSION = 1
    MINOR_VERSION = 2

    def __init__(self) -> None:
        """Collect the steps' answers."""
        self._data: dict[str, Any] = {}
        self._options: dict[str, Any] = {}
        self._device_labels: DeviceLabels = {}
        self._listed: tuple[ModelInfo, ...] = ()

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: RealtimeVoiceConfigEntry) -> RealtimeVoiceOptionsFlow:
        """Options: everything but the key."""
        return RealtimeVoiceOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key (and, under advanced, another endpoint) and check it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            base_url = user_input.get(ADVANCED, {}).get(CONF_BASE_URL) or DEFAULT_BASE_URL
            errors, self._listed = await _check_key(self, base_url, user_input[CONF_API_KEY])
            if not errors:
                self._data = {CONF_API_KEY: user_input[CONF_API_KEY], CONF_BASE_URL: base_url}
                return await self.async_step_persona()
        schema = probatio.Schema(
            {
                probatio.Required(CONF_API_KEY): TextSelector(
                    TextSelectorConfig(type=TextSelectorType.PASSWORD)
                ),
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
        """Ask how the assistant behaves and sounds, and which audio library to use."""
        if user_input is not None:
            self._data[CONF_AUDIO_BACKEND] = user_input.pop(CONF_AUDIO_BACKEND)
            self._options = user_input
            return await self.async_step_audio()
        schema = self.add_suggested_values_to_schema(
            persona_schema(options.FormContext(self.hass, self._listed)), options.defaults()
        )
        return self.async_show_form(step_id="persona", data_schema=schema)

    async def async_step_audio(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the microphone and the speaker."""
        if user_input is not None:
            data = {**self._data, **user_input}
            await self.async_set_unique_id(_box_id(data))
            if self.source == SOURCE_RECONFIGURE:
                self._abort_if_unique_id_mismatch(reason="wrong_devices")
                return self.async_update_reload_and_abort(
                    self._get_reconfigure_entry(), data_updates=data
                )
            self._abort_if_unique_id_configured()
            return self.async_create_entry(
                title=_box_title(data, self._device_labels),
                data=data,
                options={**options.defaults(), **self._options},
            )
        schema = await self._device_schema(self._data.get(CONF_AUDIO_BACKEND))
        return self.async_show_form(step_id="audio", data_schema=schema)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Ask for a new key: the old one was refused."""
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
        schema = probatio.Schema(
            {
                probatio.Required(CONF_API_KEY): TextSelector(
                    TextSelectorConfig(type=TextSelectorType.PASSWORD)
                )
            }
        )
        return self.async_show_form(step_id="reauth_confirm", data_schema=schema, errors=errors)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the endpoint and the audio library; devices follow in the audio step."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors, _models = await _check_key(
                self, user_input[CONF_BASE_URL], entry.data[CONF_API_KEY]
            )
            if not errors:
                self._data = {**entry.data, **user_input}
                return await self.async_step_audio()
        schema = probatio.Schema(
            {
                probatio.Required(
                    CONF_BASE_URL, default=entry.data.get(CONF_BASE_URL, DEFAULT_BASE_URL)
                ): str,
                probatio.Required(
                    CONF_AUDIO_BACKEND,
                    default=entry.data.get(CONF_AUDIO_BACKEND, AudioBackendChoice.AUTO),
                ): _BACKENDS,
            }
        )
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    async def _device_schema(self, backend: str | None) -> probatio.Schema:
        """List the backend's devices by the names people know them by, "default" first."""
        inputs, outputs = await async_list_devices(
            self.hass, AudioBackendChoice(backend or AudioBackendChoice.AUTO)
        )
        self._device_labels = {**inputs, **outputs}

        def choices(devices: DeviceLabels) -> SelectSelector:
            options = [SelectOptionDict(value=DEFAULT_DEVICE, label=DEFAULT_DEVICE)]
            options += [
                SelectOptionDict(value=name, label=label)
                for name, label in devices.items()
                if name != DEFAULT_DEVICE
            ]
            # The translation key names "default"; the devices show their own labels.
            return SelectSelector(
                SelectSelectorConfig(
                    options=options, custom_value=True, translation_key="audio_device"
                )
            )

        return probatio.Schema(
            {
                probatio.Required(CONF_INPUT_DEVICE, default=DEFAULT_DEVICE): choices(inputs),
                probatio.Required(CONF_OUTPUT_DEVICE, default=DEFAULT_DEVICE): choices(outputs),
            }
        )


def _box_id(data: Mapping[str, Any]) -> str:
    """Identify a box by its devices: two entries must not share a microphone and speaker."""
    devices = (data.get(CONF_INPUT_DEVICE), data.get(CONF_OUTPUT_DEVICE))
    return "|".join(device or DEFAULT_DEVICE for device in devices)


def _box_title(data: Mapping[str, Any], labels: DeviceLabels) -> str:
    """Name the box after its devices, so that boxes tell apart (none: both are defaults)."""
    chosen = (data.get(CONF_INPUT_DEVICE), data.get(CONF_OUTPUT_DEVICE))
    names = [labels.get(name, name) for name in chosen if name not in (None, DEFAULT_DEVICE)]
    unique = dict.fromkeys(names)  # a headset's one name, once
    return f"{TITLE} ({' / '.join(unique)})" if unique else TITLE


class RealtimeVoiceOptionsFlow(OptionsFlow):
    """Everything but the key, in sections; applies from the next conversation on."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show every option with its current value; check the price overrides."""
        errors: dict[str, str] = {}
        problem = ""
        if user_input is not None:
            chosen = options.from_form(user_input)
            try:
                parse_price_overrides(chosen.get(CONF_PRICES))
            except ValueError as err:
                errors["base"], problem = "invalid_prices", str(err)
            else:
                return self.async_create_entry(data=chosen)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                options.form_schema(options.FormContext(self.hass, self._listed())),
                user_input or options.by_section(self.config_entry.options),
            ),
            errors=errors,
            description_placeholders={"problem": problem},
        )

    def _listed(self) -> tuple[ModelInfo, ...]:
        """Return the models the account listed when the box was set up or last checked."""
        entry: RealtimeVoiceConfigEntry = self.config_entry
        return entry.runtime_data.models if entry.state is ConfigEntryState.LOADED else ()
