"""What a tool call would change, resolved before it runs the way Home Assistant will resolve it.

- Intents of Home Assistant's own service handlers: the handler's slot rules (blank slots
  dropped, `name: all` means every entity, the handler's required domains, features and states,
  the box's area as the preferred area) and Home Assistant's own `async_match_targets`.
- Home Assistant's intents with a handler of their own: every exposed entity of the domains the
  handler acts on that the name, area and floor could match (never less than the handler).
- Timers and broadcasts change no entity.
- An exposed script: the script entity itself, and its reach (script_reach).
- An intent_script: its action's reach.
- A user tool: every target key of its data, expanded with Home Assistant's target helper, and
  the reach of the script it runs.
- Read-only tools change nothing; any other tool, and a tool of an API that is not Assist, is
  unknown: the router refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from homeassistant.core import HomeAssistant, split_entity_id
from homeassistant.helpers import intent, llm
import probatio

from .script_reach import (
    SCRIPT_SERVICES,
    ScriptTargets,
    UnknownTargetError,
    add_targets,
    expand,
    script_entity,
    script_reach,
    sequence_reach,
)


@dataclass(frozen=True, slots=True)
class Resolution:
    """What one call would change."""

    acts_on: frozenset[str] = frozenset()
    """Entities the call changes directly: each must be exposed to Assist."""
    reaches: frozenset[str] = frozenset()
    """Entities a script the owner wrote changes on the call's behalf: only risk applies."""
    unknown: str | None = None
    """Why what the call changes cannot be known before it runs; such a call is refused."""

    @property
    def entities(self) -> frozenset[str]:
        """Return every entity the call may change."""
        return self.acts_on | self.reaches


NOTHING: Final = Resolution()

_NO_ENTITY_HANDLERS: Final = frozenset(
    f"homeassistant.components.{name}"
    for name in (
        "intent.timers.StartTimerIntentHandler",
        "intent.timers.CancelTimerIntentHandler",
        "intent.timers.CancelAllTimersIntentHandler",
        "intent.timers.IncreaseTimerIntentHandler",
        "intent.timers.DecreaseTimerIntentHandler",
        "intent.timers.PauseTimerIntentHandler",
        "intent.timers.UnpauseTimerIntentHandler",
        "intent.timers.TimerStatusIntentHandler",
        "assist_satellite.intent.BroadcastIntentHandler",
    )
)
"""Handlers that change no entity: timers live in the intent component, broadcasts speak."""

_BASE_MATCHING_HANDLERS: Final = frozenset(
    {"homeassistant.components.media_player.intent.MediaPlayerMuteUnmuteHandler"}
)
"""Service handlers whose own async_handle only adds a slot, then matches as the base does."""

_SCOPED_HANDLERS: Final[dict[str, tuple[frozenset[str], tuple[str, str, str]]]] = {
    f"homeassistant.components.{name}": (frozenset({domain}), slots)
    for name, domain, slots in (
        ("climate.intent.SetTemperatureIntent", "climate", ("name", "area", "floor")),
        ("climate.intent.SetFanModeIntent", "climate", ("name", "area", "floor")),
        ("humidifier.intent.HumidityHandler", "humidifier", ("name", "", "")),
        ("humidifier.intent.SetModeHandler", "humidifier", ("name", "", "")),
        (
            "media_player.intent.MediaSetVolumeRelativeHandler",
            "media_player",
            ("name", "area", "floor"),
        ),
        ("todo.intent.ListAddItemIntentHandler", "todo", ("name", "", "")),
        ("todo.intent.ListCompleteItemIntentHandler", "todo", ("name", "", "")),
        ("todo.intent.ListRemoveItemIntentHandler", "todo", ("name", "", "")),
        # The area of a clean-area intent is where to clean, not which vacuum.
        ("vacuum.intent.CleanAreaIntentHandler", "vacuum", ("name", "", "")),
    )
}
"""Handlers with matching of their own: the domain they act on, and the slots (name, area,
floor) they match with; an empty string is a slot the handler does not match with."""

_SCOPED_TOOLS: Final[dict[str, tuple[frozenset[str], tuple[str, str, str]]]] = {
    "homeassistant.components.media_player.llm.MediaPlayTool": (
        frozenset({"media_player"}),
        ("player_name", "player_area", "player_floor"),
    ),
}
_SCRIPT_TOOL: Final = "homeassistant.components.script.llm.ScriptTool"
_SCRIPT_INTENT_HANDLER: Final = "homeassistant.components.intent_script.ScriptIntentHandler"


