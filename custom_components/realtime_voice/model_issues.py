"""Before a model dies: a repair issue when the box's model retires, vanishes or is refused.

Checked at setup and once a day against the account's model list, and at once when OpenAI
refuses the model. The issue's fix flow (repairs.py) moves the box to the replacement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import async_track_time_interval

from .const import CONF_BASE_URL, DEFAULT_BASE_URL, DOMAIN, LOGGER, Box
from .models_catalog import is_realtime_model, replacement_for
from .realtime.errors import RealtimeError
from .realtime.http import ModelInfo, check_api_key

if TYPE_CHECKING:
    from datetime import datetime

    from .models import RealtimeVoiceConfigEntry

CHECK_INTERVAL: Final = timedelta(days=1)


class ModelProblem(StrEnum):
    """What is wrong with the box's model; each is the translation key of its issue."""

    RETIRING = "model_retiring"
    """OpenAI announced the day it shuts down."""
    UNLISTED = "model_unlisted"
    """The account no longer lists it."""
    REFUSED = "model_refused"
    """OpenAI refused it when a conversation started."""


def issue_id(box_id: str) -> str:
    """Return the id of a box's model issue (one per box, whatever the problem)."""
    return f"model_{box_id}"


def find_problem(model: str, listed: Iterable[ModelInfo]) -> ModelInfo | ModelProblem | None:
    """Return the listed model if it retires, UNLISTED if it is gone, or None if all is well.

    An endpoint that lists no Realtime model at all (a proxy, a deployment name) says nothing.
    """
    models = list(listed)
    info = next((info for info in models if info.id == model), None)
    if info is None:
        return ModelProblem.UNLISTED if any(is_realtime_model(m.id) for m in models) else None
    return info if info.shutdown_date is not None else None


@callback
def async_check_model(
    hass: HomeAssistant, entry_id: str, box: Box, model: str, listed: Iterable[ModelInfo]
) -> None:
    """Raise the issue if the model retires or is gone; remove a listing issue once it is fine."""
    models = tuple(listed)
    match find_problem(model, models):
        case ModelInfo(shutdown_date=shutdown):
            async_raise(
                hass,
                entry_id,
                box,
                model,
                ModelProblem.RETIRING,
                listed=models,
                shutdown=str(shutdown),
            )
        case ModelProblem.UNLISTED:
            async_raise(hass, entry_id, box, model, ModelProblem.UNLISTED, listed=models)
        case _:
            async_clear_listing(hass, box.id, model)


@callback
def async_raise(
    hass: HomeAssistant,
    entry_id: str,
    box: Box,
    model: str,
    problem: ModelProblem,
    *,
    listed: Iterable[ModelInfo] = (),
    shutdown: str = "",
    message: str = "",
) -> None:
    """Raise (or update) the box's model issue; its fix switches to the replacement."""
    replacement = replacement_for(model, listed)
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(box.id),
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR
        if problem is ModelProblem.REFUSED
        else ir.IssueSeverity.WARNING,
        translation_key=problem,
        translation_placeholders={
            "box": box.title,
            "model": model,
            "replacement": replacement,
            "shutdown_date": shutdown,
            "message": message,
        },
        data={"entry_id": entry_id, "box_id": box.id, "replacement": replacement},
    )


@callback
def async_clear_listing(hass: HomeAssistant, box_id: str, model: str) -> None:
    """Remove the issue: the account lists the model; a refusal of this very model stays."""
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(box_id))
    if issue is None:
        return
    refused = issue.translation_key == ModelProblem.REFUSED
    if refused and (issue.translation_placeholders or {}).get("model") == model:
        return  # OpenAI refused it although listed (no access): until it answers
    ir.async_delete_issue(hass, DOMAIN, issue_id(box_id))


@callback
def async_clear_refusal(hass: HomeAssistant, box_id: str) -> None:
    """Remove a refusal issue: OpenAI answered with the model."""
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(box_id))
    if issue is not None and issue.translation_key == ModelProblem.REFUSED:
        ir.async_delete_issue(hass, DOMAIN, issue_id(box_id))


@callback
def async_check_models(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> None:
    """Check every box's model against the account's list."""
    for session in entry.runtime_data.boxes.values():
        async_check_model(
            hass, entry.entry_id, session.box, session.settings.model, entry.runtime_data.models
        )


@callback
def async_track_model(hass: HomeAssistant, entry: RealtimeVoiceConfigEntry) -> None:
    """Check the boxes' models against the account's list once a day, while it is loaded."""

    async def _check(_now: datetime) -> None:
        try:
            listed = await check_api_key(
                async_get_clientsession(hass),
                entry.data.get(CONF_BASE_URL) or DEFAULT_BASE_URL,
                entry.data[CONF_API_KEY],
            )
        except RealtimeError as err:
            LOGGER.debug("The daily model check could not list the models: %s", err)
            return
        entry.runtime_data.models = listed
        async_check_models(hass, entry)

    entry.async_on_unload(
        async_track_time_interval(hass, _check, CHECK_INTERVAL, name=f"{DOMAIN} model check")
    )
