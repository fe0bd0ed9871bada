"""What a script the owner wrote can change: the targets its actions name, and its own scripts.

A script's reach is read from its actions: every entity, device, area, floor and label that an
action (or device action) names, expanded to entities with Home Assistant's own target helper,
and the reach of every script it runs, recursively. Conditions and triggers only look, so they
are left out. A target written as a template is known only when the script runs: such a
script's reach is unknown, and the router refuses it. Actions without an entity target (a shell
command, a REST call, an event) are not seen; the owner labels such a script high-risk.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.const import ENTITY_MATCH_ALL, ENTITY_MATCH_NONE
from homeassistant.core import HomeAssistant, split_entity_id, valid_entity_id
from homeassistant.helpers import config_validation as cv, entity_registry as er, template
from homeassistant.helpers.script import Script
from homeassistant.helpers.target import TargetSelection, async_extract_referenced_entity_ids
import probatio

TARGET_KEYS: Final = ("entity_id", "device_id", "area_id", "floor_id", "label_id")
SCRIPT_SERVICES: Final = frozenset({"turn_on", "turn_off", "toggle", "reload"})
"""The script domain's own actions; any other `script.x` action runs the script x."""
_LOOK_ONLY_KEYS: Final = ("condition", "trigger", "triggers", "platform")
_TARGET_FIELDS: Final = probatio.Schema(cv.TARGET_SERVICE_FIELDS, extra=probatio.ALLOW_EXTRA)


class UnknownTargetError(ValueError):
    """A target cannot be read before it runs (a template, `all`, or not an id at all)."""


@dataclass(slots=True)
class ScriptTargets:
    """The ids a script's actions name, and the scripts it runs by name."""

    ids: dict[str, set[str]] = field(default_factory=lambda: {key: set() for key in TARGET_KEYS})
    scripts: set[str] = field(default_factory=set)

    def selection(self) -> TargetSelection:
        """Return the ids as a target, for Home Assistant's expansion."""
        return TargetSelection({key: sorted(values) for key, values in self.ids.items()})


def add_targets(found: ScriptTargets, data: Mapping[str, Any]) -> None:
    """Add the target keys of one action's data (or its `target`) to found.

    The ids are read with Home Assistant's own target validation (lower case, comma lists,
    `none`); a template, `all` or anything it refuses makes the target unknown.
    """
    if any(_templated(data.get(key)) for key in TARGET_KEYS):
        raise UnknownTargetError("a target is a template")
    try:
        valid = _TARGET_FIELDS(dict(data))
    except probatio.Invalid as err:
        raise UnknownTargetError(f"a target is not understood ({err})") from err
    for key in TARGET_KEYS:
        value = valid.get(key)
        if value is None or value == ENTITY_MATCH_NONE:
            continue
        if value == ENTITY_MATCH_ALL:
            raise UnknownTargetError(f"{key} is 'all'")
        found.ids[key].update(value)


def expand(hass: HomeAssistant, targets: ScriptTargets) -> set[str]:
    """Return the entities the ids stand for, the way an entity action resolves them."""
    registry = er.async_get(hass)
    # Device actions name their entity by its registry id.
    targets.ids["entity_id"] = {
        er.async_resolve_entity_id(registry, entity_id) or entity_id
        for entity_id in targets.ids["entity_id"]
    }
    selected = async_extract_referenced_entity_ids(hass, targets.selection())
    return {
        entity_id
        for entity_id in selected.referenced | selected.indirectly_referenced
        if valid_entity_id(entity_id)
    }


def script_entity(hass: HomeAssistant, object_id: str) -> str:
    """Return the entity of the script that the action `script.<object_id>` runs."""
    registry = er.async_get(hass)
    return registry.async_get_entity_id("script", "script", object_id) or f"script.{object_id}"


def script_reach(hass: HomeAssistant, entity_id: str, seen: set[str] | None = None) -> set[str]:
    """Return every entity the script entity can change, itself and its scripts included.

    Raises UnknownTargetError when a target is a template, and LookupError when the script
    cannot be read (not loaded, or unavailable).
    """
    seen = set() if seen is None else seen
    if entity_id in seen:
        return set()
    seen.add(entity_id)
    reach = {entity_id}
    for entity in sorted(sequence_reach(hass, _script_of(hass, entity_id))):
        reach.add(entity)
        if split_entity_id(entity)[0] == "script":
            reach |= script_reach(hass, entity, seen)
    return reach


def sequence_reach(hass: HomeAssistant, script: Script) -> set[str]:
    """Return what the actions of a script name, as entities (scripts it runs included)."""
    found = ScriptTargets()
    for step in _action_steps(script.sequence):
        _add_step(hass, found, step)
    return expand(hass, found) | found.scripts


def _script_of(hass: HomeAssistant, entity_id: str) -> Script:
    """Return the Script behind a script entity."""
    component = hass.data.get("script")
    entity = component.get_entity(entity_id) if component is not None else None
    script = getattr(entity, "script", None)
    if not isinstance(script, Script):
        raise LookupError(f"the script {entity_id} cannot be read")  # noqa: TRY004 - not loaded
    return script


def _action_steps(node: Any) -> Iterator[Mapping[str, Any]]:
    """Yield every action step of a sequence, nested ones too; conditions are skipped."""
    if isinstance(node, list):
        for item in node:
            yield from _action_steps(item)
        return
    if not isinstance(node, Mapping) or any(key in node for key in _LOOK_ONLY_KEYS):
        return
    yield node
    for value in node.values():
        yield from _action_steps(value)


def _add_step(hass: HomeAssistant, found: ScriptTargets, step: Mapping[str, Any]) -> None:
    """Add what one action step names (a service call, a device action, a scene)."""
    action = step.get("action")
    device_action = "device_id" in step and "domain" in step
    if action is None and not device_action and "scene" not in step:
        return  # a delay, a wait, variables, an event, a target or data mapping
    if _templated(action) or _templated(step.get("target")):
        raise UnknownTargetError("the action or its target is a template")
    if isinstance(action, str) and "." in action:
        domain, service = action.split(".", 1)
        if domain == "script" and service not in SCRIPT_SERVICES:
            found.scripts.add(script_entity(hass, service))
    if isinstance(scene := step.get("scene"), str):
        found.ids["entity_id"].add(scene)
    for data in (step, step.get("target"), step.get("data")):
        if isinstance(data, Mapping):
            add_targets(found, data)


def _templated(value: Any) -> bool:
    """Return whether value is (or holds) a template, rendered only when the script runs."""
    if isinstance(value, template.Template):
        return True
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_templated(item) for item in value.values())
    if isinstance(value, list):
        return any(_templated(item) for item in value)
    return False