def resolve_tool_call(
    hass: HomeAssistant, tool: llm.Tool, arguments: Mapping[str, Any], context: llm.LLMContext
) -> Resolution:
    """Return what a call of an LLM API tool (validated arguments) would change."""
    while isinstance(tool, llm.NamespacedTool):
        tool = tool.tool
    if tool.annotations.read_only:
        return NOTHING
    kind = _qualified_name(tool)
    if isinstance(tool, llm.IntentTool):
        return _resolve_intent(hass, tool, arguments, context)
    if kind == _SCRIPT_TOOL:
        return _resolve_script_tool(hass, tool.name)
    if kind in _SCOPED_TOOLS:
        domains, slots = _SCOPED_TOOLS[kind]
        return _scoped_match(hass, domains, slots, arguments, context.assistant)
    return Resolution(unknown=f"the tool {tool.name} does not say what it would change")


def resolve_action_call(hass: HomeAssistant, action: str, data: Mapping[str, Any]) -> Resolution:
    """Return what an action called with data (a user tool) would change."""
    found = ScriptTargets()
    try:
        for part in (data, data.get("target")):
            if isinstance(part, Mapping):
                add_targets(found, part)
        acts_on = expand(hass, found)
        domain, service = action.split(".", 1)
        if domain not in {"homeassistant", "script"}:
            # An entity action reaches only its own domain's entities of an area or device.
            acts_on = {e for e in acts_on if split_entity_id(e)[0] == domain} | found.ids[
                "entity_id"
            ]
        reaches = _scripts_reach(hass, acts_on)
        if domain == "script" and service not in SCRIPT_SERVICES:
            reaches |= script_reach(hass, script_entity(hass, service))
    except (UnknownTargetError, LookupError) as err:
        return Resolution(unknown=f"what {action} would change cannot be known: {err}")
    return Resolution(acts_on=frozenset(acts_on), reaches=frozenset(reaches))


def _resolve_intent(
    hass: HomeAssistant,
    tool: llm.IntentTool,
    arguments: Mapping[str, Any],
    context: llm.LLMContext,
) -> Resolution:
    """Resolve an intent call with its handler's own rules."""
    handler = next((h for h in intent.async_get(hass) if h.intent_type == tool.intent_type), None)
    if handler is None:
        return NOTHING  # Home Assistant will answer that the intent is unknown
    slots = _intent_slots(hass, tool, arguments, context)
    kind = _qualified_name(handler)
    if kind in _NO_ENTITY_HANDLERS:
        return _no_entity(slots)
    if _matches_as_the_base_does(handler, kind):
        return _service_intent_match(hass, handler, slots, context.assistant)
    if kind in _SCOPED_HANDLERS:
        domains, slot_names = _SCOPED_HANDLERS[kind]
        return _scoped_match(hass, domains, slot_names, arguments, context.assistant)
    if kind == _SCRIPT_INTENT_HANDLER:
        return _resolve_intent_script(hass, handler)
    return Resolution(unknown=f"the intent {tool.intent_type} is not known to this assistant")


def _no_entity(slots: Mapping[str, Any]) -> Resolution:
    """Timers and broadcasts change no entity, unless a timer carries a command for later."""
    if "conversation_command" in slots:
        return Resolution(unknown="a timer that runs a command later is not checked")
    return NOTHING


def _matches_as_the_base_does(
    handler: intent.IntentHandler, kind: str
) -> TypeGuard[intent.DynamicServiceIntentHandler]:
    """Return whether a Home Assistant service handler matches its targets as the base does.

    Only Home Assistant's own: a custom integration's subclass may act on other entities.
    """
    return (
        isinstance(handler, intent.DynamicServiceIntentHandler)
        and kind.startswith("homeassistant.")
        and (
            type(handler).async_handle is intent.DynamicServiceIntentHandler.async_handle
            or kind in _BASE_MATCHING_HANDLERS
        )
    )


def _intent_slots(
    hass: HomeAssistant,
    tool: llm.IntentTool,
    arguments: Mapping[str, Any],
    context: llm.LLMContext,
) -> dict[str, Any]:
    """Build the slots exactly as IntentTool.async_call does."""
    slots: dict[str, Any] = {
        key: {"value": value}
        for key, value in arguments.items()
        if not intent.is_blank_slot_value(value)
    }
    if tool.extra_slots:
        preferences = llm.async_get_match_preferences(hass, context)
        for name, value in (
            ("preferred_area_id", preferences.area_id),
            ("preferred_floor_id", preferences.floor_id),
        ):
            if value and name in tool.extra_slots:
                slots[name] = {"value": value}
    return slots


