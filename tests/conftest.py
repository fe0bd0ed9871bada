"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from .simulator import Simulator
from .virtual_audio import require_virtual_audio


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load integrations from custom_components in every test."""


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up the core `homeassistant` component, which conversation (Assist) needs."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
def virtual_audio() -> None:
    """Require the PulseAudio virtual devices that scripts/test starts."""
    require_virtual_audio()


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """Let aioice gather a loopback host candidate (the harness's mock_network hides adapters)."""
    with patch("aioice.ice.get_host_addresses", return_value=["127.0.0.1"]):
        yield


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[Simulator]:
    """Run the Realtime simulator; fail the test if a client event was invalid.

    A test that sends invalid events on purpose sets `simulator.allow_invalid_client_events`.
    """
    sim = Simulator()
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
    if not sim.allow_invalid_client_events and (invalid := sim.invalid_client_events):
        pytest.fail(f"the client sent invalid events: {[reason for _, reason in invalid]}")
