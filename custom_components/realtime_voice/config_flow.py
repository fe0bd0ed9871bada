"""Config flow for Realtime Voice."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_API_KEY
import probatio

from .const import DOMAIN


class RealtimeVoiceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a box: an OpenAI API key and the box's audio devices."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the OpenAI API key."""
        if user_input is not None:
            return self.async_create_entry(title="Realtime Voice", data=user_input)
        return self.async_show_form(
            step_id="user", data_schema=probatio.Schema({probatio.Required(CONF_API_KEY): str})
        )