def _service_intent_match(
    hass: HomeAssistant,
    handler: intent.DynamicServiceIntentHandler,
    slots: dict[str, Any],
    assistant: str,
) -> Resolution:
    """Match as DynamicServiceIntentHandler.async_handle does, step for step."""
    try:
        slots = handler.async_validate_slots(slots)
    except probatio.Invalid:
        return NOTHING  # the handler refuses the same slots before acting
    name = slots.get("name", {}).get("value")
    domains = handler.required_domains
    if "domain" in slots:
        domains = set(slots["domain"]["value"])
    device_classes = set(slots["device_class"]["value"]) if "device_class" in slots else None
    constraints = intent.MatchTargetsConstraints(
        name=None if name == "all" else name,
        area_name=slots.get("area", {}).get("value"),
        floor_name=slots.get("floor", {}).get("value"),
        domains=domains,
        device_classes=device_classes,
        assistant=assistant,
        features=handler.required_features,
        states=handler.required_states,
    )
    if not constraints.has_constraints:
        return NOTHING  # the handler refuses to target every device in the home
    preferences = intent.MatchTargetsPreferences(
        area_id=slots.get("preferred_area_id", {}).get("value"),
        floor_id=slots.get("preferred_floor_id", {}).get("value"),
    )
    result = intent.async_match_targets(hass, constraints, preferences)
    if not result.is_match:
        return NOTHING
    return Resolution(acts_on=frozenset(state.entity_id for state in result.states))


def _scoped_match(
    hass: HomeAssistant,
    domains: frozenset[str],
    slot_names: tuple[str, str, str],
    arguments: Mapping[str, Any],
    assistant: str,
) -> Resolution:
    """Match every exposed entity of the domains that the name, area and floor could match.

    The handler matches with these and more (features, a single target, the preferred area),
    so what it acts on is among these.
    """
    name, area, floor = (_text(arguments, slot) for slot in slot_names)
    constraints = intent.MatchTargetsConstraints(
        name=None if name == "all" else name,
        area_name=area,
        floor_name=floor,
        domains=domains,
        assistant=assistant,
        allow_duplicate_names=True,
    )
    result = intent.async_match_targets(hass, constraints)
    if not result.is_match:
        return NOTHING
    return Resolution(acts_on=frozenset(state.entity_id for state in result.states))


def _resolve_script_tool(hass: HomeAssistant, name: str) -> Resolution:
    """Resolve an exposed script: itself, and what it reaches."""
    entity_id = f"script.{name.removeprefix('script__')}"
    try:
        reaches = script_reach(hass, entity_id)
    except (UnknownTargetError, LookupError) as err:
        return Resolution(unknown=f"what the script {entity_id} would change is unknown: {err}")
    return Resolution(acts_on=frozenset({entity_id}), reaches=frozenset(reaches - {entity_id}))


def _resolve_intent_script(hass: HomeAssistant, handler: intent.IntentHandler) -> Resolution:
    """Resolve an intent_script: what its action reaches."""
    action = getattr(handler, "config", {}).get("action")
    if action is None:
        return NOTHING  # it only answers
    try:
        reaches = sequence_reach(hass, action)
        reaches |= _scripts_reach(hass, reaches)
    except (UnknownTargetError, LookupError) as err:
        return Resolution(unknown=f"what {handler.intent_type} would change is unknown: {err}")
    return Resolution(reaches=frozenset(reaches))


def _scripts_reach(hass: HomeAssistant, entities: set[str]) -> set[str]:
    """Return the reach of the scripts among entities (a script turned on runs)."""
    reach: set[str] = set()
    for entity_id in sorted(entities):
        if split_entity_id(entity_id)[0] == "script":
            reach |= script_reach(hass, entity_id)
    return reach


def _text(arguments: Mapping[str, Any], slot: str) -> str | None:
    """Return a slot's text, None when the slot is not used, blank or not text."""
    value = arguments.get(slot) if slot else None
    return value if isinstance(value, str) and value.strip() else None


def _qualified_name(value: object) -> str:
    """Return the module and name of value's class, to know it without importing it."""
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"
