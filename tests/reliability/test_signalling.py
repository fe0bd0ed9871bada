"""Signalling faults: the call cannot be set up. Each one is a clear error, and the box recovers.

Every case starts a conversation that must fail with a translated error, leaves the box idle with
nothing open (and only the repair issue the user must act on), then starts a good conversation
once the fault is gone: the box on the shelf keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
import socket

import aiohttp
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.translated_errors import ISSUE_QUOTA, box_issue_id
from tests.helpers.integration import STATE, StateHistory, assert_recovered, box_of, box_session
from tests.simulator import Simulator

from .common import act, short_timeouts, start_fails, transitions


def _closed_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class SignallingFault:
    """A way the call's setup fails, and what the user must be told."""

    name: str
    key: str
    arm: Callable[[Simulator], object] = lambda _sim: None
    base_url: Callable[[], str] | None = None
    """Where the box posts its offer instead of the simulator."""
    own_resolver: bool = False
    """Resolve names with a resolver of this test's loop (the harness's shared one is bound to
    another loop and fails with a RuntimeError of its own)."""
    issues: tuple[str, ...] = field(default_factory=tuple)


def _status(status: int, code: str) -> Callable[[Simulator], object]:
    return lambda sim: setattr(sim.faults, "http_status", (status, code))


def _flag(name: str, value: object = True) -> Callable[[Simulator], object]:
    return lambda sim: setattr(sim.faults, name, value)


FAULTS = [
    SignallingFault("401 invalid key", "auth_failed", _status(401, "invalid_api_key")),
    SignallingFault(
        "429 insufficient quota",
        "quota_exceeded",
        _status(429, "insufficient_quota"),
        issues=(ISSUE_QUOTA,),
    ),
    SignallingFault("429 rate limit", "rate_limited", _status(429, "rate_limit_exceeded")),
    SignallingFault("500 server error", "cannot_connect", _status(500, "server_error")),
    SignallingFault(
        "400 beta shape disabled", "protocol_error", _status(400, "beta_api_shape_disabled")
    ),
    SignallingFault("hang past the timeout", "cannot_connect", _flag("hang_calls")),
    SignallingFault("garbled SDP answer", "protocol_error", _flag("bad_answer", "garbled")),
    SignallingFault(
        "SDP answer without a common codec",
        "protocol_error",
        _flag("bad_answer", "no_common_codec"),
    ),
    SignallingFault(
        "connection refused",
        "cannot_connect",
        base_url=lambda: f"http://127.0.0.1:{_closed_port()}",
    ),
    SignallingFault(
        "DNS name not found",
        "cannot_connect",
        base_url=lambda: "http://realtime.invalid",
        own_resolver=True,
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
async def test_signalling_fault(
    hass: HomeAssistant, box: MockConfigEntry, simulator: Simulator, fault: SignallingFault
) -> None:
    """The start fails with the fault's translated error; then a clean start works again."""
    session = box_session(box)
    good = session.settings
    fault.arm(simulator)
    if fault.base_url is not None:
        session.apply_settings(replace(good, base_url=fault.base_url()))
    state = StateHistory(hass, STATE)
    http = session._http
    if fault.own_resolver:
        session._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=aiohttp.AsyncResolver())
        )

    try:
        with short_timeouts():
            error = await start_fails(hass, fault.key)
    finally:
        if session._http is not http:
            await session._http.close()
            session._http = http

    assert transitions(state.states) == ["idle", "connecting", "idle"]
    assert hass.states.get(STATE).attributes["last_error"]
    assert simulator.api_key not in str(error.translation_placeholders)
    box_id = box_of(box).subentry_id
    await assert_recovered(
        hass, simulator, issues=[box_issue_id(issue, box_id) for issue in fault.issues]
    )

    simulator.faults.http_status = None
    simulator.faults.hang_calls = False
    simulator.faults.bad_answer = None
    session.apply_settings(good)
    await act(hass, "start_conversation")
    assert hass.states.get(STATE).state == "listening"
    assert hass.states.get(STATE).attributes["last_error"] is None
    await act(hass, "end_conversation")
    await assert_recovered(hass, simulator)
