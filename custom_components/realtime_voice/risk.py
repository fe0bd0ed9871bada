"""Which entities are high-risk: the built-in kinds, the owner's list, and the owner's label.

Locks, alarm panels and garage doors, doors and gates (covers by device class) are high-risk
by kind. The owner marks anything else, such as a switch or script that opens the gate or a
cover without a device class, with the Home Assistant label `voice_high_risk` (created with the
name "Voice high risk" when a box is set up) on the entity, its device or its area, or in the
options' list of high-risk entities.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from homeassistant.components.conversation import DOMAIN as CONVERSATION_DOMAIN
from homeassistant.components.homeassistant.exposed_entities import async_should_expose
from homeassistant.core import HomeAssistant, callback, split_entity_id
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    label_registry as lr,
)

RISKY_DOMAINS: Final = frozenset({"lock", "alarm_control_panel"})
RISKY_COVER_CLASSES: Final = frozenset({"garage", "door", "gate"})
HIGH_RISK_LABEL: Final = "voice_high_risk"
HIGH_RISK_LABEL_NAME: Final = "Voice high risk"


@callback
def async_ensure_high_risk_label(hass: HomeAssistant) -> None:
    """Create the owner's high-risk label, so it can be picked in the UI, unless it exists."""
    labels = lr.async_get(hass)
    if labels.async_get_label(HIGH_RISK_LABEL) or labels.async_get_label_by_name(
        HIGH_RISK_LABEL_NAME
    ):
        return
    labels.async_create(
        HIGH_RISK_LABEL_NAME,
        icon="mdi:shield-alert",
        description="Realtime Voice asks before acting on these (or refuses, by default).",
    )


@dataclass(frozen=True, slots=True)
class RiskRules:
    """The owner's rules for one call: what is high-risk and what the assistant may reach."""

    hass: HomeAssistant
    risky_entities: frozenset[str] = frozenset()

    def high_risk(self, entity_ids: Iterable[str]) -> list[str]:
        """Return the high-risk ones among entity_ids, sorted."""
        return sorted(entity_id for entity_id in entity_ids if self.is_high_risk(entity_id))

    def unexposed(self, entity_ids: Iterable[str]) -> list[str]:
        """Return the ones that do not exist or are not exposed to Assist, sorted."""
        return sorted(
            entity_id
            for entity_id in entity_ids
            if self.hass.states.get(entity_id) is None
            or not async_should_expose(self.hass, CONVERSATION_DOMAIN, entity_id)
        )

    def is_high_risk(self, entity_id: str) -> bool:
        """Return whether acting on the entity needs the owner's permission."""
        domain = split_entity_id(entity_id)[0]
        if entity_id in self.risky_entities or domain in RISKY_DOMAINS:
            return True
        state = self.hass.states.get(entity_id)
        if (
            domain == "cover"
            and state is not None
            and state.attributes.get("device_class") in RISKY_COVER_CLASSES
        ):
            return True
        return self._labelled(entity_id)

    def _labelled(self, entity_id: str) -> bool:
        """Return whether the entity, its device or its area carries the high-risk label."""
        entry = er.async_get(self.hass).async_get(entity_id)
        if entry is None:
            return False
        if HIGH_RISK_LABEL in entry.labels:
            return True
        device = dr.async_get(self.hass).async_get(entry.device_id) if entry.device_id else None
        if device is not None and HIGH_RISK_LABEL in device.labels:
            return True
        area_id = entry.area_id or (
            dr.async_get_effective_area_id(self.hass, device) if device is not None else None
        )
        area = ar.async_get(self.hass).async_get_area(area_id) if area_id else None
        return area is not None and HIGH_RISK_LABEL in area.labels

    def names(self, entity_ids: Iterable[str]) -> list[str]:
        """Return the entities' friendly names, for a sentence the model can say."""
        return [
            state.name if (state := self.hass.states.get(entity_id)) else entity_id
            for entity_id in entity_ids
        ]
