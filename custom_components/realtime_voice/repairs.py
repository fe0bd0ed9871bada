"""Fix flows of the repair issues: move a box off a model that retires or was refused."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import probatio

from .const import CONF_MODEL, DOMAIN


class SwitchModelFlow(RepairsFlow):
    """One confirmation, then the box uses the replacement from its next conversation on."""

    def __init__(self, entry_id: str, box_id: str, replacement: str) -> None:
        """Remember which box (of which entry) moves to which model."""
        self._entry_id = entry_id
        self._box_id = box_id
        self._replacement = replacement

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Go to the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Show what changes; on confirmation, switch the model."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        box = entry.subentries.get(self._box_id) if entry is not None else None
        if entry is None or box is None:
            return self.async_abort(reason="box_removed")
        if user_input is not None:
            self.hass.config_entries.async_update_subentry(
                entry, box, data={**box.data, CONF_MODEL: self._replacement}
            )
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_form(
            step_id="confirm",
            data_schema=probatio.Schema({}),
            description_placeholders=issue.translation_placeholders if issue else None,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Return the fix flow of a model issue (the only fixable issues of this integration)."""
    data = data or {}
    return SwitchModelFlow(
        str(data.get("entry_id")), str(data.get("box_id")), str(data.get("replacement"))
    )
