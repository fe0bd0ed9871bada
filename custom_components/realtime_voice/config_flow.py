"""Config flow: the API key (checked), then persona and audio; options, reauth, reconfigure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntryState,
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

from .audio_link import DeviceLabels, async_list_devices
from .const import (
    CONF_ALLOW_RISKY_ACTIONS,
    CONF_ALLOWED_ACTIONS,
    CONF_AUDIO_BACKEND,
    CONF_BASE_URL,
    CONF_BUDGET_CONVERSATION,
    CONF_BUDGET_DAILY,
    CONF_BUDGET_MONTHLY,
    CONF_CONFIRM_RISKY_ACTIONS,
    CONF_CONTEXT_LIMIT,
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
    CONF_PRICES,
    CONF_REASONING_EFFORT,
    CONF_RETENTION_RATIO,
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
    DEFAULT_RETENTION_RATIO,
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
from .models import RealtimeVoiceConfigEntry
from .models_catalog import CURRENT_MODELS, realtime_models
from .pricing import parse_price_overrides
from .realtime.errors import AuthenticationError, ConnectError, RealtimeError
from .realtime.http import ModelInfo, check_api_key
from .realtime.session_config import REASONING_EFFORTS, VOICES

if TYPE_CHECKING:
    from .models import RealtimeVoiceConfigEntry

ADVANCED = "advanced"
TITLE = "Realtime Voice"
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


def _models(listed: Iterable[ModelInfo]) -> SelectSelector:
    """Offer the account's Realtime models, current first; any other id may be typed."""
    ids = [info.id for info in realtime_models(listed)] or list(CURRENT_MODELS)
    return _select(ids, None, custom=True)


def persona_schema(listed: Iterable[ModelInfo]) -> probatio.Schema:
    """Return the persona step: instructions, voice, the account's models, audio library."""
    return probatio.Schema(
        {
            probatio.Required(CONF_INSTRUCTIONS, default=DEFAULT_INSTRUCTIONS): _MULTILINE,
            probatio.Required(CONF_VOICE, default=DEFAULT_VOICE): _select(VOICES, CONF_VOICE),
            probatio.Required(CONF_MODEL, default=DEFAULT_MODEL): _models(listed),
            probatio.Required(CONF_AUDIO_BACKEND, default=AudioBackendChoice.AUTO): _select(
                [choice.value for choice in AudioBackendChoice], CONF_AUDIO_BACKEND
            ),
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
        return self.async_show_form(step_id="persona", data_schema=persona_schema(self._listed))

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
                options=_default_options(self._options),
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
                ): _select([choice.value for choice in AudioBackendChoice], CONF_AUDIO_BACKEND),
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
        CONF_CONFIRM_RISKY_ACTIONS: True,
        **persona,
    }


class RealtimeVoiceOptionsFlow(OptionsFlow):
    """Everything but the key; applies from the next conversation on."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show every option with its current value; check the price overrides."""
        errors: dict[str, str] = {}
        problem = ""
        if user_input is not None:
            try:
                parse_price_overrides(user_input.get(CONF_PRICES))
            except ValueError as err:
                errors[CONF_PRICES], problem = "invalid_prices", str(err)
            else:
                # A field emptied in the form arrives missing; for the transcription model that
                # means off (stored as ""), not the default again.
                return self.async_create_entry(data={CONF_TRANSCRIPTION_MODEL: "", **user_input})
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                self._schema(), user_input or {**_default_options({}), **self.config_entry.options}
            ),
            errors=errors,
            description_placeholders={"problem": problem},
        )

    def _listed(self) -> tuple[ModelInfo, ...]:
        """Return the models the account listed when the box was set up or last checked."""
        entry: RealtimeVoiceConfigEntry = self.config_entry
        return entry.runtime_data.models if entry.state is ConfigEntryState.LOADED else ()

    def _schema(self) -> probatio.Schema:
        apis = [
            SelectOptionDict(value=api.id, label=api.name) for api in llm.async_get_apis(self.hass)
        ]
        return probatio.Schema(
            {
                probatio.Optional(CONF_INSTRUCTIONS, default=DEFAULT_INSTRUCTIONS): _MULTILINE,
                probatio.Required(CONF_VOICE, default=DEFAULT_VOICE): _select(VOICES, CONF_VOICE),
                probatio.Required(CONF_MODEL, default=DEFAULT_MODEL): _models(self._listed()),
                probatio.Optional(CONF_REASONING_EFFORT, default="auto"): _select(
                    ["auto", *REASONING_EFFORTS], CONF_REASONING_EFFORT
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
                probatio.Optional(CONF_TRANSCRIPTION_MODEL): str,
                probatio.Optional(CONF_TRANSCRIPTION_LANGUAGE): str,
                probatio.Optional(CONF_LLM_HASS_API): SelectSelector(
                    SelectSelectorConfig(options=apis, multiple=True)
                ),
                probatio.Required(CONF_ALLOW_RISKY_ACTIONS, default=False): BooleanSelector(),
                probatio.Required(CONF_CONFIRM_RISKY_ACTIONS, default=True): BooleanSelector(),
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
                probatio.Optional(CONF_CONTEXT_LIMIT, default=0): _number(
                    0, 120_000, 500, "tokens"
                ),
                probatio.Optional(CONF_RETENTION_RATIO, default=DEFAULT_RETENTION_RATIO): _number(
                    0.1, 1, 0.05
                ),
                **{
                    probatio.Optional(key): _number(0, 10_000, 0.01, "USD")
                    for key in (CONF_BUDGET_DAILY, CONF_BUDGET_MONTHLY, CONF_BUDGET_CONVERSATION)
                },
                probatio.Optional(CONF_PRICES): ObjectSelector(),
            }
        )
