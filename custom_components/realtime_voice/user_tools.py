"""User tools: a script or action the owner lets the model call, described in the options.

An entry of the `user_tools` option looks like this (YAML in the options form):

    - name: water_plants
      description: Water the balcony plants for a number of minutes.
      action: script.water_plants
      parameters:
        type: object
        properties:
          minutes: {type: integer, description: How long}
        required: [minutes]
      data: {zone: balcony}

The model may call it only while `action` is also on the `allowed_actions` list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import re
from typing import Any, Final

from homeassistant.core import Context, HomeAssistant, SupportsResponse
from homeassistant.exceptions import HomeAssistantError

from .const import LOGGER
from .realtime.session_config import FunctionSpec, JsonObject

_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ACTION: Final = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")


@dataclass(frozen=True, slots=True)
class UserTool:
    """One action the owner described for the model."""

    name: str
    description: str
    action: str
    """`domain.service`, e.g. `script.water_plants`."""
    parameters: JsonObject = field(default_factory=lambda: {"type": "object", "properties": {}})
    """A JSON schema object; the model fills it in."""
    data: JsonObject = field(default_factory=dict)
    """Fixed action data, merged under the model's arguments."""

    def spec(self) -> FunctionSpec:
        """Describe the tool as a Realtime function."""
        return FunctionSpec(self.name, self.description[:1024], self.parameters)

    def check_arguments(self, arguments: Mapping[str, Any]) -> None:
        """Refuse arguments the schema does not name, and missing required ones."""
        known = set(self.parameters.get("properties", {}))
        if unknown := set(arguments) - known:
            raise HomeAssistantError(f"Unknown arguments: {', '.join(sorted(unknown))}")
        if missing := set(self.parameters.get("required", [])) - set(arguments):
            raise HomeAssistantError(f"Missing arguments: {', '.join(sorted(missing))}")

    def check_action(self, hass: HomeAssistant) -> None:
        """Refuse an action that does not exist (deleted since the tool was described)."""
        if not hass.services.has_service(*self.action.split(".", 1)):
            raise HomeAssistantError(f"The action {self.action} does not exist")

    async def async_run(
        self, hass: HomeAssistant, arguments: Mapping[str, Any], context: Context
    ) -> JsonObject:
        """Call the action and return what it answered."""
        self.check_action(hass)
        domain, service = self.action.split(".", 1)
        wants_response = hass.services.supports_response(domain, service)
        response = await hass.services.async_call(
            domain,
            service,
            {**self.data, **arguments},
            blocking=True,
            context=context,
            return_response=wants_response is not SupportsResponse.NONE,
        )
        return {"success": True, "response": response} if response else {"success": True}


def parse_user_tools(entries: Iterable[Any]) -> tuple[UserTool, ...]:
    """Read the option; an entry that is not valid is left out with a warning."""
    tools: list[UserTool] = []
    for entry in entries:
        try:
            tools.append(_parse(entry))
        except (TypeError, ValueError, KeyError) as err:
            LOGGER.warning("Ignoring the user tool %r: %s", entry, err)
    return tuple(tools)


def _parse(entry: Mapping[str, Any]) -> UserTool:
    name, action = str(entry["name"]), str(entry["action"])
    if not _NAME.match(name):
        raise ValueError("the name may only hold letters, digits, - and _ (64 at most)")
    if not _ACTION.match(action):
        raise ValueError("the action must look like domain.action")
    parameters = entry.get("parameters") or {"type": "object", "properties": {}}
    data = entry.get("data") or {}
    if not isinstance(parameters, dict) or not isinstance(data, dict):
        raise TypeError("parameters and data must be mappings")
    return UserTool(name, str(entry.get("description") or name), action, parameters, data)
