"""Config flow: the API key (checked), then persona and audio; options, reauth, reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, override

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import llm
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    ObjectSelector,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from .audio_link import async_list_devices
from .const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_ALLOWED_ACTIONS,
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_DUPLEX,
    CONF_GREETING,
    CONF_HIGH_PASS_FILTER,
    CONF_IDLE_TIMEOUT,
    CONF_INPUT_DEVICE,
    CONF_INSTRUCTIONS,
    CONF_MAX_DURATION,
    CONF_MAX_TOOL_CALLS,
    CONF_MODEL,
    CONF_NOISE_REDUCTION,
    CONF_NOISE_SUPPRESSION,
    CONF_OUTPUT_DEVICE,
    CONF_RISKY_ENTITIES,
    CONF_TOOL_TIMEOUT,
    CONF_TRANSCRIPTION_LANGUAGE,
    CONF_TRANSCRIPTION_MODEL,
    CONF_TURN_DETECTION,
    CONF_USER_TOOLS,
    CONF_VAD_EAGERNESS,
    CONF_VOICE,
    DEFAULT_BASE_URL,
    DEFAULT_DEVICE,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_MAX_DURATION,
    DEFAULT_MAX_TOOL_CALLS,
    DEFAULT_MODEL,
    DEFAULT_NOISE_REDUCTION,
    DEFAULT_PRICES,
    DEFAULT_TOOL_TIMEOUT,
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VOICE,
    DOMAIN,
    LOGGER,
    MAX_MAX_DURATION,
    NOISE_REDUCTIONS,
    AudioBackendChoice,
    Duplex,
)
from .realtime.errors import AuthenticationError, ConnectError, RealtimeError
from .realtime.events import VOICES
from .realtime.keys import check_api_key

MODELS = ("gpt-realtime", "gpt-realtime-mini", "gpt-realtime-2", "gpt-realtime-2.1-mini")
ADVANCED = "advanced"
_MULTILINE = TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT, multiline=True))


def _select(
    options: list[str] | tuple[str, ...], key: str | None, *, custom: bool = False
) -> SelectSelector:
    """Offer a dropdown; key names the translations of its labels, None shows the values."""
    config = SelectSelectorConfig(
        options=list(options), custom_value=custom, mode=SelectSelectorMode.DROPDOWN
    )
    if key:
        config["translation_key"] = key
    return SelectSelector(config)


def _number(low: float, high: float, step: float, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


PERSONA_SCHEMA = probatio.Schema(
    {
        probatio.Required(CONF_INSTRUCTIONS, default=DEFAULT_INSTRUCTIONS): _MULTILINE,
        probatio.Required(CONF_VOICE, default=DEFAULT_VOICE): _select(VOICES, CONF_VOICE),
        probatio.Required(CONF_MODEL, default=DEFAULT_MODEL): _select(MODELS, None, custom=True),
        probatio.Required(CONF_AUDIO_BACKEND, default=AudioBackendChoice.AUTO): _select(
            [choice.value for choice in AudioBackendChoice], CONF_AUDIO_BACKEND
        ),
    }
)


async def _check_key(flow: ConfigFlow, base_url: str, api_key: str) -> dict[str, str]:
    """Return the form errors of checking the key with GET /v1/models."""
    try:
        await check_api_key(async_get_clientsession(flow.hass), base_url, api_key)
    except AuthenticationError:
        return {"base": "invalid_auth"}
    except ConnectError:
        return {"base": "cannot_connect"}
    except RealtimeError:
        LOGGER.exception("Unexpected answer while checking the API key")
        return {"base": "unknown"}
    return {}


class RealtimeVoiceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a box: an OpenAI API key, a persona, the box's microphone and speaker."""

    VERSION = 1

    def __init__(self) -> None:
        """Collect the steps' answers."""
        self._data: dict[str, Any] = {}
        self._options: dict[str, Any] = {}

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> RealtimeVoiceOptionsFlow:
        """Options: everything but the key."""
        return RealtimeVoiceOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key (and, under advanced, another endpoint) and check it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            base_url = user_input.get(ADVANCED, {}).get(CONF_BASE_URL) or DEFAULT_BASE_URL
            errors = await _check_key(self, base_url, user_input[CONF_API_KEY])
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
        return self.async_show_form(step_id="persona", data_schema=PERSONA_SCHEMA)

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
                title="Realtime Voice", data=data, options=_default_options(self._options)
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
            errors = await _check_key(self, base_url, user_input[CONF_API_KEY])
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
            errors = await _check_key(self, user_input[CONF_BASE_URL], entry.data[CONF_API_KEY])
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
                ): _select([choice.value for choice in AudioBackendChoice], CONF_AUDIO_BACKEND),
            }
        )
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    async def _device_schema(self, backend: str | None) -> probatio.Schema:
        """List the backend's devices, "default" first."""
        inputs, outputs = await async_list_devices(
            self.hass, AudioBackendChoice(backend or AudioBackendChoice.AUTO)
        )

        def choices(names: list[str]) -> SelectSelector:
            options = [SelectOptionDict(value=DEFAULT_DEVICE, label="Default")]
            options += [SelectOptionDict(value=name, label=name) for name in names]
            return SelectSelector(SelectSelectorConfig(options=options, custom_value=True))

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


