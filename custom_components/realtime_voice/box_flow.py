"""A box of the account (a config subentry): add it, or change anything of it.

Adding asks for the persona and the audio library, then the devices. Reconfiguring shows every
option in sections and the audio library, then the devices again: the microphone, the speaker
and the library can all change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
import probatio

from . import options
from .audio import DEFAULT_DEVICE, is_default
from .audio_link import DeviceLabels, async_list_devices
from .const import (
    CONF_AUDIO_BACKEND,
    CONF_INPUT_DEVICE,
    CONF_INSTRUCTIONS,
    CONF_MODEL,
    CONF_OUTPUT_DEVICE,
    CONF_PRICES,
    CONF_VOICE,
    DOMAIN,
    SUBENTRY_BOX,
    AudioBackendChoice,
)
from .pricing import parse_price_overrides
from .realtime.http import ModelInfo

BOX_TITLE = "Realtime Voice"
_BACKENDS = SelectSelector(
    SelectSelectorConfig(
        options=[choice.value for choice in AudioBackendChoice],
        mode=SelectSelectorMode.DROPDOWN,
        translation_key=CONF_AUDIO_BACKEND,
    )
)


def persona_schema(hass: HomeAssistant, listed: tuple[ModelInfo, ...]) -> probatio.Schema:
    """Return a new box's first step: instructions, voice, the account's models, library."""
    return probatio.Schema(
        {
            **options.fields(
                options.FormContext(hass, listed), (CONF_INSTRUCTIONS, CONF_VOICE, CONF_MODEL)
            ),
            probatio.Required(CONF_AUDIO_BACKEND, default=AudioBackendChoice.AUTO): _BACKENDS,
        }
    )


async def device_schema(
    hass: HomeAssistant, backend: str | None, current: Mapping[str, Any]
) -> tuple[probatio.Schema, DeviceLabels]:
    """List the library's devices by the names people know them by, "default" first."""
    inputs, outputs = await async_list_devices(
        hass, AudioBackendChoice(backend or AudioBackendChoice.AUTO)
    )

    def choices(devices: DeviceLabels) -> SelectSelector:
        listed = [SelectOptionDict(value=DEFAULT_DEVICE, label=DEFAULT_DEVICE)]
        listed += [
            SelectOptionDict(value=name, label=label)
            for name, label in devices.items()
            if name != DEFAULT_DEVICE
        ]
        # The translation key names "default"; the devices show their own labels.
        return SelectSelector(
            SelectSelectorConfig(options=listed, custom_value=True, translation_key="audio_device")
        )

    schema = probatio.Schema(
        {
            probatio.Required(key, default=current.get(key) or DEFAULT_DEVICE): choices(
                inputs if key == CONF_INPUT_DEVICE else outputs
            )
            for key in (CONF_INPUT_DEVICE, CONF_OUTPUT_DEVICE)
        }
    )
    return schema, {**inputs, **outputs}


def devices_id(data: Mapping[str, Any]) -> str:
    """Identify a box by its devices: two boxes must not share a microphone and speaker."""
    devices = (data.get(CONF_INPUT_DEVICE), data.get(CONF_OUTPUT_DEVICE))
    return "|".join(device or DEFAULT_DEVICE for device in devices)


def box_title(data: Mapping[str, Any], labels: DeviceLabels) -> str:
    """Name the box after its devices, so that boxes tell apart (none: both are defaults)."""
    chosen = (data.get(CONF_INPUT_DEVICE), data.get(CONF_OUTPUT_DEVICE))
    names = [labels.get(name, name) for name in chosen if name and not is_default(name)]
    unique = dict.fromkeys(names)  # a headset's one name, once
    return f"{BOX_TITLE} ({' / '.join(unique)})" if unique else BOX_TITLE


def devices_in_use(hass: HomeAssistant, devices: str, *, besides: str | None = None) -> bool:
    """Return whether another box, of any account, has these devices."""
    return any(
        box.unique_id == devices and box.subentry_id != besides
        for entry in hass.config_entries.async_entries(DOMAIN)
        for box in entry.subentries.values()
        if box.subentry_type == SUBENTRY_BOX
    )


def listed_models(entry: ConfigEntry) -> tuple[ModelInfo, ...]:
    """Return the models the account listed at setup or at the last daily check."""
    return entry.runtime_data.models if entry.state is ConfigEntryState.LOADED else ()


class BoxFlow(ConfigSubentryFlow):
    """Add a box to the account, or change one of its boxes."""

    def __init__(self) -> None:
        """Collect the steps' answers."""
        self._data: dict[str, Any] = {}
        self._current: Mapping[str, Any] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Ask how the new box's assistant behaves and sounds, and which audio library to use."""
        if user_input is not None:
            self._data = {**options.defaults(), **user_input}
            return await self.async_step_audio()
        schema = self.add_suggested_values_to_schema(
            persona_schema(self.hass, listed_models(self._get_entry())), options.defaults()
        )
        return self.async_show_form(step_id="user", data_schema=schema)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Show every option of the box and its audio library; its devices come next."""
        box = self._get_reconfigure_subentry()
        self._current = box.data
        errors: dict[str, str] = {}
        problem = ""
        if user_input is not None:
            chosen = options.from_form(user_input)
            try:
                parse_price_overrides(chosen.get(CONF_PRICES))
            except ValueError as err:
                errors["base"], problem = "invalid_prices", str(err)
            else:
                self._data = {**chosen, CONF_AUDIO_BACKEND: user_input[CONF_AUDIO_BACKEND]}
                return await self.async_step_audio()
        schema = options.form_schema(
            options.FormContext(self.hass, listed_models(self._get_entry()))
        )
        schema = schema.extend({probatio.Required(CONF_AUDIO_BACKEND): _BACKENDS})
        suggested = {
            **options.by_section(box.data),
            CONF_AUDIO_BACKEND: box.data.get(CONF_AUDIO_BACKEND, AudioBackendChoice.AUTO),
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or suggested),
            errors=errors,
            description_placeholders={"problem": problem},
        )

    async def async_step_audio(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the microphone and the speaker (today's are preselected when changing)."""
        schema, labels = await device_schema(
            self.hass, self._data.get(CONF_AUDIO_BACKEND), self._current
        )
        if user_input is None:
            return self.async_show_form(step_id="audio", data_schema=schema)
        data = {**self._data, **user_input}
        devices = devices_id(data)
        if self.source != SOURCE_RECONFIGURE:
            if devices_in_use(self.hass, devices):
                return self.async_abort(reason="devices_in_use")
            return self.async_create_entry(
                title=box_title(data, labels), data=data, unique_id=devices
            )
        box = self._get_reconfigure_subentry()
        if devices_in_use(self.hass, devices, besides=box.subentry_id):
            return self.async_abort(reason="devices_in_use")
        # A title made from the old devices follows them; one the user chose stays.
        title = box_title(data, labels) if box.title == box_title(box.data, labels) else box.title
        return self.async_update_and_abort(
            self._get_entry(), box, data=data, title=title, unique_id=devices
        )
