"""Library errors become the translated errors and repair issues a user can act on."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, Concatenate, Final, Protocol

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir

from .audio import AudioDeviceError, AudioLibraryMissingError
from .budget import LimitReached
from .const import DOMAIN, Box
from .realtime.errors import (
    AuthenticationError,
    ConnectError,
    ModelUnavailableError,
    NotConnectedError,
    QuotaError,
    RateLimitError,
    RealtimeError,
)

ISSUE_QUOTA: Final = "quota_exceeded"
ISSUE_AUDIO_LIBRARY: Final = "audio_library_missing"
ISSUE_AUDIO_DEVICE: Final = "audio_device_unavailable"
ISSUE_ECHO_CANCELLATION: Final = "echo_cancellation_unavailable"


# Most specific first: (error type, translation key, repair issue to raise or None).
_TRANSLATIONS: Final[tuple[tuple[type[Exception], str, str | None], ...]] = (
    (AuthenticationError, "auth_failed", None),
    (QuotaError, "quota_exceeded", ISSUE_QUOTA),
    (RateLimitError, "rate_limited", None),
    (AudioLibraryMissingError, "audio_unavailable", ISSUE_AUDIO_LIBRARY),
    (AudioDeviceError, "audio_unavailable", ISSUE_AUDIO_DEVICE),
    (ConnectError, "cannot_connect", None),
    (NotConnectedError, "not_running", None),  # the call ended as the action reached it
    (ModelUnavailableError, "model_unavailable", None),  # its issue names the box: model_issues
    (RealtimeError, "protocol_error", None),
)


def box_issue_id(issue: str, box_id: str) -> str:
    """Return the id of one box's issue: a box starting clears its own issues, no other's."""
    return f"{issue}_{box_id}"


class ErrorReporter(Protocol):
    """What owns a public action: it notes a failure where the user sees it."""

    def report_error(self, err: Exception) -> None:
        """Note the failure (state, repair issues, reauthentication)."""


def translated[O: ErrorReporter, **P, R](
    action: Callable[Concatenate[O, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[O, P], Coroutine[Any, Any, R]]:
    """Make a public action raise only translated errors, reporting each failure once."""

    @wraps(action)
    async def translating(owner: O, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await action(owner, *args, **kwargs)
        except HomeAssistantError:
            raise
        except Exception as err:
            owner.report_error(err)
            raise translate_error(err) from err

    return translating


def translate_error(err: Exception) -> HomeAssistantError:
    """Return the translated error the user sees for a failure."""
    if isinstance(err, HomeAssistantError):
        return err
    key = next((key for kind, key, _ in _TRANSLATIONS if isinstance(err, kind)), "unknown_error")
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"message": str(err)},
    )


def report_error(
    hass: HomeAssistant, err: Exception, box: Box, *, on_auth_failed: Callable[[], None]
) -> None:
    """Raise the repair issue of a failure the user must act on; start reauth for a bad key."""
    if isinstance(err, AuthenticationError):
        on_auth_failed()
    issue = next((issue for kind, _, issue in _TRANSLATIONS if isinstance(err, kind)), None)
    if issue is not None:
        ir.async_create_issue(
            hass,
            DOMAIN,
            box_issue_id(issue, box.id),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=issue,
            translation_placeholders={"box": box.title, "message": str(err)},
        )


def note_echo_cancellation(hass: HomeAssistant, box: Box, unavailable: str | None) -> None:
    """Say why a box's echo cancellation fell back to half duplex, or withdraw that once it runs."""
    issue_id = box_issue_id(ISSUE_ECHO_CANCELLATION, box.id)
    if unavailable is None:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_ECHO_CANCELLATION,
        translation_placeholders={"box": box.title, "message": unavailable},
    )


def clear_issues(hass: HomeAssistant, box_id: str) -> None:
    """Remove a box's issues: its conversation started, so what blocked it is fixed."""
    for issue in (ISSUE_QUOTA, ISSUE_AUDIO_LIBRARY, ISSUE_AUDIO_DEVICE):
        ir.async_delete_issue(hass, DOMAIN, box_issue_id(issue, box_id))


def budget_error(hass: HomeAssistant, box: Box, reached: LimitReached) -> HomeAssistantError:
    """Return the error of a start refused by a spending limit, and raise its repair issue."""
    placeholders = {"limit": f"{reached.limit:.2f}", "spent": f"{reached.spent:.2f}"}
    key = f"budget_{reached.kind}"
    ir.async_create_issue(
        hass,
        DOMAIN,
        budget_issue_id(box.id),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=key,
        translation_placeholders={"box": box.title, **placeholders},
    )
    return HomeAssistantError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def budget_issue_id(box_id: str) -> str:
    """Return the id of a box's spending limit issue."""
    return box_issue_id("budget", box_id)