def _default_options(persona: dict[str, Any]) -> dict[str, Any]:
    """Return the options of a new entry: the persona given, safe defaults for the rest."""
    return {
        CONF_IDLE_TIMEOUT: DEFAULT_IDLE_TIMEOUT,
        CONF_MAX_DURATION: DEFAULT_MAX_DURATION,
        CONF_DUPLEX: Duplex.ECHO_CANCELLATION,
        CONF_TURN_DETECTION: "server_vad",
        CONF_TRANSCRIPTION_MODEL: DEFAULT_TRANSCRIPTION_MODEL,
        CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
        CONF_ALLOW_RISKY_ACTIONS: False,
        **persona,
    }


class RealtimeVoiceOptionsFlow(OptionsFlow):
    """Everything but the key; applies from the next conversation on."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show every option with its current value."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                self._schema(), {**_default_options({}), **self.config_entry.options}
            ),
        )

    def _schema(self) -> probatio.Schema:
        apis = [
            SelectOptionDict(value=api.id, label=api.name) for api in llm.async_get_apis(self.hass)
        ]
        return probatio.Schema(
            {
                probatio.Optional(CONF_INSTRUCTIONS, default=DEFAULT_INSTRUCTIONS): _MULTILINE,
                probatio.Required(CONF_VOICE, default=DEFAULT_VOICE): _select(VOICES, CONF_VOICE),
                probatio.Required(CONF_MODEL, default=DEFAULT_MODEL): _select(
                    MODELS, None, custom=True
                ),
                probatio.Optional(CONF_GREETING): str,
                probatio.Required(CONF_IDLE_TIMEOUT, default=DEFAULT_IDLE_TIMEOUT): _number(
                    5, 600, 1, "s"
                ),
                probatio.Required(CONF_MAX_DURATION, default=DEFAULT_MAX_DURATION): _number(
                    1, MAX_MAX_DURATION, 1, "min"
                ),
                probatio.Required(CONF_DUPLEX, default=Duplex.ECHO_CANCELLATION): _select(
                    [choice.value for choice in Duplex], CONF_DUPLEX
                ),
                probatio.Required(CONF_NOISE_SUPPRESSION, default=True): BooleanSelector(),
                probatio.Required(CONF_HIGH_PASS_FILTER, default=True): BooleanSelector(),
                probatio.Required(CONF_NOISE_REDUCTION, default=DEFAULT_NOISE_REDUCTION): _select(
                    NOISE_REDUCTIONS, CONF_NOISE_REDUCTION
                ),
                probatio.Required(CONF_TURN_DETECTION, default="server_vad"): _select(
                    ["server_vad", "semantic_vad"], CONF_TURN_DETECTION
                ),
                probatio.Optional(CONF_VAD_EAGERNESS, default="auto"): _select(
                    ["auto", "low", "medium", "high"], CONF_VAD_EAGERNESS
                ),
                probatio.Optional(
                    CONF_TRANSCRIPTION_MODEL, default=DEFAULT_TRANSCRIPTION_MODEL
                ): str,
                probatio.Optional(CONF_TRANSCRIPTION_LANGUAGE): str,
                probatio.Optional(CONF_LLM_HASS_API): SelectSelector(
                    SelectSelectorConfig(options=apis, multiple=True)
                ),
                probatio.Required(CONF_ALLOW_RISKY_ACTIONS, default=False): BooleanSelector(),
                probatio.Optional(CONF_RISKY_ENTITIES): EntitySelector(
                    EntitySelectorConfig(multiple=True)
                ),
                probatio.Optional(CONF_USER_TOOLS): ObjectSelector(),
                probatio.Optional(CONF_ALLOWED_ACTIONS): TextSelector(
                    TextSelectorConfig(multiple=True)
                ),
                probatio.Required(CONF_TOOL_TIMEOUT, default=DEFAULT_TOOL_TIMEOUT): _number(
                    1, 60, 1, "s"
                ),
                probatio.Required(CONF_MAX_TOOL_CALLS, default=DEFAULT_MAX_TOOL_CALLS): _number(
                    1, 20, 1
                ),
                **{
                    probatio.Required(key, default=default): _number(0, 1000, 0.01, "USD/Mtok")
                    for key, default in DEFAULT_PRICES.items()
                },
            }
        )
