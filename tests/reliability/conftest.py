"""The box every reliability test drives: a real Home Assistant, the simulator, PulseAudio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aioice.ice
from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.realtime_voice.const import (
    CONF_IDLE_TIMEOUT,
    CONF_MAX_DURATION,
    CONF_MAX_TOOL_CALLS,
    CONF_TOOL_TIMEOUT,
)
from tests.helpers.integration import box_entry, build_home, running_box
from tests.simulator import Simulator

from .common import API_KEY

pytestmark = pytest.mark.usefixtures("loopback_ice", "virtual_audio")


CONSENT_NEVER = 1e9
"""An ICE consent interval (seconds) that never comes within a test."""


@pytest.fixture
def no_ice_consent_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch off aioice's ICE consent checks, for tests that keep the loop from answering.

    A check goes out every 5 s and waits 0.5 s for its answer; six misses end the call. A
    simulated clock that jumps a minute expires a pending check at once; a flood that the
    simulator sends into the loop it shares with the client stalls the loop for seconds on a
    loaded machine. Neither happens to a box talking to OpenAI; the checks are aioice's.
    """
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", CONSENT_NEVER)


@pytest.fixture
def options() -> dict[str, Any]:
    """Options of the box; a test overrides this fixture to change them."""
    return {
        CONF_LLM_HASS_API: ["assist"],
        CONF_IDLE_TIMEOUT: 60,
        CONF_MAX_DURATION: 10,
        CONF_TOOL_TIMEOUT: 1,
        CONF_MAX_TOOL_CALLS: 3,
    }


@pytest.fixture
async def box(
    hass: HomeAssistant,
    simulator: Simulator,
    options: dict[str, Any],
    loopback_ice: None,
    virtual_audio: None,
) -> AsyncIterator[MockConfigEntry]:
    """Set up a small home and a box on the virtual devices, pointed at the simulator."""
    simulator.api_key = API_KEY
    await build_home(hass)
    async with running_box(hass, box_entry(simulator, options=options)) as entry:
        yield entry
